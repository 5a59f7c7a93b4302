# ruff: noqa: F811  (pytest fixtures imported from live_api are parameters here)
"""Run history: the events list, and ``as_of`` answering what the live projection said
at that point (real Kafka and Postgres; the scheduler's part is played by events).

The story is published a few events at a time; after each step the live answers are
recorded, and at the end ``as_of`` for each recorded point must give the same answers.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from ledgerflow.api.projector import Projector
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.kafka_io import EventProducer
from ledgerflow.common.settings import Settings

from tests.integration.live_api import client, migrated, settings  # noqa: F401

pytestmark = pytest.mark.integration

DAG_ID = "hist"
RUN_ID = "manual__2026-11-24T01:00:00+00:00"
T0 = datetime(2026, 11, 24, 1, 0, tzinfo=UTC)
RUN_FIELDS = ("state", "start_date", "end_date", "queued_at", "conf", "run_type", "note")
TI_FIELDS = (
    "task_id",
    "map_index",
    "state",
    "try_number",
    "start_date",
    "end_date",
    "duration",
    "queued_when",
    "hostname",
    "pid",
    "operator",
    "queue",
    "pool",
    "priority_weight",
    "max_tries",
    "rendered_fields",
    "dag_version_id",
)


def t(s: float) -> datetime:
    return T0 + timedelta(seconds=s)


def the_dag() -> SerializedDag:
    return SerializedDag(
        dag_id=DAG_ID,
        fileloc="/dags/hist.py",
        tasks=(
            SerializedTask(task_id="a", operator="PythonOperator", retries=2),
            SerializedTask(task_id="m", operator="BashOperator", upstream_task_ids=("a",)),
            SerializedTask(task_id="z", operator="EmptyOperator", upstream_task_ids=("m",)),
        ),
    )


def story() -> list[list[tuple[str, Any]]]:
    """Steps of (topic kind, payload): a retried task, a mapped task, a skip."""
    run = {"dag_id": DAG_ID, "run_id": RUN_ID}
    a, m, z = ({**run, "task_id": x} for x in "amz")
    return [
        [("commands", ev.TriggerDagRun(**run, triggered_by="alice", note="by hand"))],
        [
            ("runs", ev.DagRunQueued(**run, version_id="v1", queued_at=t(1), note="by hand")),
            ("runs", ev.DagRunStarted(**run, start_date=t(2))),
        ],
        [
            ("runs", ev.TaskInstanceQueued(**a, try_number=1, queue="q1", queued_when=t(3))),
            (
                "runs",
                ev.TaskAttemptStarted(
                    **a, try_number=1, start_date=t(4), hostname="h1", executor_id="e", pid=11
                ),
            ),
        ],
        [
            (
                "runs",
                ev.TaskAttemptFailed(**a, try_number=1, end_date=t(5), error="x", executor_id="e"),
            )
        ],
        [("runs", ev.TaskInstanceUpForRetry(**a, try_number=1, retry_at=t(6)))],
        [
            ("runs", ev.TaskInstanceQueued(**a, try_number=2, queue="q2", queued_when=t(6.5))),
            (
                "runs",
                ev.TaskAttemptStarted(
                    **a, try_number=2, start_date=t(7), hostname="h2", executor_id="e", pid=12
                ),
            ),
            (
                "runs",
                ev.TaskAttemptSucceeded(
                    **a,
                    try_number=2,
                    end_date=t(8),
                    executor_id="e",
                    return_value=[1, 2],
                    rendered_fields={"cmd": "echo 2"},
                ),
            ),
        ],
        [("runs", ev.TaskInstanceMapExpanded(**m, length=2, at=t(9)))],
        [
            (
                "runs",
                ev.TaskInstanceQueued(
                    **m, map_index=0, try_number=1, queue="default", queued_when=t(10)
                ),
            ),
            (
                "runs",
                ev.TaskInstanceQueued(
                    **m, map_index=1, try_number=1, queue="default", queued_when=t(10)
                ),
            ),
            (
                "runs",
                ev.TaskAttemptStarted(
                    **m, map_index=0, try_number=1, start_date=t(11), hostname="h", executor_id="e"
                ),
            ),
            (
                "runs",
                ev.TaskAttemptSkipped(
                    **m, map_index=1, try_number=1, end_date=t(11.5), executor_id="e", reason="n"
                ),
            ),
        ],
        [
            (
                "runs",
                ev.TaskAttemptSucceeded(
                    **m, map_index=0, try_number=1, end_date=t(12), executor_id="e"
                ),
            ),
            ("runs", ev.TaskInstanceSkipped(**z, at=t(13))),
            ("runs", ev.DagRunSucceeded(**run, end_date=t(14))),
        ],
    ]


def pick(doc: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    return {f: doc[f] for f in fields}


async def test_as_of_gives_what_the_live_projection_said(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await migrated(settings)
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}"
    seen: list[tuple[int, dict[str, Any], list[dict[str, Any]]]] = []
    published = 0
    async with (
        EventProducer(settings, source="tests/history") as producer,
        Projector(settings) as projector,
    ):
        await producer.send(
            settings.topics.dags,
            ev.make_envelope(
                ev.DagVersionPublished(
                    dag_id=DAG_ID, version_id="v1", dag=the_dag(), source_code="#", filename="h.py"
                ),
                id="v1",
                source="tests/history",
                time=t(0),
                aggregate_key=DAG_ID,
            ),
        )
        clock = 0.0
        for step in story():
            for kind, payload in step:
                clock += 0.01  # event times increase in publication order
                envelope = ev.make_envelope(
                    payload,
                    id=ev.deterministic_id("hist", published),
                    source="ledgerflow/scheduler" if kind == "runs" else "ledgerflow/api",
                    time=t(clock),
                    aggregate_key=DAG_ID,
                    correlation_id=RUN_ID,
                    causation_id="cmd-1" if kind == "runs" else None,
                )
                await producer.send(getattr(settings.topics, kind), envelope)
                published += 1
            await projector.catch_up(within_s=30)
            run = await client.get(base)
            tis = await client.get(f"{base}/taskInstances")
            if run.status_code == 200:
                seen.append((published, run.json(), tis.json()["task_instances"]))
            else:
                assert run.status_code == 404

    # The list: every event, in order, numbered, with who asked and what caused it.
    r = await client.get(f"{base}/events", params={"limit": 1000})
    assert r.status_code == 200, r.text
    events = r.json()["events"]
    assert r.json()["total_entries"] == published == len(events)
    assert [e["sequence"] for e in events] == list(range(1, published + 1))
    assert events[0]["type"] == "TriggerDagRun" and events[0]["user"] == "alice"
    assert events[1]["type"] == "DagRunQueued" and events[1]["caused_by"] == "cmd-1"
    assert events[-1]["type"] == "DagRunSucceeded"
    assert all(e["position"].startswith(settings.topics.runs) for e in events[1:])
    page = (await client.get(f"{base}/events", params={"limit": 2, "offset": 3})).json()
    assert [e["sequence"] for e in page["events"]] == [4, 5]

    # as_of at each point: the same run and task instances as the live answers then.
    assert len(seen) >= 7
    for upto, live_run, live_tis in seen:
        r = await client.get(base, params={"as_of": upto})
        assert r.status_code == 200, r.text
        assert pick(r.json(), RUN_FIELDS) == pick(live_run, RUN_FIELDS), upto
        r = await client.get(f"{base}/taskInstances", params={"as_of": upto})
        assert r.status_code == 200, r.text
        got = [pick(ti, TI_FIELDS) for ti in r.json()["task_instances"]]
        assert got == [pick(ti, TI_FIELDS) for ti in live_tis], upto

    # By time too; before the run existed it is not found; filters work.
    at = events[4]["time"]
    by_time = (await client.get(f"{base}/taskInstances", params={"as_of": at})).json()
    by_number = (await client.get(f"{base}/taskInstances", params={"as_of": 5})).json()
    assert by_time == by_number
    assert (await client.get(base, params={"as_of": 1})).status_code == 404
    assert (await client.get(base, params={"as_of": "yesterday"})).status_code == 400
    only = await client.get(
        f"{base}/taskInstances", params={"as_of": published, "state": "skipped"}
    )
    assert [(ti["task_id"], ti["map_index"]) for ti in only.json()["task_instances"]] == [
        ("m", 1),
        ("z", -1),
    ]
    assert (await client.get(f"/api/v2/dags/{DAG_ID}/dagRuns/nope/events")).status_code == 404
