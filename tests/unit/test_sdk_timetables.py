"""``schedule=`` in DAG files (issue 6): cron strings, presets, deltas and timetable
objects become the DAG's ``TimetableSpec``; bad ones are DAG file errors with a line."""

from __future__ import annotations

import textwrap
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pendulum
import pytest
from ledgerflow.sdk import DAG, compat
from ledgerflow.sdk.loader import DagFileError, load_dags
from ledgerflow.sdk.operators import EmptyOperator
from ledgerflow.sdk.timetables import (
    CronDataIntervalTimetable,
    CronTriggerTimetable,
    DeltaDataIntervalTimetable,
    DeltaTriggerTimetable,
    EventsTimetable,
    InvalidTimetable,
    MultipleCronTriggerTimetable,
    resolve_time_schedule,
)


@pytest.fixture
def airflow_names():
    compat.install()
    try:
        yield
    finally:
        compat.uninstall()


def serialized(schedule, **kw):
    kw.setdefault("start_date", datetime(2024, 1, 1))
    with DAG("d", schedule=schedule, **kw) as d:
        EmptyOperator(task_id="t")
    d.validate()
    return d.serialize()


@pytest.mark.parametrize(
    ("preset", "expression"),
    [
        ("@hourly", "0 * * * *"),
        ("@daily", "0 0 * * *"),
        ("@weekly", "0 0 * * 0"),
        ("@monthly", "0 0 1 * *"),
        ("@quarterly", "0 0 1 */3 *"),
        ("@yearly", "0 0 1 1 *"),
    ],
)
def test_presets_are_cron_trigger_timetables(preset, expression):
    s = serialized(preset)
    assert s.schedule == preset
    assert s.timetable.kind == "cron_trigger"
    assert s.timetable.expression == preset
    from ledgerflow.common.core.timetables import summary

    assert summary(s.timetable) == expression


def test_cron_string_none_once_continuous_and_timedelta():
    cron = serialized("*/5 9-17 * * 1-5").timetable
    assert (cron.kind, cron.expression, cron.timezone) == (
        "cron_trigger",
        "*/5 9-17 * * 1-5",
        "UTC",
    )
    assert serialized(None).timetable is None
    assert serialized("@once").timetable.kind == "once"
    assert serialized("@continuous", max_active_runs=1).timetable.kind == "continuous"
    delta = serialized(timedelta(hours=1))
    assert (delta.timetable.kind, delta.timetable.delta_seconds) == ("delta_trigger", 3600)
    assert delta.schedule == "PT3600S"


def test_the_dag_time_zone_is_the_start_dates():
    ams = serialized("@daily", start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"))
    assert ams.timetable.timezone == "Europe/Amsterdam"
    ny = serialized("@daily", start_date=datetime(2024, 1, 1, tzinfo=ZoneInfo("America/New_York")))
    assert ny.timetable.timezone == "America/New_York"
    fixed = serialized(
        "@daily", start_date=datetime(2024, 1, 1, tzinfo=timezone(timedelta(hours=2)))
    )
    assert fixed.timetable.timezone == "+02:00"
    assert (
        serialized("@daily", start_date=datetime(2024, 1, 1, tzinfo=UTC)).timetable.timezone
        == "UTC"
    )


def test_timetable_objects_serialize_with_their_arguments():
    trig = serialized(
        CronTriggerTimetable(
            "0 6 * * *",
            timezone="Europe/Amsterdam",
            interval=timedelta(hours=6),
            run_immediately=True,
        )
    )
    assert trig.timetable.model_dump(
        include={"kind", "timezone", "interval_seconds", "run_immediately"}
    ) == {
        "kind": "cron_trigger",
        "timezone": "Europe/Amsterdam",
        "interval_seconds": 21600,
        "run_immediately": True,
    }
    assert trig.schedule == "0 6 * * *"
    assert trig.timetable.description == "At 06:00 (Europe/Amsterdam)"
    window = CronTriggerTimetable("@daily", timezone="UTC", run_immediately=timedelta(minutes=10))
    assert window.serialize().run_immediately_seconds == 600
    data = CronDataIntervalTimetable(
        "@daily", timezone=pendulum.timezone("America/New_York")
    ).serialize()
    assert (data.kind, data.timezone) == ("cron_data_interval", "America/New_York")
    multi = MultipleCronTriggerTimetable("0 6 * * *", "0 18 * * *", timezone="UTC").serialize()
    assert multi.expressions == ("0 6 * * *", "0 18 * * *")
    assert (
        DeltaTriggerTimetable(timedelta(days=1), interval=timedelta(hours=1))
        .serialize()
        .interval_seconds
        == 3600
    )
    assert DeltaDataIntervalTimetable(timedelta(minutes=30)).serialize().delta_seconds == 1800
    events = EventsTimetable(
        [datetime(2024, 3, 1), datetime(2024, 1, 1, tzinfo=UTC)], restrict_to_events=True
    )
    spec = events.serialize()
    assert spec.events == (datetime(2024, 1, 1, tzinfo=UTC), datetime(2024, 3, 1, tzinfo=UTC))
    assert spec.restrict_to_events and spec.description.startswith("2 events between")


@pytest.mark.parametrize(
    "bad",
    [
        lambda: CronTriggerTimetable("61 * * * *", timezone="UTC"),
        lambda: CronTriggerTimetable("@daily", timezone="Mars/Olympus"),
        lambda: MultipleCronTriggerTimetable(timezone="UTC"),
        lambda: DeltaDataIntervalTimetable(timedelta(0)),
        lambda: resolve_time_schedule("@fortnightly"),
    ],
)
def test_invalid_timetables_raise(bad):
    with pytest.raises(InvalidTimetable):
        bad()


def test_asset_schedules_are_not_time_schedules():
    from ledgerflow.sdk.assets import Asset

    assert resolve_time_schedule([Asset("s3://bucket/x")]) is None
    assert resolve_time_schedule(None) is None


def test_max_consecutive_failed_dag_runs_is_serialized():
    assert (
        serialized("@daily", max_consecutive_failed_dag_runs=3).max_consecutive_failed_dag_runs == 3
    )


BAD_FILES = [
    ('schedule="61 * * * *"', "invalid cron expression"),
    ('schedule="@fortnightly"', "unknown schedule preset"),
    ('schedule="@continuous"', "max_active_runs=1"),
    ('schedule=CronTriggerTimetable("0 0 * *", timezone="UTC")', "invalid cron expression"),
]


@pytest.mark.parametrize(("argument", "message"), BAD_FILES)
def test_bad_schedules_are_dag_file_errors_with_the_line(argument, message, airflow_names):
    source = textwrap.dedent(
        f"""\
        from datetime import datetime
        from airflow.sdk import DAG
        from airflow.timetables.trigger import CronTriggerTimetable
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG(
            "bad",
            {argument},
            start_date=datetime(2024, 1, 1),
        ):
            EmptyOperator(task_id="t")
        """
    )
    with pytest.raises(DagFileError) as info:
        load_dags(source, "/dags/bad.py")
    assert message in info.value.message
    assert info.value.filename == "/dags/bad.py"
    assert info.value.lineno in (6, 8)  # the DAG(...) call (or its schedule= line)


def test_airflow_timetable_modules_resolve_to_ledgerflow_classes(airflow_names):
    from airflow.sdk import CronDataIntervalTimetable as SdkCron
    from airflow.timetables.events import EventsTimetable as AfEvents
    from airflow.timetables.interval import CronDataIntervalTimetable as AfCron
    from airflow.timetables.interval import DeltaDataIntervalTimetable as AfDelta
    from airflow.timetables.simple import ContinuousTimetable, NullTimetable, OnceTimetable
    from airflow.timetables.trigger import CronTriggerTimetable as AfTrigger
    from airflow.timetables.trigger import DeltaTriggerTimetable as AfDeltaTrigger
    from airflow.timetables.trigger import MultipleCronTriggerTimetable as AfMulti

    assert AfCron is SdkCron is CronDataIntervalTimetable
    assert (AfTrigger, AfDeltaTrigger, AfMulti) == (
        CronTriggerTimetable,
        DeltaTriggerTimetable,
        MultipleCronTriggerTimetable,
    )
    assert AfDelta is DeltaDataIntervalTimetable and AfEvents is EventsTimetable
    assert serialized(OnceTimetable()).timetable.kind == "once"
    assert serialized(ContinuousTimetable(), max_active_runs=1).timetable.kind == "continuous"
    assert serialized(NullTimetable()).timetable is None


def test_a_dag_file_with_a_timetable_in_a_time_zone(airflow_names):
    source = textwrap.dedent(
        """\
        import pendulum
        from airflow.sdk import DAG
        from airflow.timetables.interval import CronDataIntervalTimetable
        from airflow.providers.standard.operators.empty import EmptyOperator

        with DAG(
            "tz",
            schedule=CronDataIntervalTimetable("30 2 * * *", timezone="Europe/Amsterdam"),
            start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"),
            catchup=True,
        ):
            EmptyOperator(task_id="t")
        """
    )
    [d] = load_dags(source, "/dags/tz.py")
    s = d.serialize()
    assert s.timetable.kind == "cron_data_interval"
    assert s.timetable.timezone == "Europe/Amsterdam"
    assert s.schedule == "30 2 * * *"
    assert s.catchup is True


def test_dag_timetable_is_airflows_timetable_object():
    from ledgerflow.sdk.timetables import NullTimetable, OnceTimetable

    amsterdam = pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam")
    daily = DAG("a", schedule="@daily", start_date=amsterdam).timetable
    assert isinstance(daily, CronTriggerTimetable)
    assert (daily.summary, daily.description) == ("0 0 * * *", "At 00:00")
    assert daily.serialize().timezone == "Europe/Amsterdam"
    assert isinstance(DAG("b", schedule=None).timetable, NullTimetable)
    assert DAG("b", schedule=None).timetable.summary == "None"
    assert isinstance(DAG("c", schedule="@once").timetable, OnceTimetable)
    assert isinstance(DAG("d", schedule=timedelta(hours=2)).timetable, DeltaTriggerTimetable)
    table = CronDataIntervalTimetable("30 2 * * *", timezone="UTC")
    assert DAG("e", schedule=table).timetable is table
    assert DAG("e", schedule=table).timetable_summary == "30 2 * * *"
