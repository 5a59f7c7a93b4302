"""Timetables as DAG authors write them (Airflow 3's classes and constructor
signatures), and ``resolve_time_schedule``: what a time-based ``schedule=`` means.

Each class only records its arguments; ``serialize()`` turns it into the
``TimetableSpec`` the scheduler reads, and the pure core
(``ledgerflow.common.core.timetables``) computes the runs. A cron string or preset is a
``CronTriggerTimetable`` and a ``timedelta`` a ``DeltaTriggerTimetable``, as in Airflow 3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import TimetableSpec

PRESETS = (
    "@once",
    "@continuous",
    "@hourly",
    "@daily",
    "@weekly",
    "@monthly",
    "@quarterly",
    "@yearly",
    "@annually",
    "@midnight",
)


class InvalidTimetable(ValueError):
    """A schedule that cannot work (Airflow's ``AirflowTimetableInvalid``)."""


AirflowTimetableInvalid = InvalidTimetable


def timezone_name(tz: Any) -> str:
    """The name the core understands for a time zone given as a string, a ``ZoneInfo``,
    a pendulum ``Timezone``/``FixedTimezone``, ``datetime.timezone`` or a pytz zone."""
    from ledgerflow.common.core.timetables import TimetableInvalid, zone

    if tz is None:
        return "UTC"
    if isinstance(tz, str):
        name = tz
    elif tz is dt.UTC or getattr(tz, "key", None) in ("UTC", "Etc/UTC"):
        name = "UTC"
    elif isinstance(getattr(tz, "key", None), str):  # zoneinfo / pendulum 3 Timezone
        name = tz.key
    elif isinstance(getattr(tz, "zone", None), str):  # pytz
        name = tz.zone
    elif isinstance(tz, dt.tzinfo) and tz.utcoffset(None) is not None:  # fixed offsets
        offset = tz.utcoffset(None)
        assert offset is not None
        minutes = int(offset.total_seconds()) // 60
        if minutes == 0:
            return "UTC"
        sign = "-" if minutes < 0 else "+"
        name = f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    elif isinstance(getattr(tz, "name", None), str):  # pendulum 2 Timezone
        name = tz.name
    else:
        raise InvalidTimetable(f"unsupported time zone {tz!r}")
    try:
        zone(name)
    except TimetableInvalid as e:
        raise InvalidTimetable(str(e)) from None
    return name


def _seconds(delta: Any, what: str) -> float:
    """A ``timedelta`` (or a ``relativedelta`` without months or years) in seconds."""
    if isinstance(delta, dt.timedelta):
        seconds = delta.total_seconds()
    elif all(hasattr(delta, a) for a in ("years", "months", "days", "hours")):
        if delta.years or delta.months:
            raise InvalidTimetable(
                f"{what} {delta!r}: months and years have no fixed length; use a cron "
                "schedule (e.g. '@monthly') instead"
            )
        seconds = dt.timedelta(
            days=delta.days,
            hours=delta.hours,
            minutes=delta.minutes,
            seconds=delta.seconds,
            microseconds=delta.microseconds,
        ).total_seconds()
    else:
        raise InvalidTimetable(f"{what} must be a timedelta, not {delta!r}")
    return seconds


def _positive(delta: Any, what: str) -> float:
    seconds = _seconds(delta, what)
    if seconds <= 0:
        raise InvalidTimetable(f"{what} must be positive, not {delta!r}")
    return seconds


def _cron(expression: Any) -> str:
    from ledgerflow.common.core.timetables import TimetableInvalid, validate_cron

    if not isinstance(expression, str):
        raise InvalidTimetable(f"a cron expression must be a string, not {expression!r}")
    if expression.strip().startswith("@") and expression.strip() not in PRESETS:
        raise InvalidTimetable(
            f"unknown schedule preset {expression!r} (one of {', '.join(PRESETS)})"
        )
    try:
        validate_cron(expression)
    except TimetableInvalid as e:
        raise InvalidTimetable(str(e)) from None
    return expression.strip()


def _run_immediately(value: Any) -> dict[str, Any]:
    if value is True or value is False:
        return {"run_immediately": value, "run_immediately_seconds": None}
    if value is None:
        return {"run_immediately": False, "run_immediately_seconds": None}
    seconds = _seconds(value, "run_immediately")
    if seconds < 0:
        raise InvalidTimetable(f"run_immediately must not be negative, not {value!r}")
    return {"run_immediately": True, "run_immediately_seconds": seconds}


def _spec(**fields: Any) -> TimetableSpec:
    from ledgerflow.common.core.timetables import describe
    from ledgerflow.common.dagmodel import TimetableSpec

    spec = TimetableSpec(**fields)
    if spec.description is None:
        spec = spec.model_copy(update={"description": describe(spec)})
    return spec


class Timetable:
    """Base of the timetable classes (Airflow's ``Timetable`` protocol, the parts a DAG
    file uses: ``summary``, ``description``, ``serialize``)."""

    description: str = ""
    periodic: bool = True
    can_be_scheduled: bool = True
    active_runs_limit: int | None = None

    def serialize(self) -> TimetableSpec:
        raise NotImplementedError

    @property
    def summary(self) -> str:
        from ledgerflow.common.core.timetables import summary

        return summary(self.serialize())

    def validate(self) -> None:
        self.serialize()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.summary!r})"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Timetable):
            return NotImplemented
        return type(self) is type(other) and self.serialize() == other.serialize()

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.summary))


class _CronTimetable(Timetable):
    def __init__(self, cron: str, timezone: Any) -> None:
        self._expression = _cron(cron)
        self._timezone = timezone_name(timezone)

    @property
    def description(self) -> str:  # type: ignore[override]
        from ledgerflow.common.core.cron_words import describe_cron
        from ledgerflow.common.core.timetables import expand_preset

        return describe_cron(expand_preset(self._expression))


class CronTriggerTimetable(_CronTimetable):
    """A run at each cron time; its logical date is that time and its data interval
    ``[time - interval, time]`` (``interval`` is zero by default).

    ``run_immediately`` (only without a ``start_date``): True runs the latest past cron
    time at once; a ``timedelta`` does so only if it is at most that old; False/None
    do when it is within 10% of the time between runs (Airflow's rule).
    """

    def __init__(
        self,
        cron: str,
        *,
        timezone: Any,
        interval: Any = dt.timedelta(),
        run_immediately: bool | dt.timedelta | None = False,
    ) -> None:
        super().__init__(cron, timezone)
        self._interval = _seconds(interval, "interval")
        if self._interval < 0:
            raise InvalidTimetable(f"interval must not be negative, not {interval!r}")
        self._run_immediately = _run_immediately(run_immediately)

    def serialize(self) -> TimetableSpec:
        return _spec(
            kind="cron_trigger",
            expression=self._expression,
            timezone=self._timezone,
            interval_seconds=self._interval,
            **self._run_immediately,
        )


class CronDataIntervalTimetable(_CronTimetable):
    """A run per interval between two cron times, started when the interval ends
    (logical date = the interval's start): Airflow 2's meaning of a cron schedule."""

    def __init__(self, cron: str, timezone: Any) -> None:
        super().__init__(cron, timezone)

    def serialize(self) -> TimetableSpec:
        return _spec(
            kind="cron_data_interval", expression=self._expression, timezone=self._timezone
        )


class MultipleCronTriggerTimetable(Timetable):
    """A run whenever one of the cron expressions fires (one run per time at most)."""

    def __init__(
        self,
        *crons: str,
        timezone: Any,
        interval: Any = dt.timedelta(),
        run_immediately: bool | dt.timedelta | None = False,
    ) -> None:
        if not crons:
            raise InvalidTimetable("cron expression required")
        self._expressions = tuple(_cron(c) for c in crons)
        self._timezone = timezone_name(timezone)
        self._interval = _seconds(interval, "interval")
        self._run_immediately = _run_immediately(run_immediately)

    def serialize(self) -> TimetableSpec:
        return _spec(
            kind="multiple_cron_trigger",
            expressions=self._expressions,
            timezone=self._timezone,
            interval_seconds=self._interval,
            **self._run_immediately,
        )


class DeltaTriggerTimetable(Timetable):
    """A run every ``delta`` from the start date, at the start of each period (data
    interval ``[time - interval, time]``)."""

    def __init__(self, delta: Any, *, interval: Any = dt.timedelta()) -> None:
        self._delta = _positive(delta, "schedule interval")
        self._interval = _seconds(interval, "interval")

    def serialize(self) -> TimetableSpec:
        return _spec(
            kind="delta_trigger", delta_seconds=self._delta, interval_seconds=self._interval
        )


class DeltaDataIntervalTimetable(Timetable):
    """A run per ``delta``-long data interval, started when the interval ends."""

    def __init__(self, delta: Any) -> None:
        self._delta = _positive(delta, "schedule interval")

    def serialize(self) -> TimetableSpec:
        return _spec(kind="delta_data_interval", delta_seconds=self._delta)


class EventsTimetable(Timetable):
    """A run at each of the listed datetimes (naive ones are UTC)."""

    def __init__(
        self,
        event_dates: Iterable[dt.datetime],
        restrict_to_events: bool = False,
        presorted: bool = False,
        description: str | None = None,
    ) -> None:
        dates = []
        for when in event_dates:
            if not isinstance(when, dt.datetime):
                raise InvalidTimetable(f"event dates must be datetimes, not {when!r}")
            dates.append(when if when.tzinfo else when.replace(tzinfo=dt.UTC))
        self.event_dates = dates if presorted else sorted(dates)
        self.restrict_to_events = restrict_to_events
        self._description = description

    @property
    def description(self) -> str:  # type: ignore[override]
        return self.serialize().description or ""

    def serialize(self) -> TimetableSpec:
        return _spec(
            kind="events",
            events=tuple(self.event_dates),
            restrict_to_events=self.restrict_to_events,
            description=self._description,
        )


class OnceTimetable(Timetable):
    """``@once``: one run, at the start date (or at once without one)."""

    periodic = False
    description = "Once, as soon as possible"

    def serialize(self) -> TimetableSpec:
        return _spec(kind="once")


class ContinuousTimetable(Timetable):
    """``@continuous``: a new run as soon as the previous one ends (one at a time)."""

    description = "As frequently as possible, but only one run at a time."
    active_runs_limit = 1

    def serialize(self) -> TimetableSpec:
        return _spec(kind="continuous")


class NullTimetable(Timetable):
    """``schedule=None``: runs only when triggered."""

    periodic = False
    can_be_scheduled = False
    description = "Never, external triggers only"

    def serialize(self) -> TimetableSpec:  # type: ignore[override]
        raise InvalidTimetable("NullTimetable has no spec; it means schedule=None")

    @property
    def summary(self) -> str:
        return "None"


def resolve_time_schedule(schedule: Any, *, tz: Any = None) -> TimetableSpec | None:
    """The timetable a time-based ``schedule=`` means, in the DAG's time zone ``tz``
    (the start date's; UTC by default): a cron string or preset (a
    ``CronTriggerTimetable``), ``@once``, ``@continuous``, a ``timedelta`` (a
    ``DeltaTriggerTimetable``), a timetable object or a ``TimetableSpec``.

    None for ``schedule=None`` and for anything that is not a time schedule (assets,
    handled by ``ledgerflow.sdk.assets``). ``InvalidTimetable`` (a ``ValueError``) for
    a bad cron expression, unknown preset or non-positive delta.
    """
    from ledgerflow.common.dagmodel import TimetableSpec

    if schedule is None or isinstance(schedule, NullTimetable):
        return None
    if isinstance(schedule, TimetableSpec):
        return schedule
    if isinstance(schedule, Timetable):
        return schedule.serialize()
    if isinstance(schedule, str):
        text = schedule.strip()
        if text == "@once":
            return OnceTimetable().serialize()
        if text == "@continuous":
            return ContinuousTimetable().serialize()
        return CronTriggerTimetable(text, timezone=timezone_name(tz)).serialize()
    if isinstance(schedule, dt.timedelta) or type(schedule).__name__ == "relativedelta":
        return DeltaTriggerTimetable(schedule).serialize()
    serialize = getattr(schedule, "serialize", None)
    if callable(serialize) and type(schedule).__module__.startswith("ledgerflow.sdk"):
        result = serialize()
        if isinstance(result, TimetableSpec):
            return result
    return None


def timetable_for(schedule: Any, *, tz: Any = None) -> Timetable | None:
    """The timetable object a time-based ``schedule=`` means (Airflow's
    ``DAG.timetable``): ``NullTimetable`` for None, None for asset schedules."""
    if schedule is None:
        return NullTimetable()
    if isinstance(schedule, Timetable):
        return schedule
    if isinstance(schedule, str):
        text = schedule.strip()
        if text == "@once":
            return OnceTimetable()
        if text == "@continuous":
            return ContinuousTimetable()
        return CronTriggerTimetable(text, timezone=timezone_name(tz))
    if isinstance(schedule, dt.timedelta) or type(schedule).__name__ == "relativedelta":
        return DeltaTriggerTimetable(schedule)
    return None


def is_time_schedule(schedule: Any) -> bool:
    """A schedule ``resolve_time_schedule`` reads (not None, not assets)."""
    from ledgerflow.common.dagmodel import TimetableSpec

    return (
        isinstance(schedule, str | dt.timedelta | Timetable | TimetableSpec)
        or type(schedule).__name__ == "relativedelta"
    )


def dag_timezone(start_date: dt.datetime | None) -> str:
    """A DAG's time zone: its start date's (naive: UTC), as Airflow's ``DAG.timezone``."""
    if start_date is None or start_date.tzinfo is None:
        return "UTC"
    return timezone_name(start_date.tzinfo)


__all__ = [
    "AirflowTimetableInvalid",
    "ContinuousTimetable",
    "CronDataIntervalTimetable",
    "CronTriggerTimetable",
    "DeltaDataIntervalTimetable",
    "DeltaTriggerTimetable",
    "EventsTimetable",
    "InvalidTimetable",
    "MultipleCronTriggerTimetable",
    "NullTimetable",
    "OnceTimetable",
    "Timetable",
    "dag_timezone",
    "is_time_schedule",
    "resolve_time_schedule",
    "timetable_for",
    "timezone_name",
]
