"""``/api/v2/assets`` against real Kafka and Postgres (ADR 0013): assets and their DAG
references from DAG files, external asset events, filters, materialize's 404/409, and
the scheduler creating an asset-triggered run from an event posted to the API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from ledgerflow.common.events import AssetEventEmitted, decode
from ledgerflow.scheduler import service as scheduler_service

from tests.integration.live_api import *  # noqa: F403
from tests.integration.live_api import background, eventually

pytestmark = pytest.mark.integration

PRODUCER = """\
from airflow.sdk import DAG, Asset, task

with DAG("asset_producer", schedule=None):
    @task(outlets=[Asset(name="x", uri="s3://bucket/x", extra={"team": "data"})])
    def make_x():
        return 1

    make_x()
"""

SECOND_PRODUCER = """\
from airflow.sdk import DAG, Asset, task

with DAG("asset_producer_2", schedule=None):
    @task(outlets=[Asset(name="x", uri="s3://bucket/x")])
    def also_x():
        return 2

    also_x()
"""

CONSUMER = """\
from airflow.sdk import DAG, Asset, AssetAlias, task

with DAG("asset_consumer", schedule=Asset(name="y", uri="s3://bucket/y") | AssetAlias("al")):
    @task(inlets=[Asset(name="x", uri="s3://bucket/x")])
    def read(*, triggering_asset_events):
        return sorted(a.name for a in triggering_asset_events)

    read()
"""


async def _submit(client: httpx.AsyncClient, name: str, content: str) -> None:
    r = await client.post("/api/v2/dagFiles", json={"filename": name, "content": content})
    assert r.status_code == 201, r.text


async def _asset_id(client: httpx.AsyncClient, name: str) -> int:
    async def found() -> Any:
        r = await client.get("/api/v2/assets", params={"name_pattern": name})
        assert r.status_code == 200, r.text
        hits = [a for a in r.json()["assets"] if a["name"] == name]
        return hits[0]["id"] if hits else None

    return int(await eventually(found))


async def test_assets_api(settings, projector_running, client: httpx.AsyncClient) -> None:
    await _submit(client, "producer.py", PRODUCER)
    await _submit(client, "consumer.py", CONSUMER)
    x = await _asset_id(client, "x")
    y = await _asset_id(client, "y")

    async def refs() -> Any:
        r = await client.get(f"/api/v2/assets/{x}")
        body = r.json()
        return body if body["consuming_tasks"] else None

    asset = await eventually(refs)
    assert asset["uri"] == "s3://bucket/x" and asset["extra"] == {"team": "data"}
    assert [(t["dag_id"], t["task_id"]) for t in asset["producing_tasks"]] == [
        ("asset_producer", "make_x")
    ]
    assert [(t["dag_id"], t["task_id"]) for t in asset["consuming_tasks"]] == [
        ("asset_consumer", "read")
    ]
    r = await client.get(f"/api/v2/assets/{y}")
    assert [d["dag_id"] for d in r.json()["scheduled_dags"]] == ["asset_consumer"]

    # Filters, paging, ordering, errors.
    r = await client.get("/api/v2/assets", params={"dag_ids": "asset_producer"})
    assert [a["name"] for a in r.json()["assets"]] == ["x"]
    r = await client.get("/api/v2/assets", params={"limit": 1, "offset": 1, "order_by": "-name"})
    body = r.json()
    assert body["total_entries"] == 2 and [a["name"] for a in body["assets"]] == ["x"]
    r = await client.get("/api/v2/assets", params={"order_by": "nope"})
    assert r.status_code == 400 and "order_by" in r.json()["detail"]
    assert (await client.get("/api/v2/assets/999999")).status_code == 404
    r = await client.post("/api/v2/assets/events", json={"asset_id": 999999})
    assert r.status_code == 404 and "999999" in r.json()["detail"]
    r = await client.post("/api/v2/assets/events", json={"asset_id": y, "bogus": 1})
    assert r.status_code == 422

    # An external event: on the assets topic, projected, listed with filters.
    r = await client.post("/api/v2/assets/events", json={"asset_id": y, "extra": {"from": "ci"}})
    assert r.status_code == 200, r.text
    event = r.json()
    assert (event["asset_id"], event["name"], event["extra"]) == (y, "y", {"from": "ci"})
    assert event["source_dag_id"] is None and event["source_map_index"] == -1
    r = await client.get("/api/v2/assets/events", params={"asset_id": y})
    assert [e["id"] for e in r.json()["asset_events"]] == [event["id"]]
    r = await client.get("/api/v2/assets/events", params={"source_dag_id": "asset_producer"})
    assert r.json() == {"asset_events": [], "total_entries": 0}
    r = await client.get(
        "/api/v2/assets/events", params={"timestamp_gte": event["timestamp"], "asset_id": x}
    )
    assert r.json()["total_entries"] == 0
    r = await client.get(f"/api/v2/assets/{y}")
    assert r.json()["last_asset_event"]["id"] == event["id"]

    # Materialize: y has no producer (404); x has one; a second producer makes it 409.
    r = await client.post(f"/api/v2/assets/{y}/materialize")
    assert r.status_code == 404 and "No DAG materializes" in r.json()["detail"]
    r = await client.post(f"/api/v2/assets/{x}/materialize")
    assert r.status_code == 200, r.text
    assert r.json()["dag_id"] == "asset_producer" and r.json()["state"] == "queued"
    await _submit(client, "producer2.py", SECOND_PRODUCER)

    async def two_producers() -> Any:
        r = await client.get(f"/api/v2/assets/{x}")
        return len(r.json()["producing_tasks"]) == 2

    await eventually(two_producers)
    r = await client.post(f"/api/v2/assets/{x}/materialize")
    assert r.status_code == 409 and "More than one DAG" in r.json()["detail"]


async def test_posted_event_triggers_the_consumer_through_the_scheduler(
    settings, projector_running, client: httpx.AsyncClient
) -> None:
    """The scheduler reads the event from the assets topic and queues an
    ``asset_triggered__...`` run with the event in ``triggering_asset_events``; the
    projection links the event to the run (``created_dagruns``)."""
    await _submit(client, "consumer.py", CONSUMER)
    y = await _asset_id(client, "y")
    async with background(scheduler_service.run(settings)):
        r = await client.patch("/api/v2/dags/asset_consumer", json={"is_paused": False})
        assert r.status_code == 200, r.text
        r = await client.post("/api/v2/assets/events", json={"asset_id": y, "extra": {"n": 1}})
        assert r.status_code == 200, r.text
        event_id = r.json()["id"]

        async def triggered() -> Any:
            r = await client.get("/api/v2/dags/asset_consumer/dagRuns")
            runs = r.json()["dag_runs"]
            return runs if runs else None

        runs = await eventually(triggered, within_s=60)
        assert len(runs) == 1
        run = runs[0]
        assert run["run_type"] == "asset_triggered"
        assert run["dag_run_id"].startswith("asset_triggered__")

        async def linked() -> Any:
            r = await client.get("/api/v2/assets/events", params={"asset_id": y})
            (e,) = r.json()["asset_events"]
            return e["created_dagruns"]

        created = await eventually(linked)
        assert [c["run_id"] for c in created] == [run["dag_run_id"]]
        r = await client.get("/api/v2/assets/events", params={"asset_id": y})
        assert [e["id"] for e in r.json()["asset_events"]] == [event_id]

    # The event on the topic is the one the API wrote.
    events = await _assets_topic(settings)
    assert [type(e.data) for e in events] == [AssetEventEmitted]
    assert events[0].data.created_by == "admin" and events[0].data.extra == {"n": 1}


async def test_a_restarted_scheduler_derives_what_is_new_from_the_log(
    settings, projector_running, client: httpx.AsyncClient
) -> None:
    """A second scheduler instance (after the first stopped) replays the run log and the
    assets topic: the events already consumed create no second run; a new one does."""
    await _submit(client, "consumer.py", CONSUMER)
    y = await _asset_id(client, "y")
    r = await client.patch("/api/v2/dags/asset_consumer", json={"is_paused": False})
    assert r.status_code == 200, r.text

    async def runs() -> list[dict[str, Any]]:
        r = await client.get("/api/v2/dags/asset_consumer/dagRuns")
        return r.json()["dag_runs"] if r.status_code == 200 else []

    async with background(scheduler_service.run(settings)):
        r = await client.post("/api/v2/assets/events", json={"asset_id": y})
        assert r.status_code == 200, r.text
        await eventually(runs, within_s=60)
    async with background(scheduler_service.run(settings)):
        await asyncio.sleep(8)  # joined, replayed, decided
        assert len(await runs()) == 1
        r = await client.post("/api/v2/assets/events", json={"asset_id": y, "extra": {"n": 2}})
        assert r.status_code == 200, r.text

        async def two() -> Any:
            found = await runs()
            return found if len(found) == 2 else None

        second = await eventually(two, within_s=60)
    ids = {run["dag_run_id"] for run in second}
    assert len(ids) == 2 and all(i.startswith("asset_triggered__") for i in ids)


async def test_a_success_folded_but_not_published_is_published_after_replay(
    settings, projector_running, client: httpx.AsyncClient
) -> None:
    """The producing scheduler died between folding a success and writing its asset
    event: the next instance replays the run log and publishes it (same id), once."""
    from datetime import UTC, datetime

    from ledgerflow.common.core.assets import asset_event_id
    from ledgerflow.common.events import (
        AssetEventReport,
        DagRunQueued,
        DagRunStarted,
        TaskAttemptStarted,
        TaskAttemptSucceeded,
        TaskInstanceQueued,
        make_envelope,
    )
    from ledgerflow.common.kafka_io import EventProducer

    r = await client.post("/api/v2/dagFiles", json={"filename": "p.py", "content": PRODUCER})
    assert r.status_code == 201, r.text
    version = r.json()["dags"][0]["version_id"]
    now = datetime.now(UTC)
    dag, run, task = "asset_producer", "manual__crashed", "make_x"
    ref = {"dag_id": dag, "run_id": run, "task_id": task}
    facts = [
        ("scheduler", DagRunQueued(dag_id=dag, run_id=run, version_id=version, queued_at=now)),
        ("scheduler", DagRunStarted(dag_id=dag, run_id=run, start_date=now)),
        ("scheduler", TaskInstanceQueued(**ref, try_number=1, queue="default", queued_when=now)),
        (
            "executor",
            TaskAttemptStarted(**ref, try_number=1, start_date=now, hostname="h", executor_id="e"),
        ),
        (
            "executor",
            TaskAttemptSucceeded(
                **ref,
                try_number=1,
                end_date=now,
                executor_id="e",
                return_value=1,
                asset_events=(AssetEventReport(name="x", uri="s3://bucket/x", extra={"k": 1}),),
            ),
        ),
    ]
    async with EventProducer(settings, source="test") as producer:
        for seq, (who, data) in enumerate(facts, start=1):
            env = make_envelope(
                data,
                id=f"fact-{seq}",
                source="ledgerflow/scheduler" if who == "scheduler" else "ledgerflow/executor",
                time=now,
                aggregate_key=dag,
                sequence=seq if who == "scheduler" else 0,
                correlation_id=run,
            )
            await producer.send(settings.topics.runs, env)
    expected = asset_event_id(dag, run, task, -1, 1, "x")

    async def published() -> Any:
        r = await client.get("/api/v2/assets/events", params={"source_run_id": run})
        return r.json()["asset_events"] or None

    async with background(scheduler_service.run(settings)):
        (event,) = await eventually(published, within_s=60)
    assert event["name"] == "x" and event["extra"] == {"k": 1}
    assert (event["source_dag_id"], event["source_task_id"]) == (dag, task)
    rows = await _assets_topic(settings)
    assert [e.id for e in rows] == [expected]
    # Another instance replays again: the event is on the topic, nothing is re-sent.
    async with background(scheduler_service.run(settings)):
        await asyncio.sleep(6)
    assert [e.id for e in await _assets_topic(settings)] == [expected]


async def _assets_topic(settings) -> list[Any]:
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from ledgerflow.common.kafka_io import consumer_config

    consumer = AIOKafkaConsumer(**{**consumer_config(settings), "group_id": None})
    await consumer.start()
    try:
        tp = TopicPartition(settings.topics.assets, 0)
        consumer.assign([tp])
        await consumer.seek_to_beginning(tp)
        end = (await consumer.end_offsets([tp]))[tp]
        out = []
        while await consumer.position(tp) < end:
            batch = await consumer.getmany(tp, timeout_ms=2000)
            out += [decode(m.value) for m in batch.get(tp, [])]
        return out
    finally:
        await consumer.stop()
