"""Settings from environment variables (``LEDGERFLOW_*``). Built where needed, never at
import time: call :func:`Settings` (or ``Settings(**overrides)``) in a ``main``."""

from __future__ import annotations

from ledgerflow.common.topics import Topics
from pydantic import Field, SecretStr
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
        default=None, description="Signs API tokens; generated per process when unset"
    )
    token_ttl_seconds: int = 12 * 3600

    parse_timeout_seconds: float = 30.0
    health_max_projection_lag: int = 1000

    @property
    def topics(self) -> Topics:
        return Topics(self.topic_prefix)

    @property
    def resolved_api_url(self) -> str:
        return self.api_url or f"http://{self.api_host}:{self.api_port}"
