"""How a running task reads other runs' states from the ledgerflow API.

Airflow 3's task SDK asks its API server for other DAG runs and task instances (what
``ExternalTaskSensor`` waits on), authenticated by a short-lived token its executor gave
the task. The runner request carries ``api_url`` and ``api_token`` (ADR 0006) for the
same purpose; the token is a read-only task token (ADR 0009).

Only the standard library (``urllib``), so a task's start-up stays light. Each call has
a short timeout and is retried a few times on connection errors and 502/503/504 (an API
restarting), all within one poke; what still fails raises :class:`TaskApiError`.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.error import HTTPError, URLError
from urllib.parse import quote, urlencode

NOT_CONFIGURED = (
    "ExternalTaskSensor needs the ledgerflow API to look up other DAG runs, and this task "
    "was given no API URL and token: the executor needs LEDGERFLOW_SECRET_KEY (the API's "
    "token signing key) and LEDGERFLOW_API_URL. `ledgerflow dags test` runs without the "
    "API, so it cannot run ExternalTaskSensor: run the DAG on a running ledgerflow instead"
)

_RETRY_STATUSES = frozenset({502, 503, 504})
_PAGE = 100


class TaskApiError(Exception):
    """The API could not answer (unreachable, refused the token, or an error). A later
    attempt may succeed (the API back, a fresh token), so the attempt is retryable."""

    retryable = True


class TaskApiNotConfigured(TaskApiError):
    """The task has no API URL/token. Retrying cannot help: the executor's settings must
    change."""

    retryable = False


def _iso(value: datetime) -> str:
    return (value if value.tzinfo is not None else value.replace(tzinfo=UTC)).isoformat()


def _segment(text: str) -> str:
    return quote(text, safe="")


class TaskApiClient:
    """A read-only client of ``/api/v2`` for one attempt."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float = 5.0,
        attempts: int = 3,
        backoff: float = 0.5,
        opener: Callable[..., Any] | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.url = url.rstrip("/")
        self._token = token
        self.timeout = timeout
        self.attempts = max(1, attempts)
        self.backoff = backoff
        self._opener = opener
        self._sleep = sleep

    def __repr__(self) -> str:  # never show the token
        return f"<TaskApiClient {self.url}>"

    # ------------------------------------------------------------------ HTTP
    def get(self, path: str, params: Mapping[str, Any] | None = None) -> Any | None:
        """The JSON of ``GET <url><path>?<params>``; None on 404."""
        import urllib.request

        query = f"?{urlencode(params, doseq=True)}" if params else ""
        request = urllib.request.Request(
            f"{self.url}{path}{query}",
            headers={"Authorization": f"Bearer {self._token}", "Accept": "application/json"},
        )
        opener = self._opener or urllib.request.urlopen
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                with opener(request, timeout=self.timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except HTTPError as e:
                if e.code == 404:
                    return None
                if e.code in _RETRY_STATUSES and attempt < self.attempts:
                    self._sleep(delay)
                    delay *= 2
                    continue
                detail = _detail(e)
                if e.code in (401, 403):
                    raise TaskApiError(
                        f"the ledgerflow API at {self.url} refused this task's token "
                        f"({e.code}: {detail}); the executor and the API must share "
                        "LEDGERFLOW_SECRET_KEY"
                    ) from None
                raise TaskApiError(
                    f"GET {path} on the ledgerflow API at {self.url} failed: {e.code} {detail}"
                ) from None
            except (URLError, OSError) as e:
                if attempt < self.attempts:
                    self._sleep(delay)
                    delay *= 2
                    continue
                reason = getattr(e, "reason", e)
                raise TaskApiError(
                    f"the ledgerflow API at {self.url} is unreachable ({reason}; tried "
                    f"{self.attempts} times); check LEDGERFLOW_API_URL of the executor"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    # ------------------------------------------------------------------ runs and tasks
    def dag_run_at(self, dag_id: str, logical_date: datetime) -> Mapping[str, Any] | None:
        """The run of ``dag_id`` at exactly ``logical_date`` (the latest queued, should
        there be several); None when there is none or the DAG is unknown."""
        when = _iso(logical_date)
        body = self.get(
            f"/api/v2/dags/{_segment(dag_id)}/dagRuns",
            {
                "logical_date_gte": when,
                "logical_date_lte": when,
                "order_by": "-queued_at",
                "limit": 1,
            },
        )
        runs = (body or {}).get("dag_runs") or []
        return runs[0] if runs else None

    def task_instances(
        self, dag_id: str, run_id: str, task_id: str | None = None
    ) -> list[Mapping[str, Any]]:
        """Every task instance of the run (of ``task_id`` only, when given), one per map
        index of an expanded mapped task; [] when the run is unknown."""
        path = f"/api/v2/dags/{_segment(dag_id)}/dagRuns/{_segment(run_id)}/taskInstances"
        found: list[Mapping[str, Any]] = []
        while True:
            params: dict[str, Any] = {"limit": _PAGE, "offset": len(found)}
            if task_id is not None:
                params["task_id"] = task_id
            body = self.get(path, params)
            page = (body or {}).get("task_instances") or []
            found.extend(page)
            if not page or len(found) >= int((body or {}).get("total_entries") or 0):
                return found


def _detail(error: HTTPError) -> str:
    try:
        body = json.loads(error.read().decode("utf-8", errors="replace"))
    except (ValueError, OSError):
        return str(error.reason)
    detail = body.get("detail") if isinstance(body, dict) else None
    return str(detail if detail is not None else error.reason)
