"""When a DAG's scheduled runs happen: Airflow 3's timetables as pure functions.

A ``TimetableSpec`` (what ``schedule=`` resolved to when the file was parsed) goes in,
with the last automated run and the DAG's time restriction (``start_date``,
``end_date``, ``catchup``); the next run comes out. The clock is an argument (``now``),
never read here. Every datetime in and out is aware and out is UTC; local time exists
only inside, to evaluate cron expressions in the DAG's time zone.

Semantics follow Airflow 3 (``airflow/timetables/trigger.py``, ``interval.py``,
``events.py``, ``simple.py``, ``_cron.py``), with one deliberate difference recorded in
the issue-6 design: for trigger timetables the logical date is the trigger time
(``run_after``), not the start of the optional ``interval``.

Daylight saving time is handled as Airflow's ``CronMixin`` does: croniter runs on the
naive local time; the result is localized preferring the *second* occurrence of an
ambiguous wall time (``fold=1``) and moving a wall time that does not exist forward
by the gap. Expressions that fire at least every hour step by the naive difference in
absolute time instead, so ``30 * * * *`` also fires in the repeated hour of a fall-back.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, croniter
from ledgerflow.common.core.cron_words import describe_cron, words_for_delta
from ledgerflow.common.dagmodel import TimetableSpec

CRON_PRESETS: dict[str, str] = {
    "@hourly": "0 * * * *",
    "@daily": "0 0 * * *",
    "@weekly": "0 0 * * 0",
    "@monthly": "0 0 1 * *",
    "@quarterly": "0 0 1 */3 *",
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@midnight": "0 0 * * *",
}
"""Airflow's ``cron_presets`` (``@once``/``@continuous`` are timetables of their own)."""

RUN_TYPES = ("scheduled", "manual", "backfill", "asset_triggered")
TIME_KINDS = (
    "cron_trigger",
    "cron_data_interval",
    "multiple_cron_trigger",
    "delta_trigger",
    "delta_data_interval",
    "events",
    "once",
    "continuous",
)
_MAX_RUNS_BETWEEN = 100_000


@dataclass(frozen=True)
class DataInterval:
    start: datetime
    end: datetime

    @classmethod
    def exact(cls, at: datetime) -> DataInterval:
        return cls(start=at, end=at)


@dataclass(frozen=True)
class DagRunInfo:
    """One run a timetable asks for: created (and started) at ``run_after``."""

    run_after: datetime
    logical_date: datetime
    data_interval: DataInterval

    @classmethod
    def exact(cls, at: datetime) -> DagRunInfo:
        at = _utc(at)
        return cls(run_after=at, logical_date=at, data_interval=DataInterval.exact(at))

    @classmethod
    def interval(cls, start: datetime, end: datetime) -> DagRunInfo:
        """A data-interval run: logical date = interval start, runs when it ends."""
        start, end = _utc(start), _utc(end)
        return cls(run_after=end, logical_date=start, data_interval=DataInterval(start, end))

    @classmethod
    def trigger(cls, at: datetime, interval: timedelta) -> DagRunInfo:
        """A trigger run: logical date = run_after = ``at``, data ``[at - interval, at]``."""
        at = _utc(at)
        return cls(run_after=at, logical_date=at, data_interval=DataInterval(at - interval, at))


@dataclass(frozen=True)
class TimeRestriction:
    """``start_date`` (earliest), ``end_date`` (latest), both inclusive, and catchup."""

    earliest: datetime | None
    latest: datetime | None
    catchup: bool


class TimetableInvalid(ValueError):
    """A spec that cannot schedule (bad cron expression, unknown time zone...)."""


# --------------------------------------------------------------------------- time zones


def _utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value!r}: timetables need aware datetimes")
    return value.astimezone(UTC).replace(fold=0)


_OFFSET = re.compile(r"^(?:UTC|GMT)?([+-])(\d{1,2}):?(\d{2})?$")


@functools.lru_cache(maxsize=256)
def zone(name: str) -> tzinfo:
    """The tzinfo for an IANA name, ``UTC`` or a fixed offset like ``+05:30``."""
    if name in ("UTC", "utc", "Z", "Etc/UTC"):
        return UTC
    match = _OFFSET.match(name)
    if match:
        sign, hours, minutes = match.groups()
        offset = timedelta(hours=int(hours), minutes=int(minutes or 0))
        return timezone(-offset if sign == "-" else offset)
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise TimetableInvalid(f"unknown time zone {name!r}") from exc


def localize(naive: datetime, tz: tzinfo) -> datetime:
    """A naive wall time in ``tz`` made aware as Airflow's ``make_aware`` (pendulum) does:
    an ambiguous time is its second occurrence; a time in a spring-forward gap moves
    forward by the gap (02:30 that does not exist becomes 03:30)."""
    second = naive.replace(tzinfo=tz, fold=1)
    if second.astimezone(UTC).astimezone(tz).replace(tzinfo=None) == naive:
        return second
    return naive.replace(tzinfo=tz, fold=0)


def _naive_local(current: datetime, tz: tzinfo) -> datetime:
    return current.astimezone(tz).replace(tzinfo=None, fold=0)


# --------------------------------------------------------------------------- cron


def expand_preset(expression: str) -> str:
    return CRON_PRESETS.get(expression.strip(), expression.strip())


@functools.lru_cache(maxsize=1024)
def validate_cron(expression: str) -> str:
    """The expression with presets expanded; ``TimetableInvalid`` if croniter rejects it."""
    expanded = expand_preset(expression)
    if expanded in ("@once", "@continuous"):
        raise TimetableInvalid(f"{expression!r} is not a cron expression")
    try:
        croniter(expanded)
    except (CroniterBadCronError, CroniterBadDateError, ValueError, KeyError) as exc:
        raise TimetableInvalid(f"invalid cron expression {expression!r}: {exc}") from exc
    return expanded


@dataclass(frozen=True)
class _Cron:
    expression: str
    tz: tzinfo

    def next(self, current: datetime) -> datetime:
        """The first cron time strictly after ``current`` (UTC)."""
        naive = _naive_local(current, self.tz)
        scheduled, every_hour = _cron_step(self.expression, naive, True)
        if not every_hour:
            return _utc(localize(scheduled, self.tz))
        return _utc(current + (scheduled - naive))

    def prev(self, current: datetime) -> datetime:
        """The last cron time strictly before ``current`` (UTC)."""
        naive = _naive_local(current, self.tz)
        scheduled, every_hour = _cron_step(self.expression, naive, False)
        if not every_hour:
            return _utc(localize(scheduled, self.tz))
        return _utc(current - (naive - scheduled))

    def align_to_next(self, current: datetime) -> datetime:
        """``current`` if it is a cron time, else the next one."""
        nxt = self.next(current)
        return nxt if self.prev(nxt) != _utc(current) else _utc(current)

    def align_to_prev(self, current: datetime) -> datetime:
        """``current`` if it is a cron time, else the previous one."""
        prv = self.prev(current)
        return prv if self.next(prv) != _utc(current) else _utc(current)


@functools.lru_cache(maxsize=16384)
def _cron_step(expression: str, naive: datetime, forward: bool) -> tuple[datetime, bool]:
    """croniter's next (or previous) naive time after ``naive``, and whether the
    expression fires every hour (Airflow's "fold hour" workaround applies only then).
    Memoized: croniter is slow, and many DAGs ask for the same ticks (the same start
    date, the same last run)."""
    it = croniter(expression, start_time=naive)
    scheduled: datetime = it.get_next(datetime) if forward else it.get_prev(datetime)
    return scheduled, it.expanded[1] == ["*"]


@dataclass(frozen=True)
class _Delta:
    delta: timedelta

    def next(self, current: datetime) -> datetime:
        return _utc(current + self.delta)

    def prev(self, current: datetime) -> datetime:
        return _utc(current - self.delta)

    def align_to_next(self, current: datetime) -> datetime:
        return _utc(current)

    def align_to_prev(self, current: datetime) -> datetime:
        return _utc(current)


_Schedule = _Cron | _Delta


def _cron(spec: TimetableSpec, expression: str | None = None) -> _Cron:
    expr = expression if expression is not None else spec.expression
    if not expr:
        raise TimetableInvalid(f"timetable {spec.kind!r} needs a cron expression")
    return _Cron(validate_cron(expr), zone(spec.timezone))


def _delta(spec: TimetableSpec) -> _Delta:
    if not spec.delta_seconds:
        raise TimetableInvalid(f"timetable {spec.kind!r} needs a positive delta")
    return _Delta(timedelta(seconds=spec.delta_seconds))


def time_part(spec: TimetableSpec) -> TimetableSpec | None:
    """The time-based part of a spec: itself, the time half of ``asset_or_time``, or
    None for a pure asset schedule."""
    if spec.kind == "asset":
        return None
    if spec.kind == "asset_or_time":
        if spec.time_kind not in TIME_KINDS:
            return None
        return spec.model_copy(update={"kind": spec.time_kind, "time_kind": None})
    return spec


def validate(spec: TimetableSpec) -> None:
    """``TimetableInvalid`` (a ``ValueError``) if the spec cannot schedule."""
    part = time_part(spec)
    if part is None:
        return
    zone(part.timezone)
    if part.kind in ("cron_trigger", "cron_data_interval"):
        _cron(part)
    elif part.kind == "multiple_cron_trigger":
        if not part.expressions:
            raise TimetableInvalid("MultipleCronTriggerTimetable needs at least one cron")
        for expr in part.expressions:
            _cron(part, expr)
    elif part.kind in ("delta_trigger", "delta_data_interval"):
        _delta(part)
    elif part.kind == "events":
        for event in part.events:
            _utc(event)


# --------------------------------------------------------------------------- next run


def _trigger_next(
    sched: _Schedule,
    spec: TimetableSpec,
    *,
    last: DagRunInfo | None,
    restriction: TimeRestriction,
    now: datetime,
) -> DagRunInfo | None:
    """Airflow's ``_TriggerTimetable.next_dagrun_info`` (cron and delta triggers)."""
    interval = timedelta(seconds=spec.interval_seconds)
    if restriction.catchup:
        if last is not None:
            start = sched.next(last.data_interval.end)
        elif restriction.earliest is None:
            start = _first_trigger(sched, spec, now)
        else:
            start = sched.align_to_next(restriction.earliest)
    else:
        candidates = [sched.align_to_prev(now)]
        if last is not None:
            candidates.append(sched.next(last.data_interval.end))
        elif restriction.earliest is None:
            candidates.append(_first_trigger(sched, spec, now))
        if restriction.earliest is not None:
            candidates.append(sched.align_to_next(restriction.earliest))
        start = max(candidates)
    if restriction.latest is not None and restriction.latest < start:
        return None
    return DagRunInfo.trigger(start, interval)


def _first_trigger(sched: _Schedule, spec: TimetableSpec, now: datetime) -> datetime:
    """No start_date: ``run_immediately`` decides between the last and the next tick."""
    if isinstance(sched, _Delta):
        return _utc(now)
    past = sched.align_to_prev(now)
    upcoming = sched.align_to_next(now)
    if spec.run_immediately and spec.run_immediately_seconds is None:
        return past
    if spec.run_immediately_seconds is not None:
        buffer = timedelta(seconds=spec.run_immediately_seconds)
    else:  # Airflow: 10% of the gap between runs, at least five minutes
        buffer = max((upcoming - past) / 10, timedelta(minutes=5))
    return past if _utc(now) - past <= buffer else upcoming


def _interval_next(
    sched: _Schedule,
    *,
    last: DagRunInfo | None,
    restriction: TimeRestriction,
    now: datetime,
) -> DagRunInfo | None:
    """Airflow's ``_DataIntervalTimetable.next_dagrun_info``."""
    earliest = restriction.earliest
    if not restriction.catchup:
        earliest = _skip_to_latest(sched, earliest, now)
    elif earliest is not None:
        earliest = sched.align_to_next(earliest)
    if last is None:
        if earliest is None:
            return None
        start = earliest
    else:
        aligned = sched.align_to_prev(last.data_interval.end)
        start = max(aligned, earliest) if earliest is not None else aligned
    if restriction.latest is not None and start > restriction.latest:
        return None
    return DagRunInfo.interval(start, sched.next(start))


def _skip_to_latest(sched: _Schedule, earliest: datetime | None, now: datetime) -> datetime:
    """catchup=False: the start of the latest interval that has ended by ``now``."""
    now = _utc(now)
    if isinstance(sched, _Cron):
        last_start = sched.prev(now)
        next_start = sched.next(last_start)
        new_start = last_start if next_start == now else sched.prev(last_start)
        return new_start if earliest is None else max(new_start, sched.align_to_next(earliest))
    seconds = sched.delta.total_seconds()
    ts = now.timestamp()
    rounded = datetime.fromtimestamp(ts - (ts % seconds), tz=UTC)
    new_start = sched.prev(rounded)
    return new_start if earliest is None else max(new_start, _utc(earliest))


def _multiple_next(
    spec: TimetableSpec,
    *,
    last: DagRunInfo | None,
    restriction: TimeRestriction,
    now: datetime,
) -> DagRunInfo | None:
    """Airflow's ``MultipleCronTriggerTimetable``: the soonest of the crons' runs (with
    catchup=False: the latest that is already due, else the soonest to come)."""
    infos = [
        _trigger_next(_cron(spec, expr), spec, last=last, restriction=restriction, now=now)
        for expr in spec.expressions
    ]
    now_ts = _utc(now).timestamp()

    def key(info: DagRunInfo | None) -> float:
        if info is None:
            return float("inf")
        ts = info.logical_date.timestamp()
        if restriction.catchup or ts > now_ts:
            return ts
        return -ts

    return min(infos, key=key, default=None)


def _events_next(
    spec: TimetableSpec,
    *,
    last: DagRunInfo | None,
    restriction: TimeRestriction,
    now: datetime,
) -> DagRunInfo | None:
    earliest = restriction.earliest
    if not restriction.catchup and (earliest is None or _utc(now) > earliest):
        earliest = _utc(now)
    for event in sorted(_utc(e) for e in spec.events):
        if earliest is not None and event < earliest:
            continue
        if last is not None and event <= last.data_interval.end:
            continue
        if restriction.latest is not None and event > restriction.latest:
            return None
        return DagRunInfo.exact(event)
    return None


def _once_next(
    *, last: DagRunInfo | None, restriction: TimeRestriction, now: datetime
) -> DagRunInfo | None:
    if last is not None:
        return None
    run_after = restriction.earliest or now
    if restriction.latest is not None and run_after > restriction.latest:
        return None
    return DagRunInfo.exact(run_after)


def next_dagrun_info(
    spec: TimetableSpec,
    *,
    last: DagRunInfo | None,
    restriction: TimeRestriction,
    now: datetime,
) -> DagRunInfo | None:
    """The next automated run after ``last`` (None: the first), Airflow's
    ``Timetable.next_dagrun_info`` with the clock passed in.

    Honours ``start_date``/``end_date`` and catchup (False: never earlier than the
    latest run already due at ``now``). None when there is no further run: past
    ``end_date``, ``@once`` done, events exhausted, asset-only schedules, and
    ``@continuous`` (see ``continuous_dagrun_info``, used by the scheduler core)."""
    part = time_part(spec)
    if part is None:
        return None
    kind = part.kind
    if kind == "cron_trigger":
        return _trigger_next(_cron(part), part, last=last, restriction=restriction, now=now)
    if kind == "delta_trigger":
        return _trigger_next(_delta(part), part, last=last, restriction=restriction, now=now)
    if kind == "cron_data_interval":
        return _interval_next(_cron(part), last=last, restriction=restriction, now=now)
    if kind == "delta_data_interval":
        return _interval_next(_delta(part), last=last, restriction=restriction, now=now)
    if kind == "multiple_cron_trigger":
        return _multiple_next(part, last=last, restriction=restriction, now=now)
    if kind == "events":
        return _events_next(part, last=last, restriction=restriction, now=now)
    if kind == "once":
        return _once_next(last=last, restriction=restriction, now=now)
    return None  # continuous: continuous_dagrun_info


def continuous_dagrun_info(
    *, last: DagRunInfo | None, restriction: TimeRestriction, now: datetime
) -> DagRunInfo | None:
    """Airflow's ``ContinuousTimetable``: a run covering ``[last end, now]``, created as
    soon as the previous run has finished (the caller checks that; max one active run).
    None past ``end_date``."""
    now = _utc(now)
    start_date = _utc(restriction.earliest) if restriction.earliest else now
    if last is not None:
        if last.data_interval.end > now:  # start date in the future
            start = start_date
            end = start + (last.data_interval.end - last.data_interval.start)
        else:
            start, end = last.data_interval.end, now
    else:
        start, end = start_date, max(start_date, now)
    if restriction.latest is not None and end > restriction.latest:
        return None
    return DagRunInfo.interval(start, end)


def runs_between(
    spec: TimetableSpec,
    *,
    start: datetime,
    end: datetime,
    restriction: TimeRestriction,
) -> list[DagRunInfo]:
    """Every run whose logical date lies in ``[start, end]``, in order (a backfill;
    Airflow's ``iter_dagrun_infos_between``). The DAG's ``end_date`` still bounds it;
    catchup does not apply. Empty for asset-only and continuous schedules."""
    start, end = _utc(start), _utc(end)
    latest = end if restriction.latest is None else min(end, _utc(restriction.latest))
    bounded = TimeRestriction(earliest=start, latest=latest, catchup=True)
    part = time_part(spec)
    if part is None or part.kind == "continuous":
        return []
    out: list[DagRunInfo] = []
    info = next_dagrun_info(part, last=None, restriction=bounded, now=start)
    while info is not None and len(out) < _MAX_RUNS_BETWEEN:
        if start <= info.logical_date <= latest:
            out.append(info)
        elif info.logical_date > latest:
            break
        following = next_dagrun_info(part, last=info, restriction=bounded, now=start)
        if following is not None and following.logical_date <= info.logical_date:
            break  # a timetable that does not advance (defensive)
        info = following
    return out


def manual_data_interval(spec: TimetableSpec | None, run_after: datetime) -> DataInterval:
    """The data interval of a manually triggered run (Airflow's
    ``infer_manual_data_interval``)."""
    run_after = _utc(run_after)
    part = time_part(spec) if spec is not None else None
    if part is None:
        return DataInterval.exact(run_after)
    if part.kind in ("cron_trigger", "delta_trigger", "multiple_cron_trigger"):
        return DataInterval(run_after - timedelta(seconds=part.interval_seconds), run_after)
    if part.kind == "cron_data_interval":
        cron = _cron(part)
        end = cron.align_to_prev(run_after)
        return DataInterval(cron.prev(end), end)
    if part.kind == "delta_data_interval":
        return DataInterval(_delta(part).prev(run_after), run_after)
    if part.kind == "events" and part.restrict_to_events and part.events:
        events = sorted(_utc(e) for e in part.events)
        past = [e for e in events if e <= run_after]
        return DataInterval.exact(past[-1] if past else events[0])
    return DataInterval.exact(run_after)


def run_id_for(run_type: str, logical_date: datetime) -> str:
    """Airflow's run id: ``scheduled__2024-01-01T00:00:00+00:00`` (logical date in UTC,
    so the same interval always gets the same id)."""
    run_type = str(getattr(run_type, "value", run_type))
    if run_type not in RUN_TYPES:
        raise ValueError(f"unknown run type {run_type!r} (one of {', '.join(RUN_TYPES)})")
    return f"{run_type}__{_utc(logical_date).isoformat()}"


# --------------------------------------------------------------------------- words


def summary(spec: TimetableSpec | None) -> str:
    """Airflow's ``timetable.summary``: the expression, ``@once``, ``1 day, 0:00:00``..."""
    if spec is None:
        return "None"
    if spec.kind == "asset":
        return "Asset"
    if spec.kind == "asset_or_time":
        part = time_part(spec)
        return f"Asset or {summary(part)}" if part is not None else "Asset"
    if spec.kind in ("cron_trigger", "cron_data_interval"):
        return expand_preset(spec.expression or "")
    if spec.kind == "multiple_cron_trigger":
        return ", ".join(expand_preset(e) for e in spec.expressions)
    if spec.kind in ("delta_trigger", "delta_data_interval"):
        return str(timedelta(seconds=spec.delta_seconds or 0))
    if spec.kind == "events":
        return spec.description or f"{len(spec.events)} events"
    return f"@{spec.kind}"


def describe(spec: TimetableSpec | None) -> str:
    """The schedule in words for the UI (Airflow's ``timetable.description``)."""
    if spec is None:
        return "Never, external triggers only"
    if spec.kind == "asset":
        return "Triggered by assets"
    if spec.kind == "asset_or_time":
        part = time_part(spec)
        return f"Triggered by assets or {describe(part)}" if part else "Triggered by assets"
    if spec.description:
        return spec.description
    kind = spec.kind
    tz = "" if spec.timezone == "UTC" else f" ({spec.timezone})"
    if kind in ("cron_trigger", "cron_data_interval"):
        return describe_cron(expand_preset(spec.expression or "")) + tz
    if kind == "multiple_cron_trigger":
        return ", ".join(describe_cron(expand_preset(e)) for e in spec.expressions) + tz
    if kind in ("delta_trigger", "delta_data_interval"):
        return f"Every {words_for_delta(timedelta(seconds=spec.delta_seconds or 0))}"
    if kind == "events":
        if not spec.events:
            return "No events"
        events = sorted(_utc(e) for e in spec.events)
        return f"{len(events)} events between {events[0].isoformat()} and {events[-1].isoformat()}"
    if kind == "once":
        return "Once, as soon as possible"
    return "As frequently as possible, but only one run at a time."


def restriction_for(
    *, start_date: datetime | None, end_date: datetime | None, catchup: bool
) -> TimeRestriction:
    """The time restriction of a DAG from its ``start_date``/``end_date``/``catchup``."""
    return TimeRestriction(
        earliest=_utc(start_date) if start_date is not None else None,
        latest=_utc(end_date) if end_date is not None else None,
        catchup=catchup,
    )
