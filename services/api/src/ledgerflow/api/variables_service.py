"""What the ``/api/v2/variables`` endpoints do, as Airflow 3 does it
(``core_api/services/public/variables.py``), over ledgerflow's projection and topic.

Values are encrypted before they are published and decrypted to answer. A value is
shown as ``***`` when its key is sensitive (``password``, ``secret``, ... in the name) or
it was set with ``is_secret``; JSON values keep their shape with sensitive fields
hidden. A ``***`` sent back in a hidden place keeps the stored secret.
"""

from __future__ import annotations

from collections.abc import Sequence

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
    VariableBody,
    VariableCollectionResponse,
    VariableResponse,
)
from ledgerflow.common.secrets import (
    Cipher,
    FernetKeyError,
    is_sensitive,
    merge_redacted_text,
    redact_json_text,
)


def variable_not_found(key: str) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND, f"The Variable with key: `{key}` was not found")


def key_problem(exc: FernetKeyError) -> HTTPException:
    """A missing or wrong Fernet key: the server's configuration, so no retry helps."""
    return HTTPException(status.HTTP_500_INTERNAL_SERVER_ERROR, str(exc))


def decrypt(cipher: Cipher, ciphertext: str) -> str:
    try:
        return cipher.decrypt(ciphertext)
    except FernetKeyError as exc:
        raise key_problem(exc) from None


def encrypt(cipher: Cipher, plaintext: str) -> str:
    try:
        return cipher.encrypt(plaintext)
    except FernetKeyError as exc:
        raise key_problem(exc) from None


def _hidden(key: str, is_secret: bool) -> bool:
    return is_secret or is_sensitive(key)


def respond(key: str, text: str, *, description: str | None, is_secret: bool) -> VariableResponse:
    """The response for a variable whose plaintext value is ``text``."""
    return VariableResponse(
        key=key,
        value=redact_json_text(text, key, hide=is_secret),
        description=description,
        is_encrypted=True,
        is_secret=is_secret,
    )


class VariableService:
    """One request's reads and writes of variables."""

    def __init__(
        self, conn: asyncpg.Connection, cipher: Cipher, publisher: store.ConfigPublisher
    ) -> None:
        self._conn = conn
        self._cipher = cipher
        self._publisher = publisher

    def _response(self, v: store.StoredVariable) -> VariableResponse:
        text = decrypt(self._cipher, v.val) if v.is_encrypted else v.val
        return respond(v.key, text, description=v.description, is_secret=v.is_secret)

    async def get(self, key: str) -> VariableResponse:
        stored = await store.get_variable(self._conn, key)
        if stored is None:
            raise variable_not_found(key)
        return self._response(stored)

    async def list(
        self, *, limit: int, offset: int, order_by: Sequence[str], key_pattern: str | None
    ) -> VariableCollectionResponse:
        rows, total = await store.list_variables(
            self._conn, limit=limit, offset=offset, order_by=order_by, key_pattern=key_pattern
        )
        return VariableCollectionResponse(
            variables=[self._response(r) for r in rows], total_entries=total
        )

    async def _set(self, body: VariableBody) -> VariableResponse:
        text = body.value_text()
        await self._publisher.variable_set(
            body.key,
            encrypt(self._cipher, text),
            description=body.description,
            is_secret=body.is_secret,
        )
        return respond(body.key, text, description=body.description, is_secret=body.is_secret)

    async def create(self, body: VariableBody) -> VariableResponse:
        if await store.get_variable(self._conn, body.key) is not None:
            raise HTTPException(
                status.HTTP_409_CONFLICT, f"The Variable with key: `{body.key}` already exists"
            )
        return await self._set(body)

    async def patch(
        self, key: str, body: VariableBody, update_mask: Sequence[str] | None
    ) -> VariableResponse:
        """Airflow's ``update_orm_from_pydantic``: the fields the body sets (narrowed by
        ``update_mask``) replace the stored ones; the key cannot change."""
        if body.key != key:
            raise HTTPException(
                status.HTTP_400_BAD_REQUEST,
                "Invalid body, key from request body doesn't match uri parameter",
            )
        old = await store.get_variable(self._conn, key)
        if old is None:
            raise variable_not_found(key)
        fields = set(body.model_fields_set) - {"key", "team_name"}
        if update_mask:
            if "key" in update_mask:
                raise HTTPException(
                    status.HTTP_400_BAD_REQUEST,
                    "Update not allowed: the following fields are immutable and cannot be "
                    "modified: {'key'}",
                )
            fields &= set(update_mask)
        is_secret = body.is_secret if "is_secret" in fields else old.is_secret
        description = body.description if "description" in fields else old.description
        if "value" in fields:
            old_text = decrypt(self._cipher, old.val) if old.is_encrypted else old.val
            text = merge_redacted_text(
                body.value_text(), old_text, name=key, hidden=_hidden(key, old.is_secret)
            )
            ciphertext = encrypt(self._cipher, text)
        else:
            text = decrypt(self._cipher, old.val) if old.is_encrypted else old.val
            ciphertext = old.val if old.is_encrypted else encrypt(self._cipher, text)
        await self._publisher.variable_set(
            key, ciphertext, description=description, is_secret=is_secret
        )
        return respond(key, text, description=description, is_secret=is_secret)

    async def delete(self, key: str) -> None:
        if await store.get_variable(self._conn, key) is None:
            raise variable_not_found(key)
        await self._publisher.variable_deleted(key)

    # ------------------------------------------------------------------ bulk
    async def bulk(self, body: BulkBody[VariableBody]) -> BulkResponse:
        """Airflow's ``BulkVariableService``: each action's successes and errors."""
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
        self, action: BulkCreateAction[VariableBody], result: BulkActionResponse
    ) -> None:
        keys = [v.key for v in action.entities]
        existing = await store.existing_variable_keys(self._conn, keys)
        if action.action_on_existence == "fail" and existing:
            raise HTTPException(
                status.HTTP_409_CONFLICT,
                f"The variables with these keys: {sorted(existing)} already exist.",
            )
        for v in action.entities:
            if action.action_on_existence == "skip" and v.key in existing:
                continue
            await self._set(v)
            result.success.append(v.key)

    async def _bulk_update(
        self, action: BulkUpdateAction[VariableBody], result: BulkActionResponse
    ) -> None:
        keys = [v.key for v in action.entities]
        existing = await store.existing_variable_keys(self._conn, keys)
        missing = set(keys) - existing
        if action.action_on_non_existence == "fail" and missing:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"The variables with these keys: {sorted(missing)} were not found.",
            )
        for v in action.entities:
            if v.key in existing:
                await self.patch(v.key, v, action.update_mask)
                result.success.append(v.key)

    async def _bulk_delete(self, action: BulkDeleteAction, result: BulkActionResponse) -> None:
        existing = await store.existing_variable_keys(self._conn, action.entities)
        missing = set(action.entities) - existing
        if action.action_on_non_existence == "fail" and missing:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                f"The variables with these keys: {sorted(missing)} were not found.",
            )
        for key in action.entities:
            if key in existing:
                await self._publisher.variable_deleted(key)
                result.success.append(key)
