"""Exceptions of the authoring SDK.

Two families:

* :class:`DagAuthoringError` and its subclasses describe a broken DAG *file* (a cycle, a
  duplicate id). They carry the line in the user's file, so parsing can report it.
* :class:`AirflowException` and its subclasses are raised by *tasks* at run time. The names
  follow Airflow's so that code written for Airflow reads the same here; whether a retry
  can help is a property of the exception (:attr:`AirflowException.retryable`).
"""

from __future__ import annotations


class DagAuthoringError(Exception):
    """A DAG file describes something invalid. ``kind`` names the problem for callers."""

    kind = "error"

    def __init__(self, message: str, *, lineno: int | None = None, filename: str | None = None):
        super().__init__(message)
        self.message = message
        self.lineno = lineno
        self.filename = filename


class DuplicateTaskIdFound(DagAuthoringError):
    """Two tasks of one DAG share a task id (``lineno`` is the second definition)."""

    kind = "duplicate_task_id"


class DuplicateDagIdFound(DagAuthoringError):
    """Two DAGs of one file share a dag id (``lineno`` is the second definition)."""

    kind = "duplicate_dag_id"


class DagCycleError(DagAuthoringError):
    """The dependencies form a cycle (``lineno`` is the edge that closed it)."""

    kind = "cycle"


class AirflowException(Exception):
    """A task failed. A retry may help unless :attr:`retryable` is false."""

    retryable = True


class AirflowFailException(AirflowException):
    """Fail the task at once, without using its remaining retries."""

    retryable = False


class AirflowTaskTimeout(AirflowException):
    """The task ran longer than its ``execution_timeout``."""


class AirflowTaskTerminated(AirflowException):
    """The task process was asked to stop (SIGTERM), e.g. because the run was cancelled."""
