"""What each deployed process needs from its environment: the table the checks use.

Every variable the code can read (a ``Settings`` field as ``LEDGERFLOW_<FIELD>``, or a
``LEDGERFLOW_*``/``OTEL_*`` name written in the source) must appear here, either as
REQUIRED by some processes (then compose and every Kubernetes overlay must set it for
them) or as OPTIONAL with the reason its default is safe. A new setting fails
``test_every_variable_the_code_reads_is_classified`` until someone decides.
"""

from __future__ import annotations

import re
from pathlib import Path

from ledgerflow.common.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIRS = sorted([*ROOT.glob("libs/*/src"), *ROOT.glob("services/*/src")])

# The processes a deployment runs (compose service names; Kubernetes component labels).
KAFKA_CLIENTS = frozenset({"init", "projector", "api", "scheduler", "executor"})
LONG_RUNNING = frozenset({"projector", "api", "scheduler", "executor", "ui"})
PROCESSES = KAFKA_CLIENTS | LONG_RUNNING | {"load-examples"}

REQUIRED: dict[str, frozenset[str]] = {
    # Every Kafka client may create topics (ensure_topics), so all must agree on these.
    "LEDGERFLOW_KAFKA_BOOTSTRAP": KAFKA_CLIENTS,
    "LEDGERFLOW_TOPIC_PREFIX": KAFKA_CLIENTS,
    "LEDGERFLOW_PARTITIONS": KAFKA_CLIENTS,
    "LEDGERFLOW_WORK_PARTITIONS": KAFKA_CLIENTS,  # the scheduler also hashes keys with it
    "LEDGERFLOW_REPLICATION_FACTOR": KAFKA_CLIENTS,
    "LEDGERFLOW_DATABASE_URL": frozenset({"init", "projector", "api"}),
    "LEDGERFLOW_ADMIN_PASSWORD": frozenset({"api", "load-examples"}),  # api refuses to start
    # api: per-process when unset, which breaks replicas; executor: signs task tokens.
    "LEDGERFLOW_SECRET_KEY": frozenset({"api", "executor"}),
    "LEDGERFLOW_FERNET_KEY": frozenset({"api", "executor"}),
    "LEDGERFLOW_API_HOST": frozenset({"api"}),  # default 127.0.0.1 is unreachable in a pod
    "LEDGERFLOW_API_PORT": frozenset({"api"}),
    "LEDGERFLOW_UI_HOST": frozenset({"ui"}),
    "LEDGERFLOW_UI_PORT": frozenset({"ui"}),
    "LEDGERFLOW_API_URL": frozenset({"ui", "load-examples", "executor"}),  # executor: tasks
    "LEDGERFLOW_PROBE_HOST": LONG_RUNNING,
    "LEDGERFLOW_PROBE_PORT": LONG_RUNNING,
}

# Values that must be the same for every process of one deployment.
SHARED = (
    "LEDGERFLOW_KAFKA_BOOTSTRAP",
    "LEDGERFLOW_TOPIC_PREFIX",
    "LEDGERFLOW_PARTITIONS",
    "LEDGERFLOW_WORK_PARTITIONS",
    "LEDGERFLOW_REPLICATION_FACTOR",
    "LEDGERFLOW_KAFKA_SECURITY_PROTOCOL",
)

OPTIONAL: dict[str, str] = {
    "LEDGERFLOW_ADMIN_USERNAME": "'admin'",
    "LEDGERFLOW_TOKEN_TTL_SECONDS": "12 hours",
    "LEDGERFLOW_PARSE_TIMEOUT_SECONDS": "30 s per DAG file",
    "LEDGERFLOW_HEALTH_MAX_PROJECTION_LAG": "1000 events before /health says 503",
    "LEDGERFLOW_XCOM_MAX_BYTES": "256 KiB",
    "LEDGERFLOW_HEARTBEAT_INTERVAL_SECONDS": "5 s; must stay well below the zombie timeout",
    "LEDGERFLOW_SERVICE_HEARTBEAT_SECONDS": "5 s between instances' liveness messages",
    "LEDGERFLOW_ZOMBIE_TIMEOUT_SECONDS": "30 s (the scheduler's; Airflow's default is 300 s)",
    "LEDGERFLOW_CANCEL_GRACE_SECONDS": "5 s between SIGTERM and SIGKILL of a cancelled attempt",
    "LEDGERFLOW_EXECUTOR_SHUTDOWN_GRACE_SECONDS": "10 s for running attempts at shutdown",
    "LEDGERFLOW_EXECUTOR_VERSION_TIMEOUT_SECONDS": "30 s for a work item's DAG version to appear",
    "LEDGERFLOW_KAFKA_SECURITY_PROTOCOL": "PLAINTEXT; set with the SASL/TLS settings",
    "LEDGERFLOW_KAFKA_SASL_MECHANISM": "only with a SASL_* protocol",
    "LEDGERFLOW_KAFKA_SASL_USERNAME": "only with a SASL_* protocol",
    "LEDGERFLOW_KAFKA_SASL_PASSWORD": "only with a SASL_* protocol",
    "LEDGERFLOW_KAFKA_SSL_CAFILE": "the system CAs",
    "LEDGERFLOW_KAFKA_SSL_CERTFILE": "no client certificate",
    "LEDGERFLOW_KAFKA_SSL_KEYFILE": "no client certificate",
    "LEDGERFLOW_KAFKA_SSL_KEY_PASSWORD": "an unencrypted key",
    "LEDGERFLOW_DATABASE_SSLMODE": "asyncpg's default (prefer), or sslmode in the URL",
    "LEDGERFLOW_DATABASE_SSL_ROOTCERT": "~/.postgresql/root.crt, or sslrootcert in the URL",
    "LEDGERFLOW_LOG_LEVEL": "INFO",
    "LEDGERFLOW_LOG_FORMAT": "auto: JSON lines unless stderr is a terminal",
    "OTEL_METRICS_EXPORTER": "Prometheus /metrics only; 'otlp' adds an OTLP push",
    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL": "OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf",
    "OTEL_EXPORTER_OTLP_PROTOCOL": "http/protobuf",
    "OTEL_METRIC_EXPORT_INTERVAL": "60000 ms between OTLP metric pushes",
    "OTEL_SDK_DISABLED": "false; 'true' turns the OpenTelemetry SDK off (no ledgerflow metrics)",
    "OTEL_SERVICE_NAME": "ledgerflow-<service>",
    "OTEL_TRACES_EXPORTER": "tracing off unless it or an OTLP endpoint is set (otlp|console|none)",
    "OTEL_EXPORTER_OTLP_ENDPOINT": "unset: no OTLP export (tracing off)",
    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces",
    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "OTEL_EXPORTER_OTLP_PROTOCOL, else http/protobuf",
    "OTEL_RESOURCE_ATTRIBUTES": "none beyond service.name",
    "OTEL_TRACES_SAMPLER": "parentbased_always_on (every run traced once tracing is on)",
    "LEDGERFLOW_USERNAME": "CLI client only: the user to log in as",
    "LEDGERFLOW_PASSWORD": "CLI client only: its password",
    "LEDGERFLOW_API_KEY": "CLI client only: an API key instead of a username and password",
    "LEDGERFLOW_TOKEN": "CLI client only: a bearer token instead of logging in",
    "LEDGERFLOW_CONFIG": "CLI client only: its config file (~/.config/ledgerflow/config.toml)",
    "LEDGERFLOW_GIT_VERSION": "api: git_version in /api/v2/version; null when the build sets none",
    "LEDGERFLOW_EXECUTOR_START": "'fork' (a warm fork server); 'spawn' is the fallback",
    "LEDGERFLOW_EXECUTOR_PRELOAD": "modules the executor's fork server imports; none",
    "LEDGERFLOW_EXECUTOR_WARM_DAGS": "true: one zygote per DAG file forks its attempts",
    "LEDGERFLOW_EXECUTOR_MEMORY_LIMIT_MB": "no per-attempt limit; the container's limit holds",
}

_NAME = re.compile(r"\b((?:LEDGERFLOW|OTEL)_[A-Z0-9_]*[A-Z0-9])\b")


def settings_variables() -> set[str]:
    prefix = str(Settings.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in Settings.model_fields}


def source_variables() -> set[str]:
    """``LEDGERFLOW_*`` and ``OTEL_*`` names written anywhere in the shipped source."""
    found: set[str] = set()
    for directory in SOURCE_DIRS:
        for path in directory.rglob("*.py"):
            found |= set(_NAME.findall(path.read_text(encoding="utf-8")))
    return found


def known_variables() -> set[str]:
    return settings_variables() | source_variables()


def is_secret(name: str) -> bool:
    """Variables whose value must come from a secret, never from a committed file."""
    return any(m in name for m in ("PASSWORD", "SECRET_KEY", "FERNET_KEY", "DATABASE_URL"))
