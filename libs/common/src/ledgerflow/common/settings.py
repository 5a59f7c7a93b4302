"""Settings from environment variables (``LEDGERFLOW_*``). Built where needed, never at
import time: call :func:`Settings` (or ``Settings(**overrides)``) in a ``main``."""

from __future__ import annotations

from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ledgerflow.common.topics import Topics
from pydantic import Field, SecretStr, ValidationInfo, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by every service. Defaults work on a developer machine."""

    model_config = SettingsConfigDict(env_prefix="LEDGERFLOW_", extra="ignore", frozen=True)

    kafka_bootstrap: str = "127.0.0.1:9092"
    database_url: str = "postgresql://ledgerflow@127.0.0.1:5432/ledgerflow"
    topic_prefix: str = "ledgerflow"
    partitions: int = Field(default=6, ge=1, description="Partitions of DAG/command/run topics")
    work_partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)

    api_host: str = "127.0.0.1"
    api_port: int = 8081
    ui_host: str = "127.0.0.1"
    ui_port: int = 8080
    api_url: str | None = Field(default=None, description="Where the UI and CLI find the API")

    admin_username: str = "admin"
    admin_password: SecretStr | None = None
    secret_key: SecretStr | None = Field(
        default=None,
        description=(
            "Signs API tokens (api; generated per process when unset) and the executor's "
            "per-attempt task tokens (executor; none without it, so ExternalTaskSensor fails)"
        ),
    )
    token_ttl_seconds: int = 12 * 3600

    parse_timeout_seconds: float = 30.0
    health_max_projection_lag: int = 1000

    # Authoring parity (ADR 0006).
    fernet_key: SecretStr | None = Field(
        default=None,
        description=(
            "Encrypts variable values and connection secrets at rest (in events and in "
            "Postgres): a urlsafe-base64 32-byte Fernet key, or several comma-separated "
            "(the first encrypts, all decrypt: key rotation). Required by the api and "
            "the executor once any secret is stored."
        ),
    )
    # Executor (ADR 0008).
    executor_start: Literal["fork", "spawn"] = Field(
        default="fork",
        description=(
            "How attempts start: 'fork' from a warm fork server (milliseconds), or "
            "'spawn' a fresh interpreter per attempt (slower, nothing shared)."
        ),
    )
    executor_preload: str = Field(
        default="",
        description="Comma-separated modules the fork server imports once (e.g. 'pandas').",
    )
    executor_warm_dags: bool = Field(
        default=True,
        description=(
            "Load each DAG file once per executor in a zygote that forks its attempts "
            "(ADR 0017); off: every attempt loads its DAG file itself."
        ),
    )
    executor_memory_limit_mb: int | None = Field(
        default=None, ge=16, description="Address-space limit (RLIMIT_AS) of each attempt."
    )
    xcom_max_bytes: int = Field(
        default=256 * 1024,
        ge=1024,
        description="Largest JSON size of one attempt's XComs; a larger value fails it.",
    )

    # Liveness of attempts (issue 4): executors heartbeat, the scheduler fails silent
    # attempts as zombies and retries them.
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often an executor reports each running attempt"
    )
    service_heartbeat_seconds: float = Field(
        default=5.0,
        gt=0,
        description="How often schedulers, executors and projectors say they are alive",
    )
    zombie_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="An attempt not heard of for this long is failed as a zombie (retried)",
    )
    cancel_grace_seconds: float = Field(
        default=5.0, ge=0, description="SIGTERM to SIGKILL of a cancelled attempt"
    )
    executor_shutdown_grace_seconds: float = Field(
        default=10.0, ge=0, description="How long a stopping executor lets attempts finish"
    )
    executor_version_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        description="How long a work item waits for its DAG version before it is poison",
    )

    # Secured Kafka and Postgres, and the probe server (docs/deploy.md, ADR 0007).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        default="PLAINTEXT", description="How every Kafka client talks to the brokers"
    )
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = Field(
        default=None,
        validate_default=True,
        description="Required with a SASL_* protocol (with the username and password)",
    )
    kafka_ssl_cafile: str | None = Field(
        default=None, description="PEM CA bundle for the brokers; the system CAs when unset"
    )
    kafka_ssl_certfile: str | None = Field(default=None, description="PEM client cert (mTLS)")
    kafka_ssl_keyfile: str | None = Field(default=None, description="PEM client key (mTLS)")
    kafka_ssl_key_password: SecretStr | None = Field(default=None, validate_default=True)
    database_sslmode: (
        Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"] | None
    ) = Field(
        default=None,
        description="libpq sslmode, added to database_url (unless the URL has its own)",
    )
    database_ssl_rootcert: str | None = Field(
        default=None, description="PEM CA for the Postgres server, added to database_url"
    )
    # Logs (docs/observability.md): read by common/logging_setup.py before settings are
    # built; here so a wrong value fails every command the same way.
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = Field(
        default="INFO", description="Level of every service's logs"
    )
    log_format: Literal["json", "text", "auto"] = Field(
        default="auto",
        description="Service logs as JSON lines, text, or auto (text on a terminal, else JSON)",
    )
    probe_host: str = Field(default="127.0.0.1", description="Where the probe server listens")
    probe_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description=(
            "Serve /healthz and /readyz on this port (projector, scheduler, executor, and "
            "the api and ui too); no probe server when unset"
        ),
    )

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _log_case(cls, value: Any, info: ValidationInfo) -> Any:
        if not isinstance(value, str):
            return value
        value = value.strip()
        return value.upper() if info.field_name == "log_level" else value.lower()

    @field_validator("kafka_sasl_mechanism")
    @classmethod
    def _kafka_security_is_consistent(
        cls, mechanism: str | None, info: ValidationInfo
    ) -> str | None:
        """Settings that would be silently ignored are an error: a SASL protocol needs all
        three SASL settings, and SASL or TLS settings need a protocol that uses them."""
        data = info.data
        protocol = data.get("kafka_security_protocol", "PLAINTEXT")
        sasl_given = [
            name
            for name in ("kafka_sasl_username", "kafka_sasl_password")
            if data.get(name) is not None
        ] + (["kafka_sasl_mechanism"] if mechanism is not None else [])
        if protocol.startswith("SASL_"):
            missing = {"kafka_sasl_mechanism", "kafka_sasl_username", "kafka_sasl_password"}
            missing -= set(sasl_given)
            if missing:
                names = ", ".join(f"LEDGERFLOW_{m.upper()}" for m in sorted(missing))
                raise ValueError(f"LEDGERFLOW_KAFKA_SECURITY_PROTOCOL={protocol} needs {names}")
        elif sasl_given:
            raise ValueError(
                f"LEDGERFLOW_KAFKA_SASL_* is set but LEDGERFLOW_KAFKA_SECURITY_PROTOCOL is "
                f"{protocol}: use SASL_SSL (or SASL_PLAINTEXT)"
            )
        return mechanism

    @field_validator("kafka_ssl_key_password")
    @classmethod
    def _kafka_tls_files_need_tls(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        data = info.data
        protocol = data.get("kafka_security_protocol", "PLAINTEXT")
        given = [
            f"LEDGERFLOW_{n.upper()}"
            for n in ("kafka_ssl_cafile", "kafka_ssl_certfile", "kafka_ssl_keyfile")
            if data.get(n)
        ]
        if given and protocol not in ("SSL", "SASL_SSL"):
            raise ValueError(
                f"{', '.join(given)} set but LEDGERFLOW_KAFKA_SECURITY_PROTOCOL is {protocol}: "
                "use SSL or SASL_SSL"
            )
        return value

    @model_validator(mode="before")
    @classmethod
    def _database_tls_into_url(cls, data: Any) -> Any:
        """Fold ``database_sslmode``/``database_ssl_rootcert`` into ``database_url``.

        asyncpg reads ``sslmode`` and ``sslrootcert`` from the URL's query string, so every
        pool and connection made from ``database_url`` gets TLS without knowing about these
        settings. They exist because a managed Postgres (CloudNativePG, RDS) hands out the
        URL as a secret while TLS is configuration.
        """
        if not isinstance(data, dict):
            return data
        extra = {
            key: data.get(field)
            for field, key in (
                ("database_sslmode", "sslmode"),
                ("database_ssl_rootcert", "sslrootcert"),
            )
            if data.get(field)
        }
        if not extra:
            return data
        url = str(data.get("database_url") or cls.model_fields["database_url"].default)
        parts = urlsplit(url)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        for key, value in extra.items():
            if key in query and query[key] != value:
                raise ValueError(
                    f"LEDGERFLOW_DATABASE_URL has {key}={query[key]} but "
                    f"LEDGERFLOW_DATABASE_{'SSL_ROOTCERT' if key == 'sslrootcert' else 'SSLMODE'}"
                    f"={value}: set it in one place"
                )
            query[key] = str(value)
        return {
            **data,
            "database_url": urlunsplit(parts._replace(query=urlencode(query, safe="/"))),
        }

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"
