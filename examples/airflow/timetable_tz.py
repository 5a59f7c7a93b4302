"""A DAG on a timetable in a time zone, as Airflow 3 writes it: a
``CronDataIntervalTimetable`` (each run covers the day between two 02:30 wall-clock
times in Amsterdam, across daylight-saving changes, and starts when that day ends), a
``pendulum`` start date in the same zone, ``catchup`` and an ``end_date``. The task
reads the DAG's timetable from its context."""

import pendulum
from airflow.sdk import DAG, task
from airflow.timetables.interval import CronDataIntervalTimetable

with DAG(
    dag_id="timetable_tz",
    schedule=CronDataIntervalTimetable("30 2 * * *", timezone="Europe/Amsterdam"),
    start_date=pendulum.datetime(2024, 1, 1, tz="Europe/Amsterdam"),
    end_date=pendulum.datetime(2024, 12, 31, tz="Europe/Amsterdam"),
    catchup=True,
    max_active_runs=1,
    tags=["example", "timetable"],
):

    @task
    def describe_schedule(**context):
        timetable = context["dag"].timetable
        print(f"schedule {timetable.summary}: {timetable.description}")
        return {
            "summary": timetable.summary,
            "description": timetable.description,
            "ds": context["ds"],
        }

    describe_schedule()
