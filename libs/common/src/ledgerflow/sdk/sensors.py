"""Sensors: ``BaseSensorOperator`` and the standard ones.

``mode="poke"`` loops inside one attempt: ``poke()`` every ``poke_interval`` until it is
true (success) or ``timeout`` passes (``AirflowSensorTimeout``, or a skip with
``soft_fail``). ``mode="reschedule"`` pokes once per attempt and, if not done, raises
``AirflowRescheduleException(reschedule_date)``; the runner reports the attempt as
rescheduled and the scheduler's core requeues it and enforces ``timeout`` (ADR 0006).
``deferrable=True`` is accepted and falls back to these modes (there is no triggerer).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from datetime import time as dt_time
from typing import Any, ClassVar

from ledgerflow.sdk.baseoperator import BaseOperator
from ledgerflow.sdk.exceptions import (
    AirflowException,
    AirflowFailException,
    AirflowRescheduleException,
    AirflowSensorTimeout,
    AirflowSkipException,
    AirflowTaskTimeout,
)
from ledgerflow.sdk.operators import EmptyOperator, context_kwargs
from ledgerflow.sdk.state import DagRunState, TaskInstanceState

DEFAULT_SENSOR_TIMEOUT = 7 * 24 * 3600.0
"""Airflow's ``[sensors] default_timeout``: seven days."""

_SOFT_FAIL_EXCEPTIONS = (AirflowSensorTimeout, AirflowTaskTimeout, AirflowFailException)


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _interval(value: timedelta | float | None, what: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, timedelta):
        return value.total_seconds()
    if isinstance(value, int | float) and not isinstance(value, bool) and value >= 0:
        return float(value)
    raise ValueError(f"Operator arg `{what}` must be timedelta object or a non-negative number")


class PokeReturnValue:
    """What ``poke()`` may return instead of a bool: done or not, and the XCom value."""

    def __init__(self, is_done: bool, xcom_value: Any | None = None) -> None:
        self.xcom_value = xcom_value
        self.is_done = is_done

    def __bool__(self) -> bool:
        return self.is_done

    def __repr__(self) -> str:
        return f"PokeReturnValue(is_done={self.is_done!r}, xcom_value={self.xcom_value!r})"


class BaseSensorOperator(BaseOperator):
    """Wait until :meth:`poke` returns true. Subclasses implement ``poke(context)``."""

    ui_color: ClassVar[str] = "#e6f1f2"
    valid_modes: ClassVar[Iterable[str]] = ("poke", "reschedule")
    _is_sensor: ClassVar[bool] = True

    def __init__(
        self,
        *,
        poke_interval: timedelta | float = 60,
        timeout: timedelta | float | None = None,
        soft_fail: bool = False,
        mode: str = "poke",
        exponential_backoff: bool = False,
        max_wait: timedelta | float | None = None,
        silent_fail: bool = False,
        never_fail: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.poke_interval: float = _interval(poke_interval, "poke_interval")  # type: ignore[assignment]
        self.timeout: float = _interval(
            DEFAULT_SENSOR_TIMEOUT if timeout is None else timeout, "timeout"
        )  # type: ignore[assignment]
        self.soft_fail = soft_fail
        self.mode = mode
        self.exponential_backoff = exponential_backoff
        max_wait_seconds = _interval(max_wait, "max_wait")
        self.max_wait = (
            timedelta(seconds=max_wait_seconds) if max_wait_seconds is not None else None
        )
        if soft_fail and never_fail:
            raise ValueError(
                "soft_fail and never_fail are mutually exclusive, you can not provide both."
            )
        self.silent_fail = silent_fail
        self.never_fail = never_fail
        if self.mode not in self.valid_modes:
            raise ValueError(
                f"The mode must be one of {list(self.valid_modes)},'{self.dag_id}.{self.task_id}'; "
                f"received '{self.mode}'."
            )

    @property
    def reschedule(self) -> bool:
        return self.mode == "reschedule"

    def poke(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        """Override: is the condition met yet?"""
        raise AirflowException("Override me.")

    def _poke_once(self, context: dict[str, Any]) -> bool | PokeReturnValue:
        try:
            return self.poke(context)
        except _SOFT_FAIL_EXCEPTIONS as e:
            if self.soft_fail:
                raise AirflowSkipException("Skipping due to soft_fail is set to True.") from e
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from e
            raise
        except AirflowSkipException:
            raise
        except Exception as e:
            if self.silent_fail:
                self.log.exception("Sensor poke failed")
                return False
            if self.never_fail:
                raise AirflowSkipException("Skipping due to never_fail is set to True.") from e
            raise

    def _timed_out(self, duration: float) -> None:
        message = (
            f"Sensor has timed out; run duration of {duration} seconds exceeds the specified "
            f"timeout of {self.timeout}."
        )
        if self.soft_fail:
            raise AirflowSkipException(message)
        raise AirflowSensorTimeout(message)

    def execute(self, context: dict[str, Any]) -> Any:
        if self.reschedule:
            return self._execute_reschedule(context)
        started = time.monotonic()
        poke_count = 1
        while True:
            result = self._poke_once(context)
            if result:
                self.log.info("Success criteria met. Exiting.")
                return result.xcom_value if isinstance(result, PokeReturnValue) else None
            duration = time.monotonic() - started
            if duration > self.timeout:
                self._timed_out(duration)
            time.sleep(self.next_poke_interval(started, duration, poke_count))
            poke_count += 1

    def _execute_reschedule(self, context: dict[str, Any]) -> Any:
        result = self._poke_once(context)
        if result:
            self.log.info("Success criteria met. Exiting.")
            return result.xcom_value if isinstance(result, PokeReturnValue) else None
        # The first poke's date, when the runtime knows it; the core enforces the timeout
        # either way.
        first = None
        getter = getattr(context.get("ti"), "get_first_reschedule_date", None)
        if callable(getter):
            first = getter(context)
        started: Any = first or _utcnow()
        duration = (_utcnow() - first).total_seconds() if isinstance(first, datetime) else 0.0
        if duration > self.timeout:
            self._timed_out(duration)
        poke_count = int(context.get("task_reschedule_count") or 0) + 1
        interval = self.next_poke_interval(started, duration, poke_count)
        raise AirflowRescheduleException(_utcnow() + timedelta(seconds=interval))

    def next_poke_interval(self, started_at: Any, duration: float, poke_count: int) -> float:
        """``poke_interval``, or with ``exponential_backoff`` Airflow's jittered doubling
        (capped by ``max_wait`` and the time left before ``timeout``)."""
        if not self.exponential_backoff:
            return self.poke_interval
        import hashlib

        min_backoff = max(int(self.poke_interval * (2 ** (poke_count - 2))), 1)
        run_hash = int(
            hashlib.sha1(
                f"{self.dag_id}#{self.task_id}#{started_at}#{poke_count}".encode(),
                usedforsecurity=False,
            ).hexdigest(),
            16,
        )
        modded_hash = min_backoff + run_hash % min_backoff
        delay = min(modded_hash, timedelta.max.total_seconds() - 1)
        interval = min(self.timeout - int(duration), delay)
        if self.max_wait:
            interval = min(self.max_wait.total_seconds(), interval)
        return max(float(interval), 0.0)

    @staticmethod
    def spec_from_kwargs(kwargs: Mapping[str, Any]) -> Any:
        """The :class:`SensorSpec` of a sensor built with these arguments."""
        from ledgerflow.common.dagmodel import SensorSpec

        timeout = kwargs.get("timeout")
        return SensorSpec(
            mode=kwargs.get("mode", "poke"),
            poke_interval_seconds=_interval(kwargs.get("poke_interval", 60), "poke_interval")
            or 0.0,
            timeout_seconds=_interval(
                DEFAULT_SENSOR_TIMEOUT if timeout is None else timeout, "timeout"
            )
            or 0.0,
            soft_fail=bool(kwargs.get("soft_fail", False)),
            exponential_backoff=bool(kwargs.get("exponential_backoff", False)),
            max_wait_seconds=_interval(kwargs.get("max_wait"), "max_wait"),
        )

    def _sensor_spec(self) -> Any:
        from ledgerflow.common.dagmodel import SensorSpec

        return SensorSpec(
            mode=self.mode,  # type: ignore[arg-type]
            poke_interval_seconds=self.poke_interval,
            timeout_seconds=self.timeout,
            soft_fail=self.soft_fail,
            exponential_backoff=self.exponential_backoff,
            max_wait_seconds=self.max_wait.total_seconds() if self.max_wait else None,
        )


def _no_deferral(sensor: BaseOperator, deferrable: bool) -> None:
    if deferrable:
        sensor.log.warning(
            "%s: deferrable=True is not supported (no triggerer); poking instead",
            sensor.task_id,
        )


class PythonSensor(BaseSensorOperator):
    """Wait until ``python_callable`` returns something true (or a done
    :class:`PokeReturnValue`, whose ``xcom_value`` becomes the XCom)."""

    template_fields: ClassVar[Sequence[str]] = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if not callable(python_callable):
            raise TypeError(f"python_callable must be callable, got {python_callable!r}")
        self.python_callable = python_callable
        self.op_args = list(op_args or ())
        self.op_kwargs = dict(op_kwargs or {})
        self.templates_dict = templates_dict
        super().__init__(**kwargs)

    def poke(self, context: dict[str, Any]) -> PokeReturnValue | bool:
        merged = {**context, "templates_dict": self.templates_dict}
        kwargs = context_kwargs(self.python_callable, self.op_args, self.op_kwargs, merged)
        self.log.info("Poking callable: %s", self.python_callable)
        value = self.python_callable(*self.op_args, **kwargs)
        if isinstance(value, PokeReturnValue):
            return value
        return PokeReturnValue(bool(value))


class TimeDeltaSensor(BaseSensorOperator):
    """Wait until ``delta`` after the run's data interval end (or its ``run_after``)."""

    def __init__(
        self,
        *,
        delta: timedelta,
        deferrable: bool = False,
        end_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.delta = delta
        self.deferrable = deferrable
        _no_deferral(self, deferrable)

    def _base_time(self, context: Mapping[str, Any]) -> datetime:
        end = context.get("data_interval_end")
        if end:
            if not isinstance(end, datetime):
                raise ValueError("`data_interval_end` returned non-datetime object")
            return end
        dag_run = context.get("dag_run")
        base = getattr(dag_run, "run_after", None) or context.get("logical_date")
        if base is None:
            raise ValueError("`dag_run` not found in task context")
        return base  # type: ignore[no-any-return]

    def poke(self, context: dict[str, Any]) -> bool:
        target = _aware(self._base_time(context)) + self.delta
        self.log.info("Checking if the delta has elapsed target=%s", target)
        return _utcnow() > target


TimeDeltaSensorAsync = TimeDeltaSensor
WaitSensor = TimeDeltaSensor


class TimeSensor(BaseSensorOperator):
    """Wait until ``target_time`` (a time of day, UTC) today."""

    def __init__(
        self,
        *,
        target_time: dt_time,
        deferrable: bool = False,
        start_from_trigger: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.target_time = target_time
        _no_deferral(self, deferrable)

    def poke(self, context: dict[str, Any]) -> bool:
        now = _utcnow()
        target = datetime.combine(now.date(), self.target_time)
        return now > _aware(target)


TimeSensorAsync = TimeSensor


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def parse_datetime(value: str) -> datetime:
    """An ISO 8601 string as an aware datetime (naive means UTC)."""
    return _aware(datetime.fromisoformat(value.strip()))


class DateTimeSensor(BaseSensorOperator):
    """Wait until ``target_time`` (a datetime, or an ISO string that may be a template)."""

    template_fields: ClassVar[Sequence[str]] = ("target_time",)

    def __init__(
        self, *, target_time: str | datetime, deferrable: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        if isinstance(target_time, datetime):
            self.target_time: Any = target_time.isoformat()
        elif isinstance(target_time, str):
            self.target_time = target_time
        else:
            raise TypeError(
                f"Expected str or datetime.datetime type for target_time. Got {type(target_time)}"
            )
        _no_deferral(self, deferrable)

    def poke(self, context: dict[str, Any]) -> bool:
        self.log.info("Checking if the time (%s) has come", self.target_time)
        return _utcnow() > parse_datetime(str(self.target_time))


DateTimeSensorAsync = DateTimeSensor


class ExternalTaskSensor(BaseSensorOperator):
    """Wait for a task (or tasks, or a whole DAG run) of another DAG at a logical date.

    A task cannot query a database here: each poke asks the runtime (which asks the
    API with the attempt's token) through ``context["ti"].external_task_state(dag_id,
    None, logical_date)`` for a DAG run, ``external_task_map_states(dag_id, task_id,
    logical_date)`` for a task (one state per map index) and
    ``external_task_group_states(dag_id, group_id, logical_date)`` for a task group.
    The logical date is this run's, minus ``execution_delta`` or as computed by
    ``execution_date_fn(logical_date, context)``.
    """

    template_fields: ClassVar[Sequence[str]] = (
        "external_dag_id",
        "external_task_id",
        "external_task_ids",
        "external_task_group_id",
    )
    ui_color: ClassVar[str] = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str | None = None,
        external_task_ids: Iterable[str] | None = None,
        external_task_group_id: str | None = None,
        allowed_states: Iterable[str] | None = None,
        skipped_states: Iterable[str] | None = None,
        failed_states: Iterable[str] | None = None,
        execution_delta: timedelta | None = None,
        execution_date_fn: Callable[..., Any] | None = None,
        check_existence: bool = False,
        poll_interval: float = 2.0,
        deferrable: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.allowed_states = [str(s) for s in allowed_states] if allowed_states else ["success"]
        self.skipped_states = [str(s) for s in skipped_states] if skipped_states else []
        self.failed_states = [str(s) for s in failed_states] if failed_states else []
        total = set(self.allowed_states + self.skipped_states + self.failed_states)
        if len(total) != len(self.allowed_states) + len(self.skipped_states) + len(
            self.failed_states
        ):
            raise AirflowException(
                "Duplicate values provided across allowed_states, skipped_states and failed_states."
            )
        ids = list(external_task_ids) if external_task_ids else None
        if external_task_id is not None and ids is not None:
            raise ValueError(
                "Only one of `external_task_id` or `external_task_ids` may be provided to "
                "ExternalTaskSensor; use external_task_id or external_task_ids or "
                "external_task_group_id."
            )
        if external_task_id is not None:
            ids = [external_task_id]
        if external_task_group_id is not None and ids is not None:
            raise ValueError(
                "Only one of `external_task_group_id` or `external_task_ids` may be provided "
                "to ExternalTaskSensor; use external_task_id or external_task_ids or "
                "external_task_group_id."
            )
        valid = (
            {s.value for s in TaskInstanceState}
            if ids or external_task_group_id
            else {s.value for s in DagRunState}
        )
        if not total <= valid:
            raise ValueError(
                f"Valid values for `allowed_states`, `skipped_states` and `failed_states` "
                f"are: {sorted(valid)}"
            )
        if execution_delta is not None and execution_date_fn is not None:
            raise ValueError(
                "Only one of `execution_delta` or `execution_date_fn` may be provided to "
                "ExternalTaskSensor; not both."
            )
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.external_task_ids = ids
        self.external_task_group_id = external_task_group_id
        self.execution_delta = execution_delta
        self.execution_date_fn = execution_date_fn
        self.check_existence = check_existence
        self.poll_interval = poll_interval
        self.deferrable = deferrable
        _no_deferral(self, deferrable)

    def _dates(self, context: dict[str, Any]) -> list[datetime]:
        logical = context.get("logical_date")
        if self.execution_delta is not None:
            dates: Any = logical - self.execution_delta if logical is not None else None
        elif self.execution_date_fn is not None:
            import inspect

            params = inspect.signature(self.execution_date_fn).parameters
            if len(params) == 1:
                dates = self.execution_date_fn(logical)
            else:
                dates = self.execution_date_fn(
                    logical, **context_kwargs(self.execution_date_fn, [logical], {}, context)
                )
        else:
            dates = logical
        return list(dates) if isinstance(dates, list | tuple) else [dates]

    def _target_states(self, ti: Any, date: datetime | None) -> list[list[str | None]]:
        """Per awaited thing at ``date``: the states it is in (a mapped task has one per
        map index; a DAG run or unmapped task one). An unknown run or task is ``[None]``."""
        if self.external_task_group_id is not None:
            by_task = ti.external_task_group_states(
                self.external_dag_id, self.external_task_group_id, date
            )
            return list(by_task.values()) or [[None]]
        if not self.external_task_ids:
            return [[ti.external_task_state(self.external_dag_id, None, date)]]
        map_states = getattr(ti, "external_task_map_states", None)
        found: list[list[str | None]] = []
        for tid in self.external_task_ids:
            if callable(map_states):
                found.append(list(map_states(self.external_dag_id, tid, date)) or [None])
            else:
                found.append([ti.external_task_state(self.external_dag_id, tid, date)])
        return found

    def poke(self, context: dict[str, Any]) -> bool:
        ti = context["ti"]
        if not callable(getattr(ti, "external_task_state", None)):
            raise AirflowException(
                "ExternalTaskSensor needs the runtime to provide ti.external_task_state()"
            )
        if self.external_task_group_id is not None and not callable(
            getattr(ti, "external_task_group_states", None)
        ):
            raise AirflowException(
                "ExternalTaskSensor(external_task_group_id=...) needs the runtime to provide "
                "ti.external_task_group_states()"
            )
        # A task counts as in a set of states only when every map index is in it (Airflow
        # after apache/airflow#30742); an unknown state (None) is in no set.
        targets = [
            [None if s is None else str(getattr(s, "value", s)) for s in states]
            for date in self._dates(context)
            for states in self._target_states(ti, date)
        ]

        def all_in(states: list[str | None], wanted: list[str]) -> bool:
            return bool(states) and all(s is not None and s in wanted for s in states)

        if self.external_task_group_id is not None:
            what = f"task group {self.external_task_group_id!r} of DAG {self.external_dag_id!r}"
        elif self.external_task_ids:
            what = f"tasks {self.external_task_ids} of DAG {self.external_dag_id!r}"
        else:
            what = f"DAG {self.external_dag_id!r}"
        self.log.info("Poking for %s: %s", what, targets)
        if self.failed_states and any(all_in(t, self.failed_states) for t in targets):
            message = f"The external {what} failed."
            if self.soft_fail:
                raise AirflowSkipException(message)
            raise AirflowException(message)
        if self.skipped_states and any(all_in(t, self.skipped_states) for t in targets):
            raise AirflowSkipException(f"The external {what} reached a skipped state.")
        return bool(targets) and all(all_in(t, self.allowed_states) for t in targets)


ExternalTaskSensorAsync = ExternalTaskSensor


class ExternalTaskMarker(EmptyOperator):
    """Marks a task that another DAG's ``ExternalTaskSensor`` waits for (Airflow clears
    it recursively; here it is a no-op kept so DAG files import)."""

    template_fields: ClassVar[Sequence[str]] = (
        "external_dag_id",
        "external_task_id",
        "logical_date",
    )
    ui_color: ClassVar[str] = "#4db7db"

    def __init__(
        self,
        *,
        external_dag_id: str,
        external_task_id: str,
        logical_date: str | datetime | None = "{{ logical_date.isoformat() }}",
        recursion_depth: int = 10,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.external_dag_id = external_dag_id
        self.external_task_id = external_task_id
        self.logical_date = (
            logical_date.isoformat() if isinstance(logical_date, datetime) else logical_date
        )
        if recursion_depth <= 0:
            raise ValueError("recursion_depth should be a positive integer")
        self.recursion_depth = recursion_depth


class BashSensor(BaseSensorOperator):
    """Wait until a bash command exits 0. With ``retry_exit_code``, that code means "not
    yet" and any other non-zero code fails the task."""

    template_fields: ClassVar[Sequence[str]] = ("bash_command", "env")

    def __init__(
        self,
        *,
        bash_command: str,
        env: Mapping[str, str] | None = None,
        output_encoding: str = "utf-8",
        retry_exit_code: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bash_command = bash_command
        self.env = env
        self.output_encoding = output_encoding
        self.retry_exit_code = retry_exit_code

    def poke(self, context: dict[str, Any]) -> bool:
        import os
        import subprocess

        env = None if self.env is None else dict(self.env)
        self.log.info("Running command: %s", self.bash_command)
        resp = subprocess.run(
            ["bash", "-c", str(self.bash_command)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env if env is not None else dict(os.environ),
            check=False,
        )
        for line in resp.stdout.decode(
            self.output_encoding, errors="backslashreplace"
        ).splitlines():
            self.log.info(line)
        if self.retry_exit_code is not None:
            if resp.returncode == self.retry_exit_code:
                self.log.info("Return code matches retry code, will retry later")
                return False
            if resp.returncode:
                raise AirflowFailException(f"Command exited with return code {resp.returncode}")
        return not resp.returncode
