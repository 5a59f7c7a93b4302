"""NUL characters at the projection boundary: Postgres text and jsonb cannot hold
"\\u0000", so a task's output line, XCom string or error message carrying one must not
stall the projection or cost the event (dead letter); the projection shows U+FFFD."""

from __future__ import annotations

import pytest
from ledgerflow.api.projector_records import without_nul
from ledgerflow.common import events as ev
from ledgerflow.common.kafka_io import EventProducer
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import attempt_key
from test_projector import (  # noqa: F401 - fixtures
    DAG_ID,
    RUN_ID,
    env,
    producer,
    project,
    publish,
    settings,
    snapshot,
    story,
    t,
)

pytestmark = pytest.mark.integration

NUL = "\u0000"


def test_only_real_nul_escapes_are_replaced() -> None:
    assert without_nul(b'{"s": "a\\u0000b"}') == b'{"s": "a\\ufffdb"}'
    assert without_nul(b'{"s": "\\\\u0000"}') == b'{"s": "\\\\u0000"}'  # a backslash, "u0000"
    assert without_nul(b'{"s": "\\\\\\u0000"}') == b'{"s": "\\\\\\ufffd"}'
    assert without_nul(b'{"s": "plain"}') == b'{"s": "plain"}'


async def test_nul_in_logs_xcoms_and_errors_is_projected_as_replacement_chars(
    settings: Settings,  # noqa: F811
    producer: EventProducer,  # noqa: F811
) -> None:
    a = dict(dag_id=DAG_ID, run_id=RUN_ID, task_id="a")
    items = story()[:7]  # the run up to a's first attempt started
    items.append(
        (
            "runs",
            env(
                ev.TaskAttemptFailed(
                    **a, try_number=1, end_date=t(5), error=f"bad{NUL}byte", executor_id="e1"
                ),
                seq=20,
            ),
        )
    )
    items.append(("runs", env(ev.TaskInstanceUpForRetry(**a, try_number=1, retry_at=t(6)), 21)))
    items.append(
        (
            "runs",
            env(ev.TaskInstanceQueued(**a, try_number=2, queue="default", queued_when=t(6)), 22),
        )
    )
    items.append(
        (
            "runs",
            env(
                ev.TaskAttemptStarted(
                    **a, try_number=2, start_date=t(7), hostname="h", executor_id="e2"
                ),
                seq=23,
            ),
        )
    )
    items.append(
        (
            "runs",
            env(
                ev.TaskAttemptSucceeded(
                    **a,
                    try_number=2,
                    end_date=t(8),
                    return_value={f"k{NUL}": [f"v{NUL}"]},
                    xcoms={"other": f"x{NUL}y"},
                    executor_id="e2",
                ),
                seq=24,
            ),
        )
    )
    line = ev.LogLine(ts=t(7), stream="stdout", text=f"out{NUL}put")
    items.append(
        (
            "logs",
            env(
                ev.TaskLogChunk(**a, try_number=2, chunk=0, lines=(line,)),
                key=attempt_key(DAG_ID, RUN_ID, "a", -1, 2),
            ),
        )
    )
    await publish(settings, producer, items)
    await project(settings)  # times out if the projection stalls
    snap = await snapshot(settings)

    assert len(snap["events"]) == len(items)  # none dead-lettered
    [ti] = [r for r in snap["task_instances"] if r["task_id"] == "a"]
    assert (ti["state"], ti["try_number"]) == ("success", 2)
    assert ti["return_value"] == {"k\ufffd": ["v\ufffd"]}
    att1 = next(r for r in snap["task_attempts"] if r["try_number"] == 1)
    assert att1["error"] == "bad\ufffdbyte"
    assert [r["lines"][0]["text"] for r in snap["task_logs"]] == ["out\ufffdput"]
