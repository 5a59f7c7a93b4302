"""Runs triggered by messages on external Kafka topics (ADR 0014), end to end: every
service its own process, and a plain aiokafka producer that knows nothing of
ledgerflow writing to a topic of its own.

(a) ledgerflow's spelling: 3 matching and 2 non-matching messages (plus one that is not
    JSON, which is dead-lettered) make exactly 3 runs with the messages in ``conf``;
    the scheduler is SIGKILLed and restarted, one more message makes exactly 4 runs, and
    the run log holds one ``DagRunQueued`` per message.
(b) Airflow's spelling (``MessageQueueTrigger(queue="kafka://host:port/topic")``).
"""

from __future__ import annotations

import asyncio
import json
import signal
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer  # type: ignore[import-untyped]
from aiokafka.admin import AIOKafkaAdminClient, NewTopic  # type: ignore[import-untyped]
from ledgerflow.common.events import DagRunQueued, ExternalMessageReceived

from .system import System
from .test_faults import read_all, run_log

pytestmark = pytest.mark.e2e

LEDGERFLOW_DAG = """
from ledgerflow.sdk import DAG, Asset, AssetWatcher, KafkaMessageTrigger
from ledgerflow.sdk.operators import BashOperator

orders = Asset(
    "orders",
    watchers=[
        AssetWatcher(
            "w",
            KafkaMessageTrigger(topics=["@TOPIC@"], filter="value.kind == 'order'"),
        )
    ],
)

with DAG("kafka_orders", schedule=[orders]):
    BashOperator(task_id="show", bash_command="echo offset={{ dag_run.conf['offset'] }}")
"""

AIRFLOW_DAG = """
from airflow.sdk import DAG, Asset, AssetWatcher
from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
from airflow.providers.standard.operators.empty import EmptyOperator

trigger = MessageQueueTrigger(queue="kafka://@BOOTSTRAP@/@TOPIC@", filter="key == 'go'")
with DAG("kafka_airflow", schedule=[Asset("mq", watchers=[AssetWatcher("mq_w", trigger)])]):
    EmptyOperator(task_id="t")
"""


# --------------------------------------------------------------------------- helpers
async def _create_topic(bootstrap: str, topic: str, partitions: int) -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, partitions, 1)])
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        for key, value in messages:
            await producer.send_and_wait(topic, value, key=key, headers=[("src", b"plain")])
    finally:
        await producer.stop()


def produce(system: System, topic: str, messages: list[tuple[bytes | None, bytes]]) -> None:
    asyncio.run(_produce(system.kafka_bootstrap, topic, messages))


def submit(system: System, filename: str, source: str, dag_id: str) -> None:
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": filename, "content": source})
    assert r.status_code == 201, r.text
    system.wait_dag(dag_id)


def runs(system: System, dag_id: str) -> list[dict[str, Any]]:
    with system.client() as c:
        r = c.get(f"/api/v2/dags/{dag_id}/dagRuns", params={"limit": 1000})
    assert r.status_code == 200, r.text
    return list(r.json()["dag_runs"])


def wait_for(what: str, probe: Callable[[], bool], system: System, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        system.check_alive()
        if probe():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out waiting for {what}\n{system.logs()}")


def settle_runs(system: System, dag_id: str, expected: int) -> list[dict[str, Any]]:
    """Wait for ``expected`` runs, then a few seconds more: no further run may appear."""
    wait_for(f"{expected} runs of {dag_id}", lambda: len(runs(system, dag_id)) >= expected, system)
    time.sleep(4)
    found = runs(system, dag_id)
    assert len(found) == expected, [r["dag_run_id"] for r in found]
    return found


def order(kind: str, n: int) -> bytes:
    return json.dumps({"kind": kind, "n": n}).encode()


# --------------------------------------------------------------------------- (a)
def test_messages_trigger_one_run_each_also_across_a_scheduler_kill(system: System) -> None:
    topic = f"ext-orders-{system.prefix}"
    asyncio.run(_create_topic(system.kafka_bootstrap, topic, 2))
    submit(system, "kafka_orders.py", LEDGERFLOW_DAG.replace("@TOPIC@", topic), "kafka_orders")
    # Sent right after the submission, possibly before the watcher runs: none is lost.
    produce(
        system,
        topic,
        [
            (b"a", order("order", 1)),
            (b"b", order("refund", 2)),
            (b"c", order("order", 3)),
            (b"d", b"{not json"),
            (b"e", order("ping", 4)),
            (b"f", order("order", 5)),
        ],
    )
    found = settle_runs(system, "kafka_orders", 3)
    assert {r["run_type"] for r in found} == {"asset_triggered"}
    confs = sorted((r["conf"] for r in found), key=lambda c: c["value"]["n"])
    assert [c["value"] for c in confs] == [
        {"kind": "order", "n": 1},
        {"kind": "order", "n": 3},
        {"kind": "order", "n": 5},
    ]
    assert [c["key"] for c in confs] == ["a", "c", "f"]
    for c in confs:
        assert c["topic"] == topic and c["headers"] == {"src": "plain"}
        assert isinstance(c["offset"], int) and isinstance(c["timestamp"], int)
    for r in found:
        done = system.wait_run("kafka_orders", r["dag_run_id"])
        assert done["state"] == "success", system.logs()

    # The message that is not JSON was set aside with the reason, not turned into a run.
    dlq = asyncio.run(read_all(system, f"{system.prefix}.dlq", raw=True))
    bad = [r for r in dlq if r.value == b"{not json"]
    assert len(bad) == 1
    assert not [r for r in dlq if b"ExternalMessageReceived" in (r.value or b"")]
    reason = dict(bad[0].headers)["ledgerflow-dlq-reason"].decode()
    assert "not JSON" in reason, reason

    system.kill("scheduler", signal.SIGKILL)
    system.start("scheduler")
    produce(system, topic, [(b"g", order("order", 6)), (b"h", order("nope", 7))])
    found = settle_runs(system, "kafka_orders", 4)
    assert sorted(r["conf"]["value"]["n"] for r in found) == [1, 3, 5, 6]
    assert len({r["dag_run_id"] for r in found}) == 4

    events = [e for e in run_log(system) if getattr(e.data, "dag_id", None) == "kafka_orders"]
    queued = [e.data for e in events if isinstance(e.data, DagRunQueued)]
    assert len(queued) == 4 and len({q.run_id for q in queued}) == 4
    facts = [e.data for e in events if isinstance(e.data, ExternalMessageReceived)]
    assert len({(f.partition, f.offset) for f in facts}) == 4


# --------------------------------------------------------------------------- (b)
def test_airflow_message_queue_trigger_spelling(system: System) -> None:
    topic = f"ext-mq-{uuid.uuid4().hex[:6]}-{system.prefix}"
    asyncio.run(_create_topic(system.kafka_bootstrap, topic, 1))
    source = AIRFLOW_DAG.replace("@TOPIC@", topic).replace("@BOOTSTRAP@", system.kafka_bootstrap)
    submit(system, "kafka_airflow.py", source, "kafka_airflow")
    produce(system, topic, [(b"go", b'{"x": 1}'), (b"stop", b'{"x": 2}'), (b"go", b'{"x": 3}')])
    found = settle_runs(system, "kafka_airflow", 2)
    assert sorted(r["conf"]["value"]["x"] for r in found) == [1, 3]
    assert all(r["conf"]["key"] == "go" for r in found)


# --------------------------------------------------------------------------- (c)
def set_paused(system: System, dag_id: str, paused: bool) -> None:
    with system.client() as c:
        r = c.patch(f"/api/v2/dags/{dag_id}", json={"is_paused": paused})
        assert r.status_code == 200, r.text
    wait_for(
        f"{dag_id} paused={paused}",
        lambda: system.client().get(f"/api/v2/dags/{dag_id}").json()["is_paused"] is paused,
        system,
    )


def test_messages_sent_while_paused_make_no_run_also_after_a_restart(system: System) -> None:
    """As Airflow: an asset event does not queue a paused DAG. A restarted watcher that
    reads the paused period again drops the same messages (they predate the unpause)."""
    topic = f"ext-pause-{system.prefix}"
    asyncio.run(_create_topic(system.kafka_bootstrap, topic, 1))
    source = LEDGERFLOW_DAG.replace("@TOPIC@", topic).replace("kafka_orders", "kafka_pause")
    submit(system, "kafka_pause.py", source, "kafka_pause")
    produce(system, topic, [(b"a", order("order", 1))])
    settle_runs(system, "kafka_pause", 1)
    set_paused(system, "kafka_pause", True)
    time.sleep(1)
    produce(system, topic, [(b"b", order("order", 2)), (b"c", order("order", 3))])
    time.sleep(3)  # the watcher reads and drops them while the DAG is paused
    set_paused(system, "kafka_pause", False)
    system.kill("scheduler", signal.SIGKILL)
    system.start("scheduler")
    time.sleep(1)
    produce(system, topic, [(b"d", order("order", 4))])
    found = settle_runs(system, "kafka_pause", 2)
    assert sorted(r["conf"]["value"]["n"] for r in found) == [1, 4]


# --------------------------------------------------------------------------- (d)
REBALANCE_DAGS = """
from ledgerflow.sdk import DAG, Asset, AssetWatcher, KafkaMessageTrigger
from ledgerflow.sdk.operators import EmptyOperator

for i in range(4):
    trigger = KafkaMessageTrigger(topics=["@TOPIC@"], filter="value.kind == 'order'")
    with DAG(f"kafka_rb_{i}", schedule=[Asset(f"rb{i}", watchers=[AssetWatcher("w", trigger)])]):
        EmptyOperator(task_id="t")
"""


def test_a_second_scheduler_joining_and_dying_duplicates_and_loses_nothing(
    system: System,
) -> None:
    topic = f"ext-rb-{system.prefix}"
    asyncio.run(_create_topic(system.kafka_bootstrap, topic, 2))
    with system.client() as c:
        r = c.post(
            "/api/v2/dagFiles",
            json={"filename": "kafka_rb.py", "content": REBALANCE_DAGS.replace("@TOPIC@", topic)},
        )
    assert r.status_code == 201, r.text
    ids = [f"kafka_rb_{i}" for i in range(4)]
    for dag_id in ids:
        system.wait_dag(dag_id)
    n = 0

    def send(count: int) -> None:
        nonlocal n
        for _ in range(count):
            n += 1
            produce(system, topic, [(f"k{n}".encode(), order("order", n))])

    send(2)
    system.start("scheduler-b", args=["scheduler"])
    log_b = system.workdir / "scheduler-b.log"
    wait_for(
        "scheduler-b to own partitions",
        lambda: log_b.exists() and "owning partitions" in log_b.read_text(),
        system,
    )
    send(2)
    time.sleep(2)
    system.kill("scheduler-b", signal.SIGKILL)  # dies: its partitions move back
    system.procs.pop("scheduler-b")
    send(2)
    for dag_id in ids:
        found = settle_runs(system, dag_id, 6)
        assert sorted(r["conf"]["value"]["n"] for r in found) == [1, 2, 3, 4, 5, 6]
    queued = [e.data for e in run_log(system) if isinstance(e.data, DagRunQueued)]
    for dag_id in ids:
        mine = [q.run_id for q in queued if q.dag_id == dag_id]
        assert len(mine) == 6 and len(set(mine)) == 6
