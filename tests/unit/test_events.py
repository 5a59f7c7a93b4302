"""The event schema: every payload round-trips, the published JSON Schema is current,
messages are readable CloudEvents, malformed input is refused with a reason."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import jsonschema
import pytest
from cloudevents.v1.http import from_json
from ledgerflow.common import events as ev
from ledgerflow.common.dagmodel import SerializedDag, SerializedTask
from ledgerflow.common.schema_export import render

ROOT = Path(__file__).resolve().parents[2]
T = datetime(2026, 11, 24, 1, 2, 3, 123, tzinfo=UTC)
REF = {"dag_id": "d", "run_id": "r", "task_id": "t", "map_index": -1}
DAG = SerializedDag(
    dag_id="d", fileloc="d.py", tasks=(SerializedTask(task_id="t", operator="BashOperator"),)
)

SAMPLES = [
    ev.DagVersionPublished(
        dag_id="d", version_id="v", dag=DAG, source_code="x = 1\n", filename="d.py"
    ),
    ev.DagDeleted(dag_id="d", deleted_by="admin"),
    ev.DagRunDeleted(dag_id="d", run_id="r", deleted_by="admin"),
    ev.DagFileImportFailed(
        filename="d.py", message="invalid syntax", kind="syntax", lineno=3, stack_trace="..."
    ),
    ev.DagFileImported(filename="d.py", dag_ids=("d",)),
    ev.TriggerDagRun(dag_id="d", run_id="r", conf={"k": [1, 2]}, logical_date=T),
    ev.SetDagPaused(dag_id="d", is_paused=True),
    ev.DagPauseChanged(dag_id="d", is_paused=False),
    ev.DagRunQueued(dag_id="d", run_id="r", version_id="v", queued_at=T),
    ev.DagRunStarted(dag_id="d", run_id="r", start_date=T),
    ev.DagRunSucceeded(dag_id="d", run_id="r", end_date=T),
    ev.DagRunFailed(dag_id="d", run_id="r", end_date=T, reason="x"),
    ev.TriggerRejected(dag_id="d", run_id="r", reason="no", command_id="c"),
    ev.TaskInstanceQueued(**REF, try_number=1, queue="default", queued_when=T),
    ev.TaskInstanceUpForRetry(**REF, try_number=1, retry_at=T),
    ev.TaskInstanceFailed(**REF, try_number=2, end_date=T),
    ev.TaskInstanceUpstreamFailed(**REF, at=T),
    ev.TaskInstanceSkipped(**REF, at=T, reason="trigger rule all_success: ..."),
    ev.TaskInstanceFailedByScheduler(**REF, try_number=0, at=T, reason="cannot map over 42"),
    ev.TaskInstanceMapExpanded(**REF, length=3, at=T),
    ev.TaskAttemptStarted(**REF, try_number=1, start_date=T, hostname="h", executor_id="e", pid=7),
    ev.TaskAttemptSucceeded(
        **REF,
        try_number=1,
        end_date=T,
        return_value={"a": [1]},
        executor_id="e",
        xcoms={"k": [1, "x"]},
        follow_task_ids=("t2",),
        short_circuit="direct",
        rendered_fields={"bash_command": "echo 1"},
    ),
    ev.TaskAttemptFailed(**REF, try_number=1, end_date=T, error="E: x", executor_id="e"),
    ev.TaskAttemptSkipped(**REF, try_number=1, end_date=T, reason="skip", executor_id="e"),
    ev.TaskAttemptRescheduled(**REF, try_number=2, end_date=T, reschedule_date=T, executor_id="e"),
    ev.RunTaskAttempt(
        **REF,
        try_number=1,
        version_id="v",
        queue="default",
        xcoms=(ev.XComEntry(task_id="u", map_index=2, key="k", value={"x": 1}),),
        run_type="scheduled",
        data_interval_start=T,
        data_interval_end=T,
        map_length=4,
    ),
    ev.TaskLogChunk(
        **REF, try_number=1, chunk=0, lines=(ev.LogLine(ts=T, stream="stdout", text="hi"),)
    ),
    # issue 4: heartbeats, zombies, cancellation, clear and mark, pools
    ev.TaskAttemptHeartbeat(**REF, try_number=1, executor_id="e", at=T),
    ev.TaskAttemptZombie(
        **REF, try_number=1, executor_id="e", last_heartbeat=T, at=T, reason="silent"
    ),
    ev.CancelTaskAttempt(**REF, try_number=1, reason="marked success", state="success"),
    ev.ClearTaskInstances(
        dag_id="d", run_ids=("r",), task_ids=("t", ("m", 2)), include_downstream=True
    ),
    ev.SetTaskInstanceState(dag_id="d", run_id="r", task_id="t", new_state="success"),
    ev.SetDagRunState(dag_id="d", run_id="r", state="failed", requested_by="admin"),
    ev.TaskInstanceCleared(**REF, try_number=2, at=T, cleared_by="admin"),
    ev.TaskInstanceStateSet(**REF, try_number=1, state="skipped", at=T),
    ev.DagRunStateSet(dag_id="d", run_id="r", state="queued", at=T),
    ev.TaskInstanceScheduled(
        **REF, try_number=1, pool="p", pool_slots=2, priority_weight=7, max_active_tasks=16, at=T
    ),
    ev.PoolSlotsGranted(**REF, try_number=1, pool="p", slots=2, at=T),
    ev.PoolSet(name="p", slots=3, description="three"),
    ev.PoolDeleted(name="p"),
    # issue 6: backfills
    ev.CreateBackfill(
        dag_id="d",
        backfill_id=1,
        from_date=T,
        to_date=T,
        dag_run_conf={"k": 1},
        reprocess_behavior="failed",
        max_active_runs=2,
        requested_by="ann",
    ),
    ev.PauseBackfill(dag_id="d", backfill_id=1),
    ev.UnpauseBackfill(dag_id="d", backfill_id=1),
    ev.CancelBackfill(dag_id="d", backfill_id=1, requested_by="ann"),
    ev.BackfillCreated(
        dag_id="d",
        backfill_id=1,
        from_date=T,
        to_date=T,
        created_at=T,
        runs=(
            ev.BackfillRunPlan(sort_ordinal=1, logical_date=T, action="create", run_id="r"),
            ev.BackfillRunPlan(
                sort_ordinal=2,
                logical_date=T,
                action="skip",
                run_id="s",
                exception_reason="already exists",
            ),
        ),
        command_id="c",
    ),
    ev.BackfillRejected(dag_id="d", backfill_id=1, reason="busy", command_id="c"),
    ev.BackfillRunReprocessed(dag_id="d", backfill_id=1, run_id="r", logical_date=T, at=T),
    ev.BackfillPaused(dag_id="d", backfill_id=1, at=T, by="ann"),
    ev.BackfillUnpaused(dag_id="d", backfill_id=1, at=T),
    ev.BackfillCancelled(dag_id="d", backfill_id=1, at=T),
    ev.BackfillCompleted(dag_id="d", backfill_id=1, at=T, cancelled=True),
    # config facts
    ev.VariableSet(key="k", value="gAAAA-ciphertext", description="d", is_secret=True),
    ev.VariableDeleted(key="k", deleted_by="admin"),
    ev.ConnectionSet(
        conn_id="c", conn_type="postgres", host="h", schema="s", password="gAAAA-ct", port=5432
    ),
    ev.ConnectionDeleted(conn_id="c"),
    # users and API keys
    ev.UserCreated(
        username="ada",
        role="op",
        password_hash="$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA",
        email="ada@example.com",
        by="admin",
    ),
    ev.UserUpdated(username="ada", role="viewer", active=False, by="admin"),
    ev.UserDeleted(username="ada", by="admin"),
    ev.ApiKeyCreated(
        key_id="0123abcd",
        name="ci",
        role="user",
        secret_hash="$argon2id$...",
        created_by="admin",
        expires_at=T,
    ),
    ev.ApiKeyRevoked(key_id="0123abcd", revoked_by="admin"),
    ev.AssetEventEmitted(
        name="x",
        uri="s3://b/x",
        extra={"rows": 3},
        source_aliases=("al",),
        source_dag_id="d",
        source_run_id="r",
        source_task_id="t",
        source_try_number=1,
        timestamp=T,
    ),
    ev.ExternalMessageReceived(
        dag_id="d",
        asset="orders",
        watcher="w",
        topic="ext-orders",
        partition=0,
        offset=41,
        key="k",
        value={"kind": "order"},
        headers={"h": "v"},
        timestamp_ms=1_700_000_000_000,
    ),
    ev.ServiceHeartbeat(
        service="executor",
        instance_id="host:1:default:abcd",
        hostname="host",
        pid=1,
        started_at=T,
        at=T,
        interval_seconds=5.0,
        details={"queue": "default", "slots": 4},
    ),
]


def test_every_payload_type_has_a_sample():
    assert {type(s) for s in SAMPLES} == set(ev.PAYLOAD_TYPES)


@pytest.mark.parametrize("payload", SAMPLES, ids=lambda p: p.type)
def test_round_trip_and_schema_and_cloudevents(payload):
    env = ev.make_envelope(
        payload,
        id="id-1",
        source="ledgerflow/test",
        time=T,
        aggregate_key="d",
        sequence=3,
        correlation_id="r",
        causation_id="c0",
    )
    raw = ev.encode(env)
    assert ev.decode(raw) == env
    doc = json.loads(raw)
    jsonschema.validate(doc, json.loads((ROOT / "docs/events.schema.json").read_text()))
    ce = from_json(raw)  # any CloudEvents library reads it
    assert ce["id"] == "id-1" and ce["type"] == f"io.ledgerflow.{payload.type}"
    assert ce["source"] == "ledgerflow/test" and ce["subject"] == "d"
    assert doc["time"] == "2026-11-24T01:02:03.000123Z"


def test_published_json_schema_is_current():
    assert (ROOT / "docs/events.schema.json").read_text() == render(), (
        "run: uv run python -m ledgerflow.common.schema_export"
    )


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        (b"\xff\xfe", "not JSON"),
        (b"[1]", "expected a JSON object"),
        (b'{"id": "x"}', "source: Field required"),
        (b'{"schemaversion": 99}', "newer than this reader"),
        (None, "no value"),
    ],
)
def test_malformed_messages_are_refused_with_a_reason(raw, fragment):
    with pytest.raises(ev.MalformedMessage, match=fragment):
        ev.decode(raw)


def test_type_attribute_must_match_payload():
    env = ev.make_envelope(SAMPLES[1], id="i", source="s", time=T, aggregate_key="d")
    doc = json.loads(ev.encode(env))
    doc["type"] = "io.ledgerflow.SetDagPaused"
    with pytest.raises(ev.MalformedMessage, match="does not match"):
        ev.decode(json.dumps(doc).encode())


def test_deterministic_ids_are_stable():
    assert ev.deterministic_id("a", 1) == ev.deterministic_id("a", 1) != ev.deterministic_id("a", 2)
