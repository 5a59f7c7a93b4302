"""What an attempt needs to ask the API about other runs (``ExternalTaskSensor``).

Airflow 3's task SDK talks to an API server with a short-lived token its executor gives
each task; ledgerflow does the same with the public API: the runner request carries
``api_url`` and ``api_token``, a task token (:mod:`ledgerflow.common.task_tokens`) that
the API treats as a read-only viewer. The signing key (``LEDGERFLOW_SECRET_KEY``) stays
in the executor: the child's environment never has it.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from ledgerflow.common.events import RunTaskAttempt
from ledgerflow.common.settings import Settings
from ledgerflow.common.task_tokens import mint_task_token, task_token_ttl

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TaskApiAccess:
    """The API's address and the key task tokens are signed with."""

    api_url: str
    secret_key: str = field(repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> TaskApiAccess | None:
        """None without ``LEDGERFLOW_SECRET_KEY``: tasks then get no token, and
        ``ExternalTaskSensor`` fails saying what the executor is missing."""
        if settings.secret_key is None or not settings.secret_key.get_secret_value():
            log.warning(
                "LEDGERFLOW_SECRET_KEY is not set: tasks get no API token, so "
                "ExternalTaskSensor cannot look up other DAG runs"
            )
            return None
        return cls(settings.resolved_api_url, settings.secret_key.get_secret_value())

    def request_fields(self, item: RunTaskAttempt, *, now: float | None = None) -> dict[str, str]:
        """``{"api_url", "api_token"}`` for this attempt's runner request."""
        token = mint_task_token(
            self.secret_key,
            dag_id=item.dag_id,
            run_id=item.run_id,
            task_id=item.task_id,
            map_index=item.map_index,
            try_number=item.try_number,
            ttl_seconds=task_token_ttl(item.execution_timeout_seconds),
            now=time.time() if now is None else now,
        )
        return {"api_url": self.api_url, "api_token": token}
