"""Exceptions of the authoring SDK.

Two families:

* :class:`DagAuthoringError` and its subclasses describe a broken DAG *file* (a cycle, a
  duplicate id). They carry the line in the user's file, so parsing can report it.
* :class:`AirflowException` and its subclasses are raised by *tasks* at run time. The names
  follow Airflow's so that code written for Airflow reads the same here; whether a retry
  can help is a property of the exception (:attr:`AirflowException.retryable`).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any


class DagAuthoringError(Exception):
    """A DAG file describes something invalid. ``kind`` names the problem for callers."""

    kind = "error"

    def __init__(self, message: str, *, lineno: int | None = None, filename: str | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.filename = filename


class DuplicateTaskIdFound(DagAuthoringError):
    """Two tasks (or a task and a task group) of one DAG share an id (``lineno`` is the
    second definition)."""

    kind = "duplicate_task_id"


class DuplicateDagIdFound(DagAuthoringError):
    """Two DAGs of one file share a dag id (``lineno`` is the second definition)."""

    kind = "duplicate_dag_id"


class DagCycleError(DagAuthoringError):
    """The dependencies form a cycle (``lineno`` is the edge that closed it)."""

    kind = "cycle"


AirflowDagCycleException = DagCycleError


class AirflowException(Exception):
    """A task failed. A retry may help unless :attr:`retryable` is false."""

    retryable = True
    status_code = 500


class AirflowBadRequest(AirflowException):
    """A request was malformed (Airflow's name)."""

    status_code = 400


class AirflowNotFoundException(AirflowException):
    """Something a task asked for (a connection, a variable) does not exist."""

    status_code = 404


class AirflowConfigException(AirflowException):
    """A configuration value is missing or wrong."""


class AirflowFailException(AirflowException):
    """Fail the task at once, without using its remaining retries."""

    retryable = False


class AirflowSkipException(AirflowException):
    """Raised by a task to mark itself (not a failure) as skipped."""


class AirflowTaskTimeout(AirflowException):
    """The task ran longer than its ``execution_timeout``."""


class AirflowTaskTerminated(AirflowException):
    """The task process was asked to stop (SIGTERM), e.g. because the run was cancelled."""


class AirflowSensorTimeout(AirflowException):
    """A sensor's ``timeout`` passed before its condition held. Not retried (Airflow)."""

    retryable = False


class AirflowRescheduleException(AirflowException):
    """A sensor in ``reschedule`` mode asks to be run again at ``reschedule_date``.

    The runner turns it into a ``rescheduled`` outcome; it is not a failure.
    """

    def __init__(self, reschedule_date: datetime) -> None:
        super().__init__(f"reschedule at {reschedule_date.isoformat()}")
        self.reschedule_date = reschedule_date


class TaskDeferred(AirflowException):
    """Airflow's signal that an operator wants to wait in the triggerer.

    ledgerflow has no triggerer: raising it fails the task with a message that says so
    (use ``mode="reschedule"`` for long waits instead).
    """

    retryable = False

    def __init__(
        self,
        *,
        trigger: Any = None,
        method_name: str | None = None,
        kwargs: dict[str, Any] | None = None,
        timeout: Any = None,
    ) -> None:
        super().__init__(
            "deferrable operators are not supported by ledgerflow (there is no triggerer); "
            "use the operator without deferrable=True, or a sensor with mode='reschedule'"
        )
        self.trigger = trigger
        self.method_name = method_name
        self.kwargs = kwargs
        self.timeout = timeout


class ParamValidationError(AirflowException):
    """A param's value does not match its schema (or a required param has no value)."""

    retryable = False


class XComNotFound(AirflowException):
    """An XCom a task needs is not there."""


class DownstreamTasksSkipped(AirflowException):
    """Airflow 3's internal signal from branching; kept for imports only."""

    def __init__(self, *, tasks: Any = ()) -> None:
        super().__init__(f"downstream tasks skipped: {tasks}")
        self.tasks = tasks


class RemovedInAirflow4Warning(DeprecationWarning):
    """Airflow's deprecation warning category (kept so imports of it keep working)."""
