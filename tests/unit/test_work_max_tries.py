"""Work items carry the runner protocol's ``max_tries`` (ADR 0006), counting the tries
that do not use up a retry, so that after a clear (or reschedules) the runner calls
``on_retry_callback`` exactly when the scheduler will retry, not ``on_failure_callback``."""

from __future__ import annotations

from typing import Any

from ledgerflow.common.events import (
    ClearTaskInstances,
    DagVersionPublished,
    RunTaskAttempt,
    deterministic_id,
    make_envelope,
)
from ledgerflow.executor.attempt import runner_payload

from .core_harness import Driver, make_dag


def clear_a(d: Driver, name: str) -> None:
    data = ClearTaskInstances(dag_id="d", run_ids=("r1",), task_ids=("a",))
    d.feed(
        make_envelope(
            data,
            id=deterministic_id("cmd", name),
            source="ledgerflow/api",
            time=d.now,
            aggregate_key="d",
        )
    )


def retried(d: Driver, item: RunTaskAttempt) -> bool:
    """Whether the runner's rule (``try_number < max_tries``) says the attempt retries."""
    assert item.max_tries is not None
    return item.try_number < item.max_tries


def test_a_fresh_task_has_retries_plus_one():
    d = Driver.of(make_dag({"a": []}, retries=2, retry_delay=0))
    d.trigger()
    assert d.work[("a", -1)].max_tries == 3


def test_after_a_clear_the_runner_and_the_scheduler_agree_on_retrying():
    d = Driver.of(make_dag({"a": []}, retries=1, retry_delay=0))
    d.trigger()
    d.fail("a")
    d.fail("a")  # try 2: retries used up
    assert d.ti("a").state == "failed"
    clear_a(d, "c1")
    item = d.work[("a", -1)]
    assert (item.try_number, item.max_tries) == (3, 4)
    assert retried(d, item)  # the runner calls on_retry_callback ...
    d.fail("a")
    assert d.ti("a").state == "queued"  # ... and the scheduler retries
    item = d.work[("a", -1)]
    assert item.try_number == 4 and not retried(d, item)
    d.fail("a")
    assert d.ti("a").state == "failed"


def test_reschedules_do_not_use_up_tries():
    d = Driver.of(make_dag({"a": []}, retries=0))
    d.trigger()
    d.reschedule("a", seconds=0)
    d.later(seconds=1).tick()
    item = d.work[("a", -1)]
    assert (item.try_number, item.max_tries) == (2, 2)


def payload(item: RunTaskAttempt, retries: int) -> dict[str, Any]:
    dag = make_dag({"a": []}, retries=retries)
    version = DagVersionPublished(
        dag_id="d",
        version_id=item.version_id,
        filename="d.py",
        source_code="",
        dag=dag,
    )
    return runner_payload(item, version, xcom_max_bytes=1000)


def test_the_executor_passes_the_work_items_max_tries_to_the_runner():
    base = dict(dag_id="d", run_id="r1", task_id="a", try_number=3, version_id="v", queue="q")
    assert payload(RunTaskAttempt(**base, max_tries=4), retries=1)["max_tries"] == 4
    assert payload(RunTaskAttempt(**base), retries=1)["max_tries"] == 2  # older schedulers
