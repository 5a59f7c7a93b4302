"""The API's ADR 0006 surface against real Kafka and Postgres: DAG files with template
files, tasks and DAG details, conf validated against params, XCom entries, per-map-index
task instances and the new task instance states.

The API runs in-process (ASGI transport, with its real lifespan); the projector runs
against the same database; the scheduler's and executor's parts are played by
hand-made events.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from ledgerflow.api.app import create_app
from ledgerflow.api.projector import Projector
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import MapSource, MapSpec, SerializedDag, SerializedTask
from ledgerflow.common.kafka_io import EventProducer, consumer_config, ensure_topics
from ledgerflow.common.settings import Settings

pytestmark = pytest.mark.integration

PASSWORD = "s3cret"
T0 = datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)
DAG_ID = "model"
RUN_ID = "manual__2026-11-24T01:02:03.000123+00:00"
REF = {"dag_id": DAG_ID, "run_id": RUN_ID}
HELLO = """\
from ledgerflow.sdk import DAG, BashOperator

with DAG("templated", schedule=None):
    BashOperator(task_id="run_sql", bash_command="cat sql/q.sql")
"""


def t(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def model_dag() -> SerializedDag:
    return SerializedDag(
        dag_id=DAG_ID,
        fileloc="/dags/model.py",
        description="the task model",
        start_date=T0,
        catchup=False,
        dagrun_timeout_seconds=3600,
        doc_md="# Model",
        params={"n": 1, "mode": "fast"},
        param_schemas={
            "n": {"type": "integer", "minimum": 0, "description": "how many"},
            "mode": {"type": "string", "enum": ["fast", "slow"]},
            "name": {"type": "string", "title": "Name"},
        },
        template_searchpath=("sql",),
        tasks=(
            SerializedTask(
                task_id="make",
                operator="_PythonDecoratedOperator",
                retries=2,
                retry_delay_seconds=90,
                execution_timeout_seconds=600.5,
                template_fields={"templates_dict": None, "op_args": []},
                doc="makes numbers",
            ),
            SerializedTask(
                task_id="double",
                operator="_PythonDecoratedOperator",
                upstream_task_ids=("make",),
                mapped=MapSpec(sources=(MapSource(arg="x", task_id="make"),)),
                trigger_rule="all_done",
            ),
            SerializedTask(task_id="wait", operator="PythonSensor", upstream_task_ids=("make",)),
            SerializedTask(task_id="maybe", operator="BashOperator", upstream_task_ids=("make",)),
            SerializedTask(task_id="after", operator="EmptyOperator", upstream_task_ids=("maybe",)),
        ),
    )


@pytest.fixture
async def settings(make_settings: Callable[..., Settings]) -> Settings:
    s = make_settings(partitions=2, work_partitions=2, admin_password=PASSWORD)
    await ensure_topics(s)
    return s


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            token = await c.post("/auth/token", json={"username": "admin", "password": PASSWORD})
            c.headers["Authorization"] = f"Bearer {token.json()['access_token']}"
            yield c


async def project(settings: Settings) -> None:
    async with Projector(settings) as projector:
        await projector.catch_up(within_s=30)


async def read_topic(settings: Settings, topic: str) -> list[ev.Envelope]:
    """Everything on ``topic`` now (all partitions)."""
    consumer = AIOKafkaConsumer(**consumer_config(settings))
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(settings.partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        got: list[Any] = []
        async with asyncio.timeout(10):
            while True:
                positions = {tp: await consumer.position(tp) for tp in tps}
                if all(positions[tp] >= end for tp, end in ends.items()):
                    break
                for records in (await consumer.getmany(timeout_ms=200)).values():
                    got += records
        return [ev.decode(r.value) for r in got]
    finally:
        await consumer.stop()


async def publish(settings: Settings, *facts: Any, topic: str = "runs") -> None:
    async with EventProducer(settings, source="tests/api") as producer:
        for i, fact in enumerate(facts):
            envelope = ev.make_envelope(
                fact,
                id=str(uuid.uuid4()),
                source="tests/api",
                time=T0,
                aggregate_key=DAG_ID,
                sequence=i + 1,
            )
            await producer.send(getattr(settings.topics, topic), envelope)


async def publish_model_version(settings: Settings) -> None:
    version = ev.DagVersionPublished(
        dag_id=DAG_ID, version_id="v1", dag=model_dag(), source_code="# model", filename="m.py"
    )
    await publish(settings, version, topic="dags")


# --------------------------------------------------------------------------- DAG files


async def test_dag_file_with_template_files(settings: Settings, client: httpx.AsyncClient) -> None:
    plain = await client.post("/api/v2/dagFiles", json={"filename": "t.py", "content": HELLO})
    assert plain.status_code == 201, plain.text
    extra = {"sql/q.sql": "select 1", "./run.sh": "echo hi"}
    response = await client.post(
        "/api/v2/dagFiles", json={"filename": "t.py", "content": HELLO, "extra_files": extra}
    )
    assert response.status_code == 201, response.text
    [with_extra] = response.json()["dags"]
    # A template belongs to the version: other templates, other version.
    assert with_extra["version_id"] != plain.json()["dags"][0]["version_id"]

    multipart = await client.post(
        "/api/v2/dagFiles",
        files=[
            ("file", ("t.py", HELLO.encode())),
            ("extra_files", ("sql/q.sql", b"select 1")),
            ("extra_files", ("run.sh", b"echo hi")),
        ],
    )
    assert multipart.status_code == 201, multipart.text
    assert multipart.json()["dags"] == [with_extra]

    versions = [
        e.data
        for e in await read_topic(settings, settings.topics.dags)
        if isinstance(e.data, ev.DagVersionPublished)
    ]
    assert [v.extra_files for v in versions] == [
        {},
        {"sql/q.sql": "select 1", "run.sh": "echo hi"},
        {"sql/q.sql": "select 1", "run.sh": "echo hi"},
    ]

    for path in ("../secrets.sql", "/etc/passwd", "a/../../b.sql", "C:/x.sql", "a\\b.sql", ""):
        bad = await client.post(
            "/api/v2/dagFiles",
            json={"filename": "t.py", "content": HELLO, "extra_files": {path: "x"}},
        )
        assert bad.status_code == 422, (path, bad.text)
        assert bad.json()["detail"][0]["loc"] == ["body", "extra_files", path]
    too_big = await client.post(
        "/api/v2/dagFiles",
        json={
            "filename": "t.py",
            "content": HELLO,
            "extra_files": {"a.txt": "x" * (512 * 1024), "b.txt": "y" * (512 * 1024 + 1)},
        },
    )
    assert too_big.status_code == 422
    [problem] = too_big.json()["detail"]
    assert problem["loc"] == ["body", "extra_files"] and "limit is 1048576" in problem["msg"]
    not_text = await client.post(
        "/api/v2/dagFiles",
        files=[("file", ("t.py", HELLO.encode())), ("extra_files", ("x.bin", b"\xff\xfe"))],
    )
    assert not_text.status_code == 422
    assert not_text.json()["detail"][0]["loc"] == ["body", "extra_files", "x.bin"]
    assert len(await read_topic(settings, settings.topics.dags)) == 3  # nothing more


# --------------------------------------------------------------------------- tasks and details


async def test_tasks_and_dag_details(settings: Settings, client: httpx.AsyncClient) -> None:
    assert (await client.get(f"/api/v2/dags/{DAG_ID}/tasks")).status_code in (404, 503)
    await publish_model_version(settings)
    await project(settings)

    listing = (await client.get(f"/api/v2/dags/{DAG_ID}/tasks")).json()
    assert listing["total_entries"] == 5
    assert [x["task_id"] for x in listing["tasks"]] == ["after", "double", "make", "maybe", "wait"]
    make = (await client.get(f"/api/v2/dags/{DAG_ID}/tasks/make")).json()
    assert make["task_display_name"] == "make" and make["owner"] == "airflow"
    assert make["retries"] == 2 and make["trigger_rule"] == "all_success"
    assert make["retry_delay"] == {
        "__type": "TimeDelta",
        "days": 0,
        "seconds": 90,
        "microseconds": 0,
    }
    assert make["execution_timeout"] == {
        "__type": "TimeDelta",
        "days": 0,
        "seconds": 600,
        "microseconds": 500000,
    }
    assert make["downstream_task_ids"] == ["double", "maybe", "wait"]
    assert make["template_fields"] == ["op_args", "templates_dict"]
    assert make["is_mapped"] is False and make["doc_md"] == "makes numbers"
    assert make["start_date"] == "2026-11-24T01:02:03.000123+00:00"
    assert make["operator_name"] == "_PythonDecoratedOperator" and make["extra_links"] == []
    assert make["params"]["n"] == {
        "__class": "airflow.sdk.definitions.param.Param",
        "value": 1,
        "description": "how many",
        "schema": {"type": "integer", "minimum": 0},
        "source": None,
    }
    for key in (
        "depends_on_past",
        "wait_for_downstream",
        "pool",
        "pool_slots",
        "queue",
        "priority_weight",
        "weight_rule",
        "ui_color",
        "ui_fgcolor",
        "class_ref",
    ):
        assert key in make
    double = (await client.get(f"/api/v2/dags/{DAG_ID}/tasks/double")).json()
    assert double["is_mapped"] is True and double["trigger_rule"] == "all_done"

    by_rule = (await client.get(f"/api/v2/dags/{DAG_ID}/tasks?order_by=-task_id")).json()
    assert [x["task_id"] for x in by_rule["tasks"]] == ["wait", "maybe", "make", "double", "after"]
    bad_order = await client.get(f"/api/v2/dags/{DAG_ID}/tasks?order_by=nope")
    assert bad_order.status_code == 400 and "nope" in bad_order.json()["detail"]
    missing = await client.get(f"/api/v2/dags/{DAG_ID}/tasks/nope")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Task with id nope was not found"
    assert (await client.get("/api/v2/dags/nope/tasks")).status_code == 404

    details = (await client.get(f"/api/v2/dags/{DAG_ID}/details")).json()
    assert details["dag_id"] == DAG_ID and details["description"] == "the task model"
    assert details["catchup"] is False and details["doc_md"] == "# Model"
    assert details["dag_run_timeout"] == "PT1H"
    assert details["template_search_path"] == ["sql"] and details["concurrency"] == 16
    assert set(details["params"]) == {"n", "mode", "name"}
    assert details["params"]["name"]["value"] is None
    assert details["params"]["name"]["schema"] == {"type": "string", "title": "Name"}
    assert details["latest_version_id"] == "v1"
    assert (await client.get("/api/v2/dags/nope/details")).status_code == 404


# --------------------------------------------------------------------------- conf and params


async def test_trigger_validates_conf_against_params(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await publish_model_version(settings)
    await project(settings)
    url = f"/api/v2/dags/{DAG_ID}/dagRuns"

    no_name = await client.post(url, json={"conf": {}})
    assert no_name.status_code == 400
    assert (
        no_name.json()["detail"]
        == "Invalid input for param name: No value passed and Param has no default value"
    )
    wrong_type = await client.post(url, json={"conf": {"name": "x", "n": "abc"}})
    assert wrong_type.status_code == 400
    assert (
        wrong_type.json()["detail"] == "Invalid input for param n: 'abc' is not of type 'integer'"
    )
    below = await client.post(url, json={"conf": {"name": "x", "n": -1}})
    assert below.json()["detail"] == "Invalid input for param n: -1 is less than the minimum of 0"
    not_enum = await client.post(url, json={"conf": {"name": "x", "mode": "medium"}})
    assert not_enum.status_code == 400 and "param mode" in not_enum.json()["detail"]
    assert await read_topic(settings, settings.topics.commands) == []

    ok = await client.post(url, json={"conf": {"name": "x", "extra": [1]}})
    assert ok.status_code == 200, ok.text
    assert ok.json()["conf"] == {"name": "x", "extra": [1]}  # stored as given
    [command] = await read_topic(settings, settings.topics.commands)
    assert isinstance(command.data, ev.TriggerDagRun)
    assert command.data.conf == {"name": "x", "extra": [1]}


# --------------------------------------------------------------------------- XComs and task instances


async def run_story(settings: Settings) -> None:
    def attempt(task_id: str, map_index: int = -1, try_number: int = 1) -> dict[str, Any]:
        return dict(REF, task_id=task_id, map_index=map_index, try_number=try_number)

    await publish_model_version(settings)
    await publish(
        settings,
        ev.DagRunQueued(**REF, version_id="v1", queued_at=T0, logical_date=T0),
        ev.DagRunStarted(**REF, start_date=t(1)),
        ev.TaskInstanceQueued(**attempt("make"), queue="default", queued_when=t(1)),
        ev.TaskAttemptStarted(**attempt("make"), start_date=t(2), hostname="h", executor_id="e"),
        ev.TaskAttemptSucceeded(
            **attempt("make"),
            end_date=t(3),
            executor_id="e",
            return_value=[10, 20, 30],
            xcoms={"count": 3},
            rendered_fields={"templates_dict": "{'n': 1}"},
        ),
        ev.TaskInstanceMapExpanded(**REF, task_id="double", length=3, at=t(4)),
        ev.TaskInstanceQueued(**attempt("double", 1), queue="default", queued_when=t(4)),
        ev.TaskAttemptStarted(
            **attempt("double", 1), start_date=t(5), hostname="h", executor_id="e"
        ),
        ev.TaskAttemptSucceeded(
            **attempt("double", 1), end_date=t(6), executor_id="e", return_value=40
        ),
        ev.TaskAttemptSkipped(**attempt("maybe"), end_date=t(6), executor_id="e", reason="99"),
        ev.TaskAttemptRescheduled(
            **attempt("wait"), end_date=t(6), reschedule_date=t(66), executor_id="e"
        ),
        ev.TaskInstanceUpstreamFailed(**REF, task_id="after", at=t(7)),
    )
    await project(settings)


async def test_xcom_entries(settings: Settings, client: httpx.AsyncClient) -> None:
    await run_story(settings)
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances"

    make = (await client.get(f"{base}/make/xcomEntries")).json()
    assert make["total_entries"] == 2
    assert [(x["key"], x["map_index"]) for x in make["xcom_entries"]] == [
        ("count", -1),
        ("return_value", -1),
    ]
    first = make["xcom_entries"][0]
    assert "value" not in first
    assert first == {
        "key": "count",
        "timestamp": "2026-11-24T01:02:06.000123+00:00",
        "logical_date": "2026-11-24T01:02:03.000123+00:00",
        "map_index": -1,
        "task_id": "make",
        "dag_id": DAG_ID,
        "run_id": RUN_ID,
        "dag_display_name": DAG_ID,
        "task_display_name": "make",
    }
    keyed = (await client.get(f"{base}/make/xcomEntries?xcom_key=count")).json()
    assert [x["key"] for x in keyed["xcom_entries"]] == ["count"]
    everything = (await client.get("/api/v2/dags/~/dagRuns/~/taskInstances/~/xcomEntries")).json()
    assert everything["total_entries"] == 3
    mapped = (await client.get(f"{base}/double/xcomEntries?map_index=1")).json()
    assert [(x["key"], x["map_index"]) for x in mapped["xcom_entries"]] == [("return_value", 1)]
    assert (await client.get(f"{base}/double/xcomEntries?map_index=0")).json()["total_entries"] == 0

    value = (await client.get(f"{base}/make/xcomEntries/return_value")).json()
    assert value["value"] == [10, 20, 30] and value["key"] == "return_value"
    deserialized = await client.get(f"{base}/make/xcomEntries/return_value?deserialize=true")
    assert deserialized.json()["value"] == [10, 20, 30]
    as_text = await client.get(f"{base}/make/xcomEntries/count?stringify=true")
    assert as_text.json()["value"] == "3"
    by_index = await client.get(f"{base}/double/xcomEntries/return_value?map_index=1")
    assert by_index.json()["value"] == 40
    missing = await client.get(f"{base}/double/xcomEntries/return_value")
    assert missing.status_code == 404
    assert missing.json()["detail"] == "XCom entry with key: `return_value` not found"


async def test_task_instances_per_map_index_and_states(
    settings: Settings, client: httpx.AsyncClient
) -> None:
    await run_story(settings)
    base = f"/api/v2/dags/{DAG_ID}/dagRuns/{RUN_ID}/taskInstances"

    listing = (await client.get(base)).json()
    rows = [(ti["task_id"], ti["map_index"], ti["state"]) for ti in listing["task_instances"]]
    assert rows == [
        ("after", -1, "upstream_failed"),
        ("double", 0, None),
        ("double", 1, "success"),
        ("double", 2, None),
        ("make", -1, "success"),
        ("maybe", -1, "skipped"),
        ("wait", -1, "up_for_reschedule"),
    ]
    assert listing["total_entries"] == 7
    by_task = {(ti["task_id"], ti["map_index"]): ti for ti in listing["task_instances"]}
    make = by_task[("make", -1)]
    assert make["rendered_fields"] == {"templates_dict": "{'n': 1}"}
    assert make["rendered_map_index"] is None and make["max_tries"] == 2
    assert make["run_after"] == "2026-11-24T01:02:03.000123+00:00"
    assert by_task[("double", 2)]["rendered_fields"] == {}

    skipped = (await client.get(f"{base}?state=skipped&state=up_for_reschedule")).json()
    assert [ti["task_id"] for ti in skipped["task_instances"]] == ["maybe", "wait"]
    only_double = (await client.get(f"{base}?task_id=double")).json()
    assert only_double["total_entries"] == 3

    one = await client.get(f"{base}/double/1")
    assert one.status_code == 200 and one.json()["state"] == "success"
    assert one.json()["map_index"] == 1
    assert (await client.get(f"{base}/double?map_index=1")).json() == one.json()
    unmapped = await client.get(f"{base}/make/-1")
    assert unmapped.status_code == 200 and unmapped.json()["task_id"] == "make"
    nowhere = await client.get(f"{base}/double/7")
    assert nowhere.status_code == 404
    assert nowhere.json()["detail"] == (
        f"The Mapped Task Instance with dag_id: `{DAG_ID}`, run_id: `{RUN_ID}`,"
        " task_id: `double`, and map_index: `7` was not found"
    )
    needs_index = await client.get(f"{base}/double")
    assert needs_index.status_code == 404
    assert (
        needs_index.json()["detail"]
        == "Task instance is mapped, add the map_index value to the URL"
    )

    mapped = (await client.get(f"{base}/double/listMapped")).json()
    assert [ti["map_index"] for ti in mapped["task_instances"]] == [0, 1, 2]
    not_mapped = await client.get(f"{base}/make/listMapped")
    assert not_mapped.status_code == 404
    assert not_mapped.json()["detail"] == "Task id make is not mapped"
