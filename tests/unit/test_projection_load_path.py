"""Pieces of the projector's load path that must not change what is stored or measured:
log lines go to ``task_logs`` as pydantic's JSON (the same document as dumping each line;
that the batched and per-event paths store the same rows is ``test_projector_rebuild``),
the projector process tunes its garbage collector, and the projector benchmark's
pre-built envelopes are envelopes the projector accepts."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime
from types import SimpleNamespace

from ledgerflow.api.projection_tasks import _INSERT_LOG_CHUNK, _lines_json, _plan_log_chunk
from ledgerflow.api.projector_records import decode
from ledgerflow.common import events as ev

from tests.bench.projector import DAG_ID, _prepared


def test_log_lines_json_is_the_document_of_the_dumped_lines() -> None:
    at = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    lines = (
        ev.LogLine(ts=at, stream="stdout", text='plain, "quoted", back\\slash, é, \ufffd'),
        ev.LogLine(ts=at, stream="stderr", text=""),
    )
    expected = [line.model_dump(mode="json") for line in lines]
    assert json.loads(_lines_json(lines)) == expected
    # A string JSON cannot carry (a lone surrogate) is written as before: json.dumps,
    # whose escape Postgres refuses, so the event goes to the per-event path and DLQ.
    odd = (ev.LogLine(ts=at, stream="stdout", text="a\ud800b"),)
    assert _lines_json(odd) == json.dumps([line.model_dump(mode="json") for line in odd])


def test_log_chunk_plan_passes_the_lines_as_json_text() -> None:
    chunk = ev.TaskLogChunk(
        dag_id="d",
        run_id="r",
        task_id="t",
        try_number=1,
        chunk=0,
        lines=(ev.LogLine(ts=datetime.now(UTC), stream="stdout", text="hi"),),
    )
    env = ev.make_envelope(chunk, id="e1", source="test", time=datetime.now(UTC), aggregate_key="k")
    [(sql, args)] = _plan_log_chunk(env)
    assert sql == _INSERT_LOG_CHUNK and "$7::text::jsonb" in sql
    assert json.loads(args[-1]) == [chunk.lines[0].model_dump(mode="json")]


def test_bench_envelopes_decode_as_the_projector_decodes_them() -> None:
    prepared = _prepared(300)
    at = datetime.now(UTC).isoformat().encode()
    kinds = set()
    for p in prepared:
        record = SimpleNamespace(value=p.head + at + p.tail, headers=p.headers)
        envelope = decode(record)
        kinds.add(type(envelope.data).__name__)
        assert envelope.time.isoformat().encode() == at
        assert dict(p.headers)["ce_id"] == envelope.id.encode()
        assert envelope.type.encode() == dict(p.headers)["ce_type"]
    assert len({p.head for p in prepared}) == len(prepared)  # every event id is fresh
    assert {"TaskLogChunk", "TaskAttemptSucceeded", "DagRunQueued"} <= kinds
    assert {p.key for p in prepared if p.kind == "runs"} == {DAG_ID.encode()}


def test_a_service_process_freezes_start_up_objects_and_collects_less_often() -> None:
    # In a child interpreter: tune_gc changes the collector of the whole process.
    code = (
        "import gc\n"
        "import ledgerflow.api.projector\n"
        "from ledgerflow.common.gc_tuning import GC_THRESHOLDS, tune_gc\n"
        "tune_gc()\n"
        "assert gc.get_threshold() == GC_THRESHOLDS, gc.get_threshold()\n"
        "assert gc.get_freeze_count() > 10_000, gc.get_freeze_count()\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
