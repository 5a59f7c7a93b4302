"""Runs triggered by messages on external Kafka topics (ADR 0014).

``Asset("orders", watchers=[AssetWatcher("w", KafkaMessageTrigger(topics=[...],
filter="value.kind == 'order'"))])`` in a DAG's ``schedule``: every message on the
topics that matches the filter triggers one run of the DAG, with the message in the
run's ``conf``. Airflow 3's spellings are accepted in compat mode:

- ``airflow.providers.common.messaging.triggers.msg_queue.MessageQueueTrigger(
  queue="kafka://host:port/topic1,topic2")`` or ``(scheme="kafka", topics=[...],
  bootstrap_servers=...)``;
- ``airflow.providers.apache.kafka.triggers.await_message.AwaitMessageTrigger(
  topics=[...])`` (and ``KafkaMessageQueueTrigger``).

The scheduler consumes the topics and must never import user code, so Airflow's
``apply_function`` (a dotted path to a user function) is refused when the DAG file is
parsed, with the file and line: use ``filter=`` (a safe expression, see
:mod:`ledgerflow.common.core.message_filter`) instead. Everything is validated here, at
parse time, so a bad filter is a DAG file error.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from ledgerflow.sdk import _source
from ledgerflow.sdk.exceptions import DagAuthoringError

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import WatcherSpec

VALUE_FORMATS = ("json", "text", "bytes")
# aiokafka consumer settings a DAG may set for its own cluster (bootstrap_servers given).
CONSUMER_CONFIG_KEYS = frozenset(
    {
        "client_id",
        "security_protocol",
        "sasl_mechanism",
        "sasl_plain_username",
        "sasl_plain_password",
        "sasl_kerberos_service_name",
        "sasl_kerberos_domain_name",
        "fetch_max_wait_ms",
        "fetch_max_bytes",
        "fetch_min_bytes",
        "max_partition_fetch_bytes",
        "request_timeout_ms",
        "metadata_max_age_ms",
        "isolation_level",
        "check_crcs",
    }
)


class _Located:
    """Remembers where in the DAG file it was created, for errors."""

    def _locate(self) -> None:
        self._filename, self._lineno = _source.user_location(2)

    def _error(self, message: str) -> DagAuthoringError:
        return DagAuthoringError(message, lineno=self._lineno, filename=self._filename)


class KafkaMessageTrigger(_Located):
    """Messages on Kafka ``topics`` trigger runs (ledgerflow's own spelling).

    ``bootstrap_servers``: None for the ledgerflow cluster (with its security settings),
    else another cluster (``consumer_config`` then takes aiokafka consumer settings such
    as ``security_protocol`` and ``sasl_*``). ``filter``: a safe expression over
    ``key``, ``value``, ``headers``, ``topic``, ``partition``, ``offset``,
    ``timestamp``; None matches every message. ``value_format``: ``json`` (the value is
    parsed; a message that is not JSON is dead-lettered and skipped), ``text`` or
    ``bytes``.
    """

    def __init__(
        self,
        topics: str | Iterable[str],
        bootstrap_servers: str | Iterable[str] | None = None,
        filter: str | None = None,  # noqa: A002 - the public name
        value_format: str = "json",
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._locate()
        names = [topics] if isinstance(topics, str) else list(topics or ())
        if not names or not all(isinstance(t, str) and t.strip() for t in names):
            raise self._error(f"a Kafka trigger needs one or more topic names, got {topics!r}")
        self.topics = tuple(dict.fromkeys(t.strip() for t in names))
        if bootstrap_servers is not None and not isinstance(bootstrap_servers, str):
            bootstrap_servers = ",".join(bootstrap_servers)
        self.bootstrap_servers = bootstrap_servers or None
        if filter is not None:
            # Imported here: the SDK does not import pydantic (or the core) up front.
            from ledgerflow.common.core.message_filter import FilterError, compile_filter

            try:
                compile_filter(filter)
            except FilterError as e:
                raise self._error(f"invalid Kafka trigger filter {filter!r}: {e}") from None
        self.filter = filter
        if value_format not in VALUE_FORMATS:
            raise self._error(
                f"value_format must be one of {', '.join(VALUE_FORMATS)}, not {value_format!r}"
            )
        self.value_format = value_format
        config = dict(consumer_config or {})
        unknown = sorted(set(config) - CONSUMER_CONFIG_KEYS)
        if unknown:
            raise self._error(
                f"consumer_config does not support {', '.join(unknown)} "
                f"(allowed: {', '.join(sorted(CONSUMER_CONFIG_KEYS))})"
            )
        if config and self.bootstrap_servers is None:
            raise self._error(
                "consumer_config applies only with bootstrap_servers (the ledgerflow "
                "cluster uses the deployment's Kafka settings)"
            )
        try:
            self.consumer_config = json.loads(json.dumps(config))
        except (TypeError, ValueError) as e:
            raise self._error(f"consumer_config must be JSON-serializable: {e}") from None

    def __repr__(self) -> str:
        return f"{type(self).__name__}(topics={list(self.topics)!r}, filter={self.filter!r})"

    def watcher_spec(self, name: str) -> WatcherSpec:
        from ledgerflow.common.dagmodel import WatcherSpec

        return WatcherSpec(
            name=name,
            kind="kafka",
            bootstrap_servers=self.bootstrap_servers,
            topics=self.topics,
            filter=self.filter,
            value_format=self.value_format,
            consumer_config=self.consumer_config,
        )


def _refuse_apply_function(trigger: _Located, apply_function: Any) -> None:
    if apply_function is not None:
        raise trigger._error(
            f"apply_function={apply_function!r} is not supported: the ledgerflow scheduler "
            'never imports DAG code. Use filter="..." instead, a safe expression over '
            "the message, e.g. filter=\"value.kind == 'order' and value.amount > 10\" "
            "(names: key, value, headers, topic, partition, offset, timestamp)"
        )


def _check_config_id(trigger: _Located, kafka_config_id: Any) -> None:
    if kafka_config_id not in (None, "kafka_default"):
        raise trigger._error(
            f"kafka_config_id={kafka_config_id!r} is not supported: the ledgerflow "
            "scheduler reads the topics of the ledgerflow cluster, or of the cluster in "
            "bootstrap_servers=... (or the host:port of a kafka:// queue URL)"
        )


class AwaitMessageTrigger(KafkaMessageTrigger):
    """Airflow's ``AwaitMessageTrigger(topics, apply_function=None, kafka_config_id=...)``:
    ``kafka_config_id`` must be ``kafka_default`` (the ledgerflow cluster), and
    ``apply_function`` is refused (use ``filter=``). Polling settings are ignored."""

    def __init__(
        self,
        topics: str | Iterable[str],
        apply_function: str | None = None,
        kafka_config_id: str = "kafka_default",
        apply_function_args: Any = None,
        apply_function_kwargs: Any = None,
        poll_timeout: float = 1,
        poll_interval: float = 5,
        commit_offset: bool = True,
        *,
        filter: str | None = None,  # noqa: A002 - ledgerflow's extension
        bootstrap_servers: str | None = None,
        value_format: str = "json",
        consumer_config: Mapping[str, Any] | None = None,
    ) -> None:
        self._locate()
        _refuse_apply_function(self, apply_function)
        _check_config_id(self, kafka_config_id)
        super().__init__(
            topics,
            bootstrap_servers=bootstrap_servers,
            filter=filter,
            value_format=value_format,
            consumer_config=consumer_config,
        )


class MessageQueueTrigger(KafkaMessageTrigger):
    """Airflow 3's common-messaging trigger, for Kafka only: ``queue="kafka://host:port/
    topic1,topic2"`` (the host list becomes ``bootstrap_servers``; ``kafka://`` with no
    host means the ledgerflow cluster) or ``scheme="kafka", topics=[...]``."""

    def __init__(
        self, *, queue: str | None = None, scheme: str | None = None, **kwargs: Any
    ) -> None:
        self._locate()
        _refuse_apply_function(self, kwargs.pop("apply_function", None))
        _check_config_id(self, kwargs.pop("kafka_config_id", None))
        for ignored in (
            "apply_function_args",
            "apply_function_kwargs",
            "poll_timeout",
            "poll_interval",
            "commit_offset",
        ):
            kwargs.pop(ignored, None)
        topics = kwargs.pop("topics", None)
        bootstrap = kwargs.pop("bootstrap_servers", None)
        if queue is not None:
            if not isinstance(queue, str) or not queue.startswith("kafka://"):
                raise self._error(
                    f"queue {queue!r} is not supported: ledgerflow watches Kafka topics "
                    "(kafka://host:port/topic)"
                )
            parsed = urlparse(queue)
            if topics is None:
                raw = parsed.path.lstrip("/")
                topics = [t for t in raw.split(",") if t] if raw else None
            bootstrap = bootstrap or parsed.netloc or None
        elif scheme != "kafka":
            raise self._error(
                f"MessageQueueTrigger needs queue='kafka://...' or scheme='kafka' "
                f"(got scheme={scheme!r}): ledgerflow watches Kafka topics only"
            )
        if not topics:
            raise self._error("MessageQueueTrigger needs topics (in the kafka:// URL or topics=)")
        allowed = {"filter", "value_format", "consumer_config"}
        unknown = sorted(set(kwargs) - allowed)
        if unknown:
            raise self._error(f"MessageQueueTrigger does not support {', '.join(unknown)}")
        super().__init__(topics, bootstrap_servers=bootstrap, **kwargs)


class KafkaMessageQueueTrigger(MessageQueueTrigger):
    """Airflow's ``KafkaMessageQueueTrigger(topics=..., ...)`` (scheme ``kafka``)."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("scheme", "kafka")
        super().__init__(**kwargs)


class AssetWatcher(_Located):
    """Airflow 3's ``AssetWatcher(name, trigger)``: the trigger's messages become runs
    of the DAGs scheduled on the asset that has the watcher."""

    def __init__(self, name: str, trigger: Any) -> None:
        self._locate()
        if not isinstance(name, str) or not name.strip():
            raise self._error(f"an AssetWatcher needs a non-empty name, got {name!r}")
        if not isinstance(trigger, KafkaMessageTrigger):
            raise self._error(
                f"AssetWatcher {name!r}: trigger {type(trigger).__name__} is not supported; "
                "use KafkaMessageTrigger or MessageQueueTrigger(queue='kafka://...')"
            )
        self.name = name.strip()
        self.trigger = trigger

    def __repr__(self) -> str:
        return f"AssetWatcher(name={self.name!r}, trigger={self.trigger!r})"

    def serialize(self) -> WatcherSpec:
        return self.trigger.watcher_spec(self.name)


__all__ = [
    "AssetWatcher",
    "AwaitMessageTrigger",
    "KafkaMessageQueueTrigger",
    "KafkaMessageTrigger",
    "MessageQueueTrigger",
]
