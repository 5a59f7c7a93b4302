"""The pure timetable core (issue 6): Airflow 3's timetables with the clock passed in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ledgerflow.common.core import timetables as tt
from ledgerflow.common.core.timetables import DagRunInfo, DataInterval, TimeRestriction
from ledgerflow.common.dagmodel import TimetableSpec


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


JAN1 = utc(2024, 1, 1)
NOW = utc(2024, 1, 3, 10)
DAILY = TimetableSpec(kind="cron_trigger", expression="@daily")
DAILY_INTERVAL = TimetableSpec(kind="cron_data_interval", expression="@daily")


def nxt(spec, *, last=None, earliest=JAN1, latest=None, catchup=True, now=NOW):
    return tt.next_dagrun_info(
        spec, last=last, restriction=TimeRestriction(earliest, latest, catchup), now=now
    )


def chain(spec, n, **kw):
    """The first ``n`` runs, each asked for after the previous one."""
    out, last = [], None
    for _ in range(n):
        last = nxt(spec, last=last, **kw)
        if last is None:
            break
        out.append(last)
    return out


# --------------------------------------------------------------------------- cron trigger


def test_cron_trigger_catchup_runs_every_tick_from_start_date():
    runs = chain(DAILY, 3)
    assert [r.logical_date for r in runs] == [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]
    first = runs[0]
    assert first.run_after == first.logical_date == JAN1
    assert first.data_interval == DataInterval(JAN1, JAN1)


def test_cron_trigger_without_catchup_starts_at_the_latest_due_tick():
    first = nxt(DAILY, catchup=False)
    assert first.logical_date == utc(2024, 1, 3)
    # an old last run does not make it catch up either
    old = DagRunInfo.trigger(JAN1, timedelta())
    assert nxt(DAILY, last=old, catchup=False).logical_date == utc(2024, 1, 3)
    # after the latest due tick, the next one is in the future
    assert nxt(DAILY, last=first, catchup=False).logical_date == utc(2024, 1, 4)


def test_cron_trigger_interval_gives_the_data_interval_before_the_tick():
    spec = TimetableSpec(kind="cron_trigger", expression="0 6 * * *", interval_seconds=3600)
    run = nxt(spec)
    assert run.logical_date == run.run_after == utc(2024, 1, 1, 6)
    assert run.data_interval == DataInterval(utc(2024, 1, 1, 5), utc(2024, 1, 1, 6))
    assert tt.manual_data_interval(spec, utc(2024, 2, 1, 12)) == DataInterval(
        utc(2024, 2, 1, 11), utc(2024, 2, 1, 12)
    )


def test_cron_trigger_unaligned_start_date_waits_for_the_next_tick():
    assert nxt(DAILY, earliest=utc(2024, 1, 1, 12)).logical_date == utc(2024, 1, 2)


def test_end_date_stops_the_schedule_inclusive():
    assert nxt(DAILY, latest=JAN1).logical_date == JAN1
    assert nxt(DAILY, last=nxt(DAILY), latest=utc(2024, 1, 1, 23)) is None
    assert nxt(DAILY, latest=utc(2023, 12, 31)) is None


@pytest.mark.parametrize(
    ("now", "run_immediately", "seconds", "expected"),
    [
        (utc(2024, 1, 3, 0, 3), False, None, utc(2024, 1, 3)),  # within 10% of a day
        (utc(2024, 1, 3, 10), False, None, utc(2024, 1, 4)),  # too late: wait
        (utc(2024, 1, 3, 10), True, None, utc(2024, 1, 3)),  # always the past tick
        (utc(2024, 1, 3, 0, 3), False, 60.0, utc(2024, 1, 4)),  # timedelta(minutes=1)
        (utc(2024, 1, 3, 0, 3), False, 600.0, utc(2024, 1, 3)),
    ],
)
def test_run_immediately_without_start_date(now, run_immediately, seconds, expected):
    spec = TimetableSpec(
        kind="cron_trigger",
        expression="@daily",
        run_immediately=run_immediately,
        run_immediately_seconds=seconds,
    )
    assert nxt(spec, earliest=None, now=now).logical_date == expected
    assert nxt(spec, earliest=None, now=now, catchup=False).logical_date == expected


# --------------------------------------------------------------------------- data interval


def test_cron_data_interval_catchup_covers_each_interval_and_runs_at_its_end():
    runs = chain(DAILY_INTERVAL, 2)
    assert runs[0].logical_date == JAN1
    assert runs[0].data_interval == DataInterval(JAN1, utc(2024, 1, 2))
    assert runs[0].run_after == utc(2024, 1, 2)
    assert runs[1].data_interval == DataInterval(utc(2024, 1, 2), utc(2024, 1, 3))


def test_cron_data_interval_without_catchup_takes_the_latest_complete_interval():
    run = nxt(DAILY_INTERVAL, catchup=False)
    assert run.data_interval == DataInterval(utc(2024, 1, 2), utc(2024, 1, 3))
    # exactly on the boundary: the interval that ends now
    on_boundary = nxt(DAILY_INTERVAL, catchup=False, now=utc(2024, 1, 3))
    assert on_boundary.data_interval == DataInterval(utc(2024, 1, 2), utc(2024, 1, 3))
    # no start date: catchup=True has no first run, catchup=False still does
    assert nxt(DAILY_INTERVAL, earliest=None) is None
    assert nxt(DAILY_INTERVAL, earliest=None, catchup=False).logical_date == utc(2024, 1, 2)


def test_cron_data_interval_manual_run_covers_the_last_complete_period():
    assert tt.manual_data_interval(DAILY_INTERVAL, utc(2024, 1, 25, 1)) == DataInterval(
        utc(2024, 1, 24), utc(2024, 1, 25)
    )


def test_delta_trigger_every_hour():
    spec = TimetableSpec(kind="delta_trigger", delta_seconds=3600)
    runs = chain(spec, 2)
    assert [r.logical_date for r in runs] == [JAN1, utc(2024, 1, 1, 1)]
    assert runs[0].data_interval == DataInterval(JAN1, JAN1)
    # catchup=False: a delta is not aligned, so the first run is now (Airflow)
    assert nxt(spec, catchup=False, now=utc(2024, 1, 1, 10, 30)).logical_date == utc(
        2024, 1, 1, 10, 30
    )


def test_delta_data_interval():
    spec = TimetableSpec(kind="delta_data_interval", delta_seconds=3600)
    run = nxt(spec)
    assert run.data_interval == DataInterval(JAN1, utc(2024, 1, 1, 1))
    assert run.run_after == utc(2024, 1, 1, 1)
    late = nxt(spec, catchup=False, now=utc(2024, 1, 1, 10, 30))
    assert late.data_interval == DataInterval(utc(2024, 1, 1, 9), utc(2024, 1, 1, 10))
    assert tt.manual_data_interval(spec, utc(2024, 1, 2)) == DataInterval(
        utc(2024, 1, 1, 23), utc(2024, 1, 2)
    )


# --------------------------------------------------------------------------- multiple, events


def test_multiple_cron_trigger_fires_at_each_expression_once():
    spec = TimetableSpec(
        kind="multiple_cron_trigger", expressions=("0 6 * * *", "0 18 * * *", "0 6 * * 1")
    )
    runs = chain(spec, 4)
    assert [r.logical_date for r in runs] == [
        utc(2024, 1, 1, 6),  # a Monday: both 06:00 crons fire, one run
        utc(2024, 1, 1, 18),
        utc(2024, 1, 2, 6),
        utc(2024, 1, 2, 18),
    ]
    assert nxt(spec, catchup=False).logical_date == utc(2024, 1, 3, 6)


def test_events_timetable():
    events = (utc(2024, 1, 5), utc(2024, 1, 1), utc(2024, 1, 10))
    spec = TimetableSpec(kind="events", events=events, restrict_to_events=True)
    runs = chain(spec, 5, earliest=None)
    assert [r.logical_date for r in runs] == [utc(2024, 1, 1), utc(2024, 1, 5), utc(2024, 1, 10)]
    assert runs[0].data_interval == DataInterval.exact(utc(2024, 1, 1))
    assert nxt(spec, catchup=False, now=utc(2024, 1, 6)).logical_date == utc(2024, 1, 10)
    assert nxt(spec, catchup=False, now=utc(2024, 1, 6), latest=utc(2024, 1, 7)) is None
    # manual runs use the most recent event (or the first, if all are to come)
    assert tt.manual_data_interval(spec, utc(2024, 1, 6)) == DataInterval.exact(utc(2024, 1, 5))
    assert tt.manual_data_interval(spec, utc(2023, 1, 1)) == DataInterval.exact(utc(2024, 1, 1))
    free = spec.model_copy(update={"restrict_to_events": False})
    assert tt.manual_data_interval(free, utc(2024, 1, 6)) == DataInterval.exact(utc(2024, 1, 6))


# --------------------------------------------------------------------------- once, continuous, assets


def test_once_runs_at_start_date_once():
    once = TimetableSpec(kind="once")
    first = nxt(once, catchup=False)
    assert first == DagRunInfo.exact(JAN1)
    assert nxt(once, last=first) is None
    assert nxt(once, earliest=None).logical_date == NOW
    assert nxt(once, latest=utc(2023, 1, 1)) is None


def test_continuous_is_left_to_continuous_dagrun_info():
    spec = TimetableSpec(kind="continuous")
    assert nxt(spec) is None
    restriction = TimeRestriction(JAN1, None, False)
    first = tt.continuous_dagrun_info(last=None, restriction=restriction, now=NOW)
    assert first.data_interval == DataInterval(JAN1, NOW)
    later = utc(2024, 1, 3, 11)
    second = tt.continuous_dagrun_info(last=first, restriction=restriction, now=later)
    assert second.data_interval == DataInterval(NOW, later)
    ended = TimeRestriction(JAN1, utc(2024, 1, 2), False)
    assert tt.continuous_dagrun_info(last=None, restriction=ended, now=NOW) is None


def test_asset_schedules_have_no_time_runs_but_asset_or_time_has():
    assert nxt(TimetableSpec(kind="asset")) is None
    mixed = TimetableSpec(kind="asset_or_time", time_kind="cron_trigger", expression="@daily")
    assert nxt(mixed).logical_date == JAN1
    assert tt.runs_between(TimetableSpec(kind="asset"), start=JAN1, end=NOW, restriction=R0) == []


# --------------------------------------------------------------------------- time zones, DST

AMS = "Europe/Amsterdam"


def test_daily_cron_across_spring_forward_in_amsterdam():
    spec = TimetableSpec(kind="cron_trigger", expression="0 2 * * *", timezone=AMS)
    runs = tt.runs_between(spec, start=utc(2024, 3, 29), end=utc(2024, 4, 2), restriction=R0)
    assert [r.logical_date for r in runs] == [
        utc(2024, 3, 29, 1),  # 02:00 CET
        utc(2024, 3, 30, 1),
        utc(2024, 3, 31, 1),  # 02:00 does not exist: 03:00 CEST
        utc(2024, 4, 1, 0),  # 02:00 CEST
        utc(2024, 4, 2, 0),  # the end is inclusive
    ]


def test_daily_cron_across_fall_back_in_amsterdam_runs_once_in_the_second_hour():
    spec = TimetableSpec(kind="cron_data_interval", expression="0 2 * * *", timezone=AMS)
    runs = tt.runs_between(spec, start=utc(2024, 10, 26), end=utc(2024, 10, 28, 2), restriction=R0)
    assert [r.logical_date for r in runs] == [
        utc(2024, 10, 26, 0),  # 02:00 CEST
        utc(2024, 10, 27, 1),  # 02:00 happens twice: the second, CET
        utc(2024, 10, 28, 1),
    ]
    assert runs[0].data_interval.end == runs[1].logical_date  # 25 hours long
    assert runs[0].data_interval.end - runs[0].data_interval.start == timedelta(hours=25)


def test_hourly_cron_keeps_every_absolute_hour_across_both_transitions():
    spec = TimetableSpec(kind="cron_trigger", expression="30 * * * *", timezone=AMS)
    fall = tt.runs_between(
        spec, start=utc(2024, 10, 26, 23), end=utc(2024, 10, 27, 3), restriction=R0
    )
    assert [r.logical_date.hour for r in fall] == [23, 0, 1, 2]  # 02:30 CEST and 02:30 CET
    spring = tt.runs_between(
        spec, start=utc(2024, 3, 30, 23), end=utc(2024, 3, 31, 3), restriction=R0
    )
    assert [r.logical_date.hour for r in spring] == [23, 0, 1, 2]


def test_midnight_in_new_york_moves_in_utc_with_dst():
    spec = TimetableSpec(kind="cron_trigger", expression="@daily", timezone="America/New_York")
    runs = tt.runs_between(spec, start=utc(2024, 3, 9), end=utc(2024, 3, 12), restriction=R0)
    assert [r.logical_date for r in runs] == [
        utc(2024, 3, 9, 5),
        utc(2024, 3, 10, 5),
        utc(2024, 3, 11, 4),
    ]
    assert all(r.logical_date.tzinfo is UTC for r in runs)


def test_non_utc_inputs_come_out_in_utc():
    ny = ZoneInfo("America/New_York")
    run = nxt(DAILY, earliest=datetime(2024, 1, 1, tzinfo=ny), now=datetime(2024, 1, 1, tzinfo=ny))
    assert run.logical_date == utc(2024, 1, 2) and run.logical_date.tzinfo is UTC
    fixed = TimetableSpec(kind="cron_trigger", expression="0 9 * * *", timezone="+05:30")
    assert nxt(fixed).logical_date == utc(2024, 1, 1, 3, 30)


# --------------------------------------------------------------------------- backfill ranges

R0 = TimeRestriction(None, None, False)


def test_runs_between_is_inclusive_and_honours_end_date():
    assert [
        r.logical_date
        for r in tt.runs_between(DAILY, start=JAN1, end=utc(2024, 1, 3), restriction=R0)
    ] == [
        utc(2024, 1, 1),
        utc(2024, 1, 2),
        utc(2024, 1, 3),
    ]
    ending = TimeRestriction(None, utc(2024, 1, 2), False)
    assert len(tt.runs_between(DAILY, start=JAN1, end=utc(2024, 1, 3), restriction=ending)) == 2
    unaligned = tt.runs_between(
        DAILY, start=utc(2024, 1, 1, 12), end=utc(2024, 1, 3), restriction=R0
    )
    assert [r.logical_date for r in unaligned] == [utc(2024, 1, 2), utc(2024, 1, 3)]


def test_runs_between_for_data_intervals_selects_by_logical_date():
    runs = tt.runs_between(DAILY_INTERVAL, start=JAN1, end=utc(2024, 1, 3), restriction=R0)
    assert [r.logical_date for r in runs] == [utc(2024, 1, 1), utc(2024, 1, 2), utc(2024, 1, 3)]
    assert runs[-1].run_after == utc(2024, 1, 4)
    hourly = TimetableSpec(kind="delta_trigger", delta_seconds=3600)
    assert len(tt.runs_between(hourly, start=JAN1, end=utc(2024, 1, 2), restriction=R0)) == 25
    assert (
        tt.runs_between(TimetableSpec(kind="continuous"), start=JAN1, end=NOW, restriction=R0) == []
    )


# --------------------------------------------------------------------------- ids, words, validity


def test_run_id_forms():
    assert tt.run_id_for("scheduled", JAN1) == "scheduled__2024-01-01T00:00:00+00:00"
    assert (
        tt.run_id_for("manual", utc(2024, 1, 1, 12, 30, 5)) == "manual__2024-01-01T12:30:05+00:00"
    )
    assert tt.run_id_for("backfill", JAN1).startswith("backfill__2024-01-01T00:00:00")
    assert tt.run_id_for("asset_triggered", JAN1).startswith("asset_triggered__")
    cet = timezone(timedelta(hours=1))
    assert tt.run_id_for("scheduled", datetime(2024, 1, 1, 1, tzinfo=cet)) == tt.run_id_for(
        "scheduled", JAN1
    )
    with pytest.raises(ValueError, match="run type"):
        tt.run_id_for("sometimes", JAN1)
    with pytest.raises(ValueError, match="naive"):
        tt.run_id_for("scheduled", datetime(2024, 1, 1))


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        (None, "Never, external triggers only"),
        (DAILY, "At 00:00"),
        (TimetableSpec(kind="cron_trigger", expression="@weekly"), "At 00:00, only on Sunday"),
        (
            TimetableSpec(kind="cron_data_interval", expression="30 21 * * 5", timezone=AMS),
            "At 21:30, only on Friday (Europe/Amsterdam)",
        ),
        (TimetableSpec(kind="cron_trigger", expression="@hourly"), "At 0 minutes past the hour"),
        (
            TimetableSpec(kind="cron_trigger", expression="@quarterly"),
            "At 00:00, on day 1 of the month, every 3 months",
        ),
        (
            TimetableSpec(kind="cron_trigger", expression="0 9 * * 1-5"),
            "At 09:00, only on Monday through Friday",
        ),
        (TimetableSpec(kind="delta_trigger", delta_seconds=3600), "Every 1 hour"),
        (TimetableSpec(kind="delta_data_interval", delta_seconds=2 * 86400), "Every 2 days"),
        (TimetableSpec(kind="once"), "Once, as soon as possible"),
        (
            TimetableSpec(kind="continuous"),
            "As frequently as possible, but only one run at a time.",
        ),
        (TimetableSpec(kind="asset"), "Triggered by assets"),
        (
            TimetableSpec(kind="events", events=(utc(2024, 1, 2), JAN1)),
            "2 events between 2024-01-01T00:00:00+00:00 and 2024-01-02T00:00:00+00:00",
        ),
        (TimetableSpec(kind="events", events=(JAN1,), description="Match days"), "Match days"),
    ],
)
def test_describe(spec, words):
    assert tt.describe(spec) == words


def test_summary_is_airflows_timetable_summary():
    assert tt.summary(None) == "None"
    assert tt.summary(DAILY) == "0 0 * * *"
    assert tt.summary(TimetableSpec(kind="delta_trigger", delta_seconds=86400)) == "1 day, 0:00:00"
    assert tt.summary(TimetableSpec(kind="once")) == "@once"
    assert tt.summary(TimetableSpec(kind="continuous")) == "@continuous"
    multi = TimetableSpec(kind="multiple_cron_trigger", expressions=("0 6 * * *", "@daily"))
    assert tt.summary(multi) == "0 6 * * *, 0 0 * * *"


def test_invalid_specs_are_rejected():
    with pytest.raises(tt.TimetableInvalid, match="invalid cron"):
        tt.validate(TimetableSpec(kind="cron_trigger", expression="61 * * * *"))
    with pytest.raises(tt.TimetableInvalid, match="time zone"):
        tt.validate(TimetableSpec(kind="cron_trigger", expression="@daily", timezone="Mars/Base"))
    with pytest.raises(tt.TimetableInvalid):
        tt.validate(TimetableSpec(kind="multiple_cron_trigger"))
    with pytest.raises(tt.TimetableInvalid):
        tt.validate(TimetableSpec(kind="delta_trigger"))
    tt.validate(TimetableSpec(kind="cron_trigger", expression="*/5 9-17 * * 1-5"))


# --------------------------------------------------------------------------- properties

CRONS = (
    "@daily",
    "@hourly",
    "30 * * * *",
    "0 2 * * *",
    "30 2 * * *",
    "*/20 * * * *",
    "0 9 * * 1-5",
)
ZONES = ("UTC", "Europe/Amsterdam", "America/New_York", "Australia/Lord_Howe", "Asia/Kolkata")
starts = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2025, 12, 31)).map(
    lambda d: d.replace(tzinfo=UTC)
)


@settings(max_examples=60, deadline=None)
@given(
    kind=st.sampled_from(("cron_trigger", "cron_data_interval")),
    expression=st.sampled_from(CRONS),
    tz=st.sampled_from(ZONES),
    start=starts,
)
def test_catchup_chain_is_increasing_and_equals_runs_between(kind, expression, tz, start):
    spec = TimetableSpec(kind=kind, expression=expression, timezone=tz)
    runs = chain(spec, 30, earliest=start, now=start)
    assert len(runs) == 30
    dates = [r.logical_date for r in runs]
    assert dates == sorted(set(dates)) and dates[0] >= start
    assert all(r.logical_date.tzinfo is UTC and r.run_after >= r.logical_date for r in runs)
    if kind == "cron_data_interval":  # intervals tile time: no gap, no overlap
        assert all(
            a.data_interval.end == b.data_interval.start
            for a, b in zip(runs, runs[1:], strict=False)
        )
    between = tt.runs_between(spec, start=start, end=dates[-1], restriction=R0)
    assert between == runs
