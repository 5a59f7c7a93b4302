"""Variables and connections in memory, folded from the config topic (ADR 0006).

Every executor reads ``<prefix>.config`` from its beginning (one partition, no consumer
group, no commits), like :mod:`.versions` does for DAG versions, and keeps the current
variables and connections decrypted with ``LEDGERFLOW_FERNET_KEY``. Tasks get them in
their request (:meth:`ConfigCache.request_fields`), so a task never calls a database
or the API. The cache also knows every secret value, so the log stream can mask them
(:meth:`ConfigCache.mask`).

``start()`` returns once the topic has been read up to where it ended at start, so the
first attempts see every value set before the executor started.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import (
    background_consumer_config,
    decode_record,
    kafka_client_kwargs,
    stop_reader,
)
from ledgerflow.common.secrets import Cipher, FernetKeyError, Masker, is_sensitive, redact
from ledgerflow.common.settings import Settings

log = logging.getLogger(__name__)

CATCH_UP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class _Variable:
    value: str
    is_secret: bool


class ConfigState:
    """The fold itself, without Kafka: apply config facts, read the result.

    A fact whose ciphertext cannot be decrypted (no key, or another key) is logged and
    leaves the key absent: a task then finds no such variable or connection, rather than
    a wrong value.
    """

    def __init__(self, cipher: Cipher) -> None:
        self._cipher = cipher
        self._variables: dict[str, _Variable] = {}
        self._connections: dict[str, dict[str, Any]] = {}
        self._seen: set[str] = set()
        self._masker: Masker | None = None

    def apply(self, envelope: ev.Envelope) -> bool:
        """Apply one envelope; False for a repeat (same event id) or a foreign type."""
        if envelope.id in self._seen:
            return False
        data = envelope.data
        if not isinstance(
            data, ev.VariableSet | ev.VariableDeleted | ev.ConnectionSet | ev.ConnectionDeleted
        ):
            return False
        self._seen.add(envelope.id)
        self._masker = None
        if isinstance(data, ev.VariableSet):
            self._set_variable(data)
        elif isinstance(data, ev.VariableDeleted):
            self._variables.pop(data.key, None)
        elif isinstance(data, ev.ConnectionSet):
            self._set_connection(data)
        else:
            self._connections.pop(data.conn_id, None)
        return True

    def _decrypt(self, ciphertext: str, what: str) -> str | None:
        try:
            return self._cipher.decrypt(ciphertext)
        except FernetKeyError as exc:
            log.error("cannot read %s: %s", what, exc)
            return None

    def _set_variable(self, data: ev.VariableSet) -> None:
        value = (
            self._decrypt(data.value, f"variable {data.key!r}") if data.is_encrypted else data.value
        )
        if value is None:
            self._variables.pop(data.key, None)
            return
        self._variables[data.key] = _Variable(value, data.is_secret)

    def _set_connection(self, data: ev.ConnectionSet) -> None:
        what = f"connection {data.conn_id!r}"
        password = extra = None
        if data.password is not None:
            password = self._decrypt(data.password, what)
            if password is None:
                self._connections.pop(data.conn_id, None)
                return
        if data.extra is not None:
            extra = self._decrypt(data.extra, what)
            if extra is None:
                self._connections.pop(data.conn_id, None)
                return
        self._connections[data.conn_id] = {
            "conn_type": data.conn_type,
            "host": data.host,
            "schema": data.schema_,
            "login": data.login,
            "password": password,
            "port": data.port,
            "extra": extra,
        }

    def request_fields(self) -> dict[str, Any]:
        """The runner request's ``variables`` ``{key: value}`` and ``connections``
        ``{conn_id: {conn_type, host, schema, login, password, port, extra}}`` (copies)."""
        return {
            "variables": {k: v.value for k, v in self._variables.items()},
            "connections": {k: dict(c) for k, c in self._connections.items()},
        }

    @property
    def masker(self) -> Masker:
        """Masks every secret value: connection passwords, sensitive fields of extras,
        values of sensitive or ``is_secret`` variables (and their sensitive JSON fields)."""
        if self._masker is None:
            masker = Masker()
            for key, var in self._variables.items():
                if var.is_secret or is_sensitive(key):
                    masker.add(var.value)
                masker.add(_hidden_parts(var.value, key, var.is_secret))
            for conn in self._connections.values():
                if conn["password"]:
                    masker.add(conn["password"])
                if conn["extra"]:
                    masker.add(_hidden_parts(conn["extra"], None, False))
            self._masker = masker
        return self._masker


def _hidden_parts(text: str, name: str | None, hide_all: bool) -> list[str]:
    """The string values inside a JSON text that are redacted when shown."""
    try:
        doc = json.loads(text)
    except ValueError:
        return []
    if not isinstance(doc, dict | list):
        return []
    shown = redact(doc, "secret" if hide_all else name)
    found: list[str] = []

    def walk(original: Any, redacted: Any) -> None:
        if isinstance(original, dict) and isinstance(redacted, dict):
            for k, v in original.items():
                walk(v, redacted.get(k))
        elif isinstance(original, list) and isinstance(redacted, list):
            for o, r in zip(original, redacted, strict=False):
                walk(o, r)
        elif redacted == "***" and original is not None and original != "***":
            found.append(original if isinstance(original, str) else json.dumps(original))

    walk(doc, shown)
    return found


async def topic_partitions(settings: Settings, topic: str, *, wait_s: float = 10.0) -> list[int]:
    """The partition ids of ``topic``, waiting a little for a just-created topic (asked
    of the admin client: a group-less consumer's metadata covers only assigned topics)."""
    admin = AIOKafkaAdminClient(**kafka_client_kwargs(settings))
    await admin.start()
    try:
        deadline = asyncio.get_running_loop().time() + wait_s
        while True:
            described = await admin.describe_topics([topic])
            parts = sorted(
                p["partition"]
                for d in described
                if d.get("error_code") == 0
                for p in d.get("partitions", ())
            )
            if parts:
                return parts
            if asyncio.get_running_loop().time() > deadline:
                raise RuntimeError(f"topic {topic} has no partitions (run ensure_topics first)")
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


class ConfigCache:
    """:class:`ConfigState` fed by a background reader of the config topic.

    ``start()``/``stop()``; a second ``stop()`` is harmless.
    """

    def __init__(self, settings: Settings, *, catch_up_timeout: float = CATCH_UP_TIMEOUT_S) -> None:
        self._settings = settings
        self._catch_up_timeout = catch_up_timeout
        self.state = ConfigState(Cipher.from_settings(settings))
        self._consumer: AIOKafkaConsumer | None = None
        self._task: asyncio.Task[None] | None = None

    def request_fields(self) -> dict[str, Any]:
        return self.state.request_fields()

    @property
    def masker(self) -> Masker:
        return self.state.masker

    def mask(self, text: str) -> str:
        """``text`` with every secret known now replaced by ``***``."""
        return self.state.masker.mask(text)

    async def start(self) -> None:
        if self._consumer is not None:
            return
        topic = self._settings.topics.config
        config: dict[str, Any] = {**background_consumer_config(self._settings), "group_id": None}
        config["enable_auto_commit"] = False
        partitions = await topic_partitions(self._settings, topic)
        consumer = AIOKafkaConsumer(**config)
        await consumer.start()
        try:
            tps = [TopicPartition(topic, p) for p in partitions]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            ends: dict[TopicPartition, int] = await consumer.end_offsets(tps)
            await self._catch_up(consumer, ends)
        except BaseException:
            await consumer.stop()
            raise
        self._consumer = consumer
        self._task = asyncio.get_running_loop().create_task(self._read(consumer))

    async def _catch_up(self, consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> None:
        try:
            async with asyncio.timeout(self._catch_up_timeout):
                while not await self._reached(consumer, ends):
                    self._apply_batch(await consumer.getmany(timeout_ms=200))
        except TimeoutError:
            log.warning(
                "the config topic was not read to its end within %g s; going on (tasks may "
                "miss recent variables or connections until it is)",
                self._catch_up_timeout,
            )

    @staticmethod
    async def _reached(consumer: AIOKafkaConsumer, ends: dict[TopicPartition, int]) -> bool:
        for tp, end in ends.items():
            if await consumer.position(tp) < end:
                return False
        return True

    def _apply_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        for records in batch.values():
            for record in records:
                try:
                    envelope = decode_record(record)
                except ev.MalformedMessage as exc:
                    # Not ours to dead-letter: the projector does that.
                    log.warning(
                        "skipping unreadable message on %s[%s]@%s: %s",
                        record.topic,
                        record.partition,
                        record.offset,
                        exc,
                    )
                    continue
                self.state.apply(envelope)

    async def _read(self, consumer: AIOKafkaConsumer) -> None:
        while True:
            try:
                batch = await consumer.getmany(timeout_ms=1000)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("reading the config topic failed; retrying")
                await asyncio.sleep(1)
                continue
            self._apply_batch(batch)

    async def stop(self) -> None:
        task, self._task = self._task, None
        consumer, self._consumer = self._consumer, None
        await stop_reader(task, consumer)
