"""What the ``/api/v2/connections`` endpoints do, as Airflow 3 does it
(``core_api/services/public/connections.py``), over ledgerflow's projection and topic.

The password and the extra are encrypted before they are published. Responses never
carry the password: it is ``***`` when one is set (Airflow's ``ConnectionResponse``
redacts it the same way), and sensitive fields of the extra are ``***``. A ``***`` sent
back (password, or a sensitive extra field) keeps the stored secret.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import asyncpg
from fastapi import HTTPException, status
from ledgerflow.api import config_store as store
from ledgerflow.api.config_schemas import (
    BulkActionResponse,
    BulkBody,
    BulkCreateAction,
    BulkDeleteAction,
    BulkResponse,
    BulkUpdateAction,
    ConnectionBody,
    ConnectionCollectionResponse,
    ConnectionResponse,
)
from ledgerflow.api.variables_service import decrypt, encrypt
from ledgerflow.common.secrets import REDACTED, Cipher, merge_redacted_text, redact_json_text

# Body field -> StoredConnection field, for PATCH and its update_mask. "schema" and
# "schema_" both name Airflow's schema field.
_FIELDS = {
    "conn_type": "conn_type",
    "description": "description",
    "host": "host",
    "login": "login",
    "schema_": "schema",
    "port": "port",
    "password": "password",
    "extra": "extra",
}


def connection_not_found(conn_id: str) -> HTTPException:
    return HTTPException(
        status.HTTP_404_NOT_FOUND,
        f"The Connection with connection_id: `{conn_id}` was not found",
    )


def respond(stored: store.StoredConnection, extra_text: str | None) -> ConnectionResponse:
    """The response for ``stored`` whose extra, decrypted, is ``extra_text``."""
    return ConnectionResponse(
        connection_id=stored.conn_id,
        conn_type=stored.conn_type,
        description=stored.description,
        host=stored.host,
        login=stored.login,
        schema=stored.schema,
        port=stored.port,
        password=None if stored.password is None else REDACTED,
        extra=redact_json_text(extra_text),
    )


class ConnectionService:
    """One request's reads and writes of connections."""

    def __init__(
        self, conn: asyncpg.Connection, cipher: Cipher, publisher: store.ConfigPublisher
    ) -> None:
        self._conn = conn
        self._cipher = cipher
        self._publisher = publisher

    def _extra(self, stored: store.StoredConnection) -> str | None:
        return None if stored.extra is None else decrypt(self._cipher, stored.extra)

    def _seal(self, body: ConnectionBody) -> store.StoredConnection:
        """The connection a body describes, password and extra encrypted."""
        return store.StoredConnection(
            conn_id=body.connection_id,
            conn_type=body.conn_type,
            description=body.description,
            host=body.host,
            schema=body.schema_,
            login=body.login,
            password=None if body.password is None else encrypt(self._cipher, body.password),
            port=body.port,
            extra=None if body.extra is None else encrypt(self._cipher, body.extra),
        )

    async def get(self, conn_id: str) -> ConnectionResponse:
        stored = await store.get_connection(self._conn, conn_id)
        if stored is None:
            raise connection_not_found(conn_id)
        return respond(stored, self._extra(stored))

    async def list(
        self, *, limit: int, offset: int, order_by: Sequence[str], id_pattern: str | None
    ) -> ConnectionCollectionResponse:
        rows, total = await store.list_connections(
            self._conn, limit=limit, offset=offset, order_by=order_by, id_pattern=id_pattern
        )
        return ConnectionCollectionResponse(
            connections=[respond(r, self._extra(r)) for r in rows], total_entries=total
        )

    async def _set(self, body: ConnectionBody) -> ConnectionResponse:
        sealed = self._seal(body)
        await self._publisher.connection_set(sealed)
        return respond(sealed, body.extra)

    async def create(self, body: ConnectionBody) -> ConnectionResponse:
        if await store.get_connection(self._conn, body.connection_id) is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"The Connection with connection_id: `{body.connection_id}` already exists",
            )
        return await self._set(body)

    async def patch(
        self, conn_id: str, body: ConnectionBody, update_mask: Sequence[str] | None
    ) -> ConnectionResponse:
        """The fields the body sets (narrowed by ``update_mask``) replace the stored ones."""
        if body.connection_id != conn_id:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "The connection_id in the request body does not match the URL parameter",
            )
        old = await store.get_connection(self._conn, conn_id)
        if old is None:
            raise connection_not_found(conn_id)
        fields = set(body.model_fields_set) & set(_FIELDS)
        if update_mask:
            mask = {"schema_" if f == "schema" else f for f in update_mask}
            if "connection_id" in mask:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    "Update not allowed: the following fields are immutable and cannot be "
                    "modified: {'connection_id'}",
                )
            fields &= mask
        changes: dict[str, object] = {}
        for name in fields:
            changes[_FIELDS[name]] = getattr(body, name)
        old_extra = self._extra(old)
        extra_text = old_extra
        if "password" in fields:
            password = body.password
            if password == REDACTED and old.password is not None:
                changes["password"] = old.password  # sent back what it read: keep it
            else:
                changes["password"] = None if password is None else encrypt(self._cipher, password)
        if "extra" in fields:
            extra_text = None if body.extra is None else merge_redacted_text(body.extra, old_extra)
            changes["extra"] = None if extra_text is None else encrypt(self._cipher, extra_text)
        new = replace(old, **changes)  # type: ignore[arg-type]
        await self._publisher.connection_set(new)
        return respond(new, extra_text)

    async def delete(self, conn_id: str) -> None:
        if await store.get_connection(self._conn, conn_id) is None:
            raise connection_not_found(conn_id)
        await self._publisher.connection_deleted(conn_id)

    # ------------------------------------------------------------------ bulk
    async def bulk(self, body: BulkBody[ConnectionBody]) -> BulkResponse:
        """Airflow's ``BulkConnectionService``: each action's successes and errors."""
        results: dict[str, BulkActionResponse] = {}
        for action in body.actions:
            result = results.setdefault(action.action, BulkActionResponse())
            try:
                if isinstance(action, BulkCreateAction):
                    await self._bulk_create(action, result)
                elif isinstance(action, BulkUpdateAction):
                    await self._bulk_update(action, result)
                else:
                    await self._bulk_delete(action, result)
            except HTTPException as exc:
                result.errors.append({"error": str(exc.detail), "status_code": exc.status_code})
        return BulkResponse(**results)

    async def _bulk_create(
        self, action: BulkCreateAction[ConnectionBody], result: BulkActionResponse
    ) -> None:
        ids = [c.connection_id for c in action.entities]
        existing = await store.existing_connection_ids(self._conn, ids)
        if action.action_on_existence == "fail" and existing:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"The connections with these connection_ids: {sorted(existing)} already exist.",
            )
        for c in action.entities:
            if action.action_on_existence == "skip" and c.connection_id in existing:
                continue
            await self._set(c)
            result.success.append(c.connection_id)

    async def _bulk_update(
        self, action: BulkUpdateAction[ConnectionBody], result: BulkActionResponse
    ) -> None:
        ids = [c.connection_id for c in action.entities]
        existing = await store.existing_connection_ids(self._conn, ids)
        missing = set(ids) - existing
        if action.action_on_non_existence == "fail" and missing:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"The connections with these connection_ids: {sorted(missing)} were not found.",
            )
        for c in action.entities:
            if c.connection_id in existing:
                await self.patch(c.connection_id, c, action.update_mask)
                result.success.append(c.connection_id)

    async def _bulk_delete(self, action: BulkDeleteAction, result: BulkActionResponse) -> None:
        existing = await store.existing_connection_ids(self._conn, action.entities)
        missing = set(action.entities) - existing
        if action.action_on_non_existence == "fail" and missing:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"The connections with these connection_ids: {sorted(missing)} were not found.",
            )
        for conn_id in action.entities:
            if conn_id in existing:
                await self._publisher.connection_deleted(conn_id)
                result.success.append(conn_id)
