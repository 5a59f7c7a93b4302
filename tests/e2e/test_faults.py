"""Faults, end to end: every service its own process, two executors, short heartbeat
and zombie timeouts. Executions are counted in a ledger file the tasks append to and
compared with the attempts in the run log.

(a) SIGKILL an executor mid-task: the attempt is a zombie and runs again elsewhere.
(b) SIGTERM an executor: its attempt finishes, is reported, and the process leaves.
(c) Poison work items go to the DLQ with the reason; the partition moves on.
(d) Clearing a running task kills and reruns it; marking one success kills it and the
    mark stays.
(e) A pool of one slot never runs two of its tasks at once.
(f) The scheduler is SIGKILLed during a 50-task run: it finishes, nothing runs twice.
(g) The scheduler dies after writing a mark's facts, before sending the cancel: the
    restarted scheduler sends it, and the running attempt is killed.
"""

from __future__ import annotations

import asyncio
import collections
import json
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from ledgerflow.common.core import SCHEDULER_SOURCE, decide, empty, evolve
from ledgerflow.common.dag_versions import DagVersionCache
from ledgerflow.common.events import (
    Envelope,
    MalformedMessage,
    RunTaskAttempt,
    SetTaskInstanceState,
    decode,
    deterministic_id,
    encode,
    make_envelope,
)
from ledgerflow.common.kafka_io import EventProducer
from ledgerflow.common.settings import Settings

from .conftest import _create_db, _drop_db, _infra
from .system import SERVICES, System

pytestmark = pytest.mark.e2e

DAGS = Path(__file__).resolve().parent / "dags"
EXECUTOR_ARGS = ["executor", "--queue", "default", "--slots", "4"]
TIMEOUTS = {
    "LEDGERFLOW_HEARTBEAT_INTERVAL_SECONDS": "0.5",
    "LEDGERFLOW_ZOMBIE_TIMEOUT_SECONDS": "4",
    "LEDGERFLOW_CANCEL_GRACE_SECONDS": "2",
    "LEDGERFLOW_EXECUTOR_SHUTDOWN_GRACE_SECONDS": "15",
    "LEDGERFLOW_EXECUTOR_VERSION_TIMEOUT_SECONDS": "3",
}


@pytest.fixture(scope="module")
def system(tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    kafka, base_db = _infra()
    name = f"e2e_{uuid.uuid4().hex[:10]}"
    db_url = asyncio.run(_create_db(base_db, name))
    workdir: Path = tmp_path_factory.mktemp("faults")
    s = System(kafka_bootstrap=kafka, database_url=db_url, workdir=workdir, extra_env=TIMEOUTS)
    try:
        for service in SERVICES:
            s.start(service)
        s.start("executor-b", args=EXECUTOR_ARGS)
        s.wait_healthy()
        yield s
    finally:
        s.stop_all()
        asyncio.run(_drop_db(base_db, name))


@pytest.fixture(scope="module")
def ledger(system: System) -> Path:
    path = system.workdir / "ledger.txt"
    path.touch()
    source = (DAGS / "faults.py").read_text().replace("@LEDGER@", str(path))
    with system.client() as c:
        r = c.post("/api/v2/dagFiles", json={"filename": "faults.py", "content": source})
    assert r.status_code == 201, r.text
    for dag_id in ("fault_zombie", "fault_graceful", "fault_mark", "fault_pool", "fault_wide"):
        system.wait_dag(dag_id)
    return path


# --------------------------------------------------------------------------- helpers
def trigger(system: System, dag_id: str) -> str:
    with system.client() as c:
        r = c.post(f"/api/v2/dags/{dag_id}/dagRuns", json={"conf": {}})
    assert r.status_code == 200, r.text
    return str(r.json()["dag_run_id"])


def tis(system: System, dag_id: str, run_id: str) -> dict[str, dict[str, Any]]:
    with system.client() as c:
        r = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    if r.status_code == 404:  # the run is not projected yet
        return {}
    assert r.status_code == 200, r.text
    return {ti["task_id"]: ti for ti in r.json()["task_instances"]}


def run_log(system: System, run_id: str | None = None) -> list[Envelope]:
    """Every event of the run log (of one run), read from the topic as a user could."""
    return [
        e
        for e in asyncio.run(read_all(system, f"{system.prefix}.runs"))
        if run_id is None or getattr(e.data, "run_id", None) == run_id
    ]


async def read_all(system: System, topic: str, *, raw: bool = False) -> list[Any]:
    consumer = AIOKafkaConsumer(bootstrap_servers=system.kafka_bootstrap, group_id=None)
    await consumer.start()
    try:
        parts = 1 if topic.endswith(".dlq") else 3  # LEDGERFLOW_(WORK_)PARTITIONS=3
        tps = [TopicPartition(topic, p) for p in range(parts)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        ends = await consumer.end_offsets(tps)
        out: list[Any] = []
        seen: set[str] = set()
        while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
            for records in (await consumer.getmany(timeout_ms=500)).values():
                for r in records:
                    if raw:
                        out.append(r)
                        continue
                    try:
                        env = decode(r.value)
                    except MalformedMessage:
                        continue
                    if env.id not in seen:  # readers drop repeats by id
                        seen.add(env.id)
                        out.append(env)
        return out
    finally:
        await consumer.stop()


def started_attempts(events: list[Envelope]) -> list[tuple[str, str, int, int]]:
    return sorted(
        (e.data.run_id, e.data.task_id, e.data.map_index, e.data.try_number)
        for e in events
        if e.data.type == "TaskAttemptStarted"
    )


def executions(ledger: Path, run_id: str) -> list[tuple[str, str, int, int]]:
    out = []
    for line in ledger.read_text().splitlines():
        r, t, m, n = line.split()
        if r == run_id:
            out.append((r, t, int(m), int(n)))
    return sorted(out)


def wait_for(what: str, check: Any, system: System, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        system_ok = {n: p.poll() for n, p in system.procs.items()}
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what} ({system_ok})\n{system.logs()}")


def executor_running(system: System, dag_id: str, run_id: str, task_id: str) -> str:
    """The name of the executor process running ``task_id`` (from the attempt's
    executor id, ``host:pid:queue:...``)."""

    def find() -> str | None:
        ti = tis(system, dag_id, run_id).get(task_id, {})
        if ti.get("state") != "running" or not ti.get("pid"):
            return None
        for e in run_log(system, run_id):
            if e.data.type == "TaskAttemptStarted" and e.data.task_id == task_id:
                pid = int(e.data.executor_id.split(":")[1])
                for name, proc in system.procs.items():
                    if proc.pid == pid and name.startswith("executor"):
                        return name
        return None

    return str(wait_for(f"{task_id} running", find, system))


def restart_executor(system: System, name: str) -> None:
    system.start(name, args=EXECUTOR_ARGS)


# --------------------------------------------------------------------------- (a)
def test_a_sigkilled_executor_attempt_is_a_zombie_and_runs_again_elsewhere(system, ledger):
    run_id = trigger(system, "fault_zombie")
    victim = executor_running(system, "fault_zombie", run_id, "slow")
    system.kill(victim, signal.SIGKILL)
    try:
        run = system.wait_run("fault_zombie", run_id, timeout=90)
        assert run["state"] == "success", system.logs()
        events = run_log(system, run_id)
        zombies = [e.data for e in events if e.data.type == "TaskAttemptZombie"]
        assert [(z.task_id, z.try_number) for z in zombies] == [("slow", 1)]
        assert "stopped heartbeating" in zombies[0].reason
        starts = {
            (e.data.task_id, e.data.try_number): e.data.executor_id
            for e in events
            if e.data.type == "TaskAttemptStarted"
        }
        assert starts[("slow", 2)] != starts[("slow", 1)]  # another executor
        assert executions(ledger, run_id) == started_attempts(events)
        assert [(t, n) for _, t, _, n in executions(ledger, run_id)] == [
            ("after", 1),
            ("slow", 1),
            ("slow", 2),
        ]
    finally:
        restart_executor(system, victim)


# --------------------------------------------------------------------------- (b)
def test_b_sigterm_lets_the_attempt_finish_reports_commits_and_leaves(system, ledger):
    run_id = trigger(system, "fault_graceful")
    victim = executor_running(system, "fault_graceful", run_id, "short")
    proc = system.procs[victim]
    t0 = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    try:
        code = proc.wait(timeout=30)
        assert code == 0, system.logs()
        assert time.monotonic() - t0 < 20
        run = system.wait_run("fault_graceful", run_id, timeout=30)
        assert run["state"] == "success", system.logs()
        events = run_log(system, run_id)
        finals = [
            (e.data.type, e.data.try_number)
            for e in events
            if e.data.type.startswith("TaskAttempt") and e.data.type != "TaskAttemptHeartbeat"
        ]
        assert finals == [("TaskAttemptStarted", 1), ("TaskAttemptSucceeded", 1)]
        assert executions(ledger, run_id) == started_attempts(events)
    finally:
        restart_executor(system, victim)


# --------------------------------------------------------------------------- (c)
def test_c_poison_work_items_go_to_the_dlq_and_the_partition_moves_on(system, ledger):
    topic = f"{system.prefix}.work.default"

    def unknown_version(p: int) -> bytes:
        item = RunTaskAttempt(
            dag_id="fault_graceful",
            run_id=f"poison-{p}",  # one attempt per partition (a repeat is not re-run)
            task_id="short",
            try_number=1,
            version_id="no-such-version",
            queue="default",
        )
        env = make_envelope(
            item,
            id=deterministic_id("poison", uuid.uuid4().hex),
            source="tests/e2e",
            time=datetime.now(UTC),
            aggregate_key="fault_graceful",
        )
        return encode(env)

    async def produce() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=system.kafka_bootstrap)
        await producer.start()
        try:
            for p in range(3):  # every partition gets both kinds of poison
                await producer.send_and_wait(topic, b"{not json", key=b"x", partition=p)
                await producer.send_and_wait(topic, unknown_version(p), key=b"y", partition=p)
        finally:
            await producer.stop()

    asyncio.run(produce())
    # The partitions move on: a run queued after the poison completes.
    run_id = trigger(system, "fault_graceful")
    assert system.wait_run("fault_graceful", run_id, timeout=60)["state"] == "success"

    def dead_letters() -> list[dict[str, str]]:
        records = asyncio.run(read_all(system, f"{system.prefix}.dlq", raw=True))
        return [
            {k: bytes(v).decode() for k, v in r.headers if k.startswith("ledgerflow-dlq-")}
            for r in records
        ]

    def both_kinds() -> list[dict[str, str]] | None:
        # At-least-once: an item redelivered after a rebalance may be dead-lettered
        # twice, so count distinct source positions of each kind.
        letters = dead_letters()

        def positions(match: Any) -> set[tuple[str, str]]:
            return {
                (d["ledgerflow-dlq-partition"], d["ledgerflow-dlq-offset"])
                for d in letters
                if match(d["ledgerflow-dlq-reason"])
            }

        not_json = positions(lambda r: r.startswith("not JSON"))
        unknown_version = positions(lambda r: "no-such-version" in r)
        return letters if len(not_json) == 3 and len(unknown_version) == 3 else None

    letters = wait_for("six dead letters", both_kinds, system, timeout=60)
    assert {d["ledgerflow-dlq-topic"] for d in letters} == {topic}


# --------------------------------------------------------------------------- (d)
def clear(system: System, dag_id: str, run_id: str, task_id: str) -> dict[str, Any]:
    with system.client() as c:
        r = c.post(
            f"/api/v2/dags/{dag_id}/clearTaskInstances",
            json={
                "dag_run_id": run_id,
                "task_ids": [task_id],
                "only_failed": False,
                "dry_run": False,
            },
        )
    assert r.status_code == 200, r.text
    return dict(r.json())


def test_d_clearing_a_running_task_kills_it_and_it_runs_again(system, ledger):
    run_id = trigger(system, "fault_zombie")
    executor_running(system, "fault_zombie", run_id, "slow")
    with system.client() as c:
        r = c.post(
            "/api/v2/dags/fault_zombie/clearTaskInstances",
            json={"dag_run_id": run_id, "task_ids": ["slow"], "only_failed": False},
        )
    assert r.status_code == 200, r.text
    dry = r.json()
    assert [(t["task_id"], t["state"]) for t in dry["task_instances"]] == [("slow", "running")]
    assert tis(system, "fault_zombie", run_id)["slow"]["state"] == "running"  # dry run
    t0 = time.monotonic()
    body = clear(system, "fault_zombie", run_id, "slow")
    assert body["total_entries"] == 1
    run = system.wait_run("fault_zombie", run_id, timeout=60)
    assert run["state"] == "success", system.logs()
    assert time.monotonic() - t0 < 30  # killed, not slept out (120 s)
    final = tis(system, "fault_zombie", run_id)
    assert (final["slow"]["state"], final["slow"]["try_number"]) == ("success", 2)
    events = run_log(system, run_id)
    assert executions(ledger, run_id) == started_attempts(events)
    assert [e.data.type for e in events if e.data.type == "TaskInstanceCleared"] == [
        "TaskInstanceCleared"
    ]


def test_d_marking_a_running_task_success_kills_it_and_the_mark_stays(system, ledger):
    run_id = trigger(system, "fault_mark")
    executor_running(system, "fault_mark", run_id, "hang")
    t0 = time.monotonic()
    with system.client() as c:
        r = c.patch(
            f"/api/v2/dags/fault_mark/dagRuns/{run_id}/taskInstances/hang",
            json={"new_state": "success"},
        )
    assert r.status_code == 200, r.text
    assert [(t["task_id"], t["state"]) for t in r.json()["task_instances"]] == [("hang", "success")]
    run = system.wait_run("fault_mark", run_id, timeout=60)
    assert run["state"] == "success", system.logs()
    assert time.monotonic() - t0 < 30
    final = tis(system, "fault_mark", run_id)
    assert (final["hang"]["state"], final["hang"]["try_number"]) == ("success", 1)
    assert final["next"]["state"] == "success"
    events = run_log(system, run_id)
    assert executions(ledger, run_id) == started_attempts(events)
    # The killed attempt ended (it did not sleep its two minutes out).
    ends = [e for e in events if e.data.type == "TaskAttemptSucceeded" and e.data.task_id == "hang"]
    assert len(ends) == 1
    assert "TaskInstanceStateSet" in {e.data.type for e in events}


# --------------------------------------------------------------------------- (e)
def cli(system: System, *args: str) -> subprocess.CompletedProcess[str]:
    env = system.env | {"LEDGERFLOW_PASSWORD": system.password}
    return subprocess.run(
        [sys.executable, "-m", "ledgerflow.cli", *args],
        env=env,
        cwd=system.workdir,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_e_a_pool_of_one_slot_never_runs_two_tasks_at_once(system, ledger):
    r = cli(system, "pools", "set", "solo", "1", "--description", "one at a time")
    assert r.returncode == 0, r.stderr

    def pool() -> dict[str, Any] | None:
        with system.client() as c:
            got = c.get("/api/v2/pools/solo")
        return dict(got.json()) if got.status_code == 200 else None

    assert wait_for("the pool in the projection", pool, system)["slots"] == 1
    run_id = trigger(system, "fault_pool")
    # While it runs, the API never shows more than one slot occupied.
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        p = pool()
        assert p is not None and p["occupied_slots"] <= 1, p
        with system.client() as c:
            state = c.get(f"/api/v2/dags/fault_pool/dagRuns/{run_id}").json().get("state")
        if state in ("success", "failed"):
            break
        time.sleep(0.3)
    run = system.wait_run("fault_pool", run_id, timeout=60)
    assert run["state"] == "success", system.logs()
    events = run_log(system, run_id)
    spans = sorted(
        (e.data.start_date, e.data.task_id) for e in events if e.data.type == "TaskAttemptStarted"
    )
    ends = {
        e.data.task_id: e.data.end_date for e in events if e.data.type == "TaskAttemptSucceeded"
    }
    for (_, task_id), (next_start, _) in zip(spans, spans[1:], strict=False):
        assert ends[task_id] <= next_start, f"{task_id} overlapped the next task"
    assert [t for _, t in spans] == ["p2", "p1", "p0"]  # highest priority first
    grants = [e.data for e in events if e.data.type == "PoolSlotsGranted"]
    assert [(g.task_id, g.pool) for g in grants] == [("p2", "solo"), ("p1", "solo"), ("p0", "solo")]
    r = cli(system, "pools", "list", "--output", "json")
    assert r.returncode == 0, r.stderr
    assert {p["name"] for p in json.loads(r.stdout)} >= {"default_pool", "solo"}


# --------------------------------------------------------------------------- (f)
def test_f_scheduler_sigkilled_during_a_wide_run_finishes_and_runs_nothing_twice(system, ledger):
    run_id = trigger(system, "fault_wide")

    def some_done() -> bool:
        states = [ti.get("state") for ti in tis(system, "fault_wide", run_id).values()]
        return states.count("success") >= 5

    wait_for("a few tasks done", some_done, system)
    system.kill("scheduler", signal.SIGKILL)
    time.sleep(1)
    system.start("scheduler")
    run = system.wait_run("fault_wide", run_id, timeout=120)
    assert run["state"] == "success", system.logs()
    events = run_log(system, run_id)
    done = executions(ledger, run_id)
    assert len(done) == 50
    assert collections.Counter((t, n) for _, t, _, n in done).most_common(1)[0][1] == 1
    assert done == started_attempts(events)


# --------------------------------------------------------------------------- (g)
async def write_decided_facts(system: System, dag_id: str, data: Any) -> int:
    """Decide command ``data`` with the core on the run log as it stands, and write what
    a scheduler writes before its cancels: the facts (and the command, not committed).
    Returns how many cancels the decision holds (which nobody sends)."""
    settings = Settings(
        kafka_bootstrap=system.kafka_bootstrap,
        topic_prefix=system.prefix,
        partitions=3,
        work_partitions=3,
    )
    now = datetime.now(UTC)
    async with DagVersionCache(settings) as catalog:
        await catalog.wait_caught_up()
        state = empty(dag_id)
        for env in await read_all(system, f"{system.prefix}.runs"):
            if env.aggregate_key == dag_id:
                state = evolve(state, env)
        command = make_envelope(
            data,
            id=deterministic_id("tests/e2e command", uuid.uuid4().hex),
            source="ledgerflow/api",
            time=now,
            aggregate_key=dag_id,
        )
        decision = decide(
            state, command, now=now, catalog=catalog, zombie_timeout=timedelta(hours=1)
        )
    async with EventProducer(settings, source=SCHEDULER_SOURCE) as producer:
        await producer.send(settings.topics.commands, command)
        for env in decision.events:
            await producer.send(settings.topics.runs, env)
    return len(decision.control)


def test_g_a_cancel_decided_before_a_scheduler_crash_is_sent_after_recovery(system, ledger):
    run_id = trigger(system, "fault_mark")
    executor_running(system, "fault_mark", run_id, "hang")
    system.kill("scheduler", signal.SIGKILL)
    try:
        mark = SetTaskInstanceState(
            dag_id="fault_mark", run_id=run_id, task_id="hang", new_state="success"
        )
        assert asyncio.run(write_decided_facts(system, "fault_mark", mark)) == 1
    finally:
        system.start("scheduler")
    t0 = time.monotonic()
    run = system.wait_run("fault_mark", run_id, timeout=60)
    assert run["state"] == "success", system.logs()

    def hang_ended() -> list[Envelope]:
        return [
            e
            for e in run_log(system, run_id)
            if e.data.type == "TaskAttemptSucceeded" and e.data.task_id == "hang"
        ]

    # Killed by the re-sent cancel and reported as marked, not slept out (120 s).
    wait_for("the marked attempt's end", hang_ended, system, timeout=60)
    assert time.monotonic() - t0 < 60
    events = run_log(system, run_id)
    starts = [
        (e.data.task_id, e.data.try_number) for e in events if e.data.type == "TaskAttemptStarted"
    ]
    assert starts.count(("hang", 1)) == 1 and ("hang", 2) not in starts
    assert executions(ledger, run_id) == started_attempts(events)
