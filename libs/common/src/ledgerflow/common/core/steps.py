"""What is due for one task instance, or for one task's instances in state None.

- :func:`own_step`: an instance whose own state needs a decision: a failed attempt
  (retry or fail), a retry or reschedule coming due (queue the next try, or time the
  sensor out), a branch or short-circuit that succeeded (skip what it did not follow).
- :func:`evaluate_task`: a task whose upstreams changed: its trigger rule (plus the
  indirect setups) says run, wait, skip or upstream_failed for every instance still in
  state None; a mapped task is expanded first; ``depends_on_past`` may hold it back.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TypedDict

from ledgerflow.common.core.mapping import map_length
from ledgerflow.common.core.outbox import Outbox
from ledgerflow.common.core.retry import retry_delay
from ledgerflow.common.core.state import Run, TaskInstance
from ledgerflow.common.core.topology import CountPlan, Topology, topology
from ledgerflow.common.core.trigger_rules import (
    Outcome,
    UpstreamCounts,
    combine,
    evaluate,
    evaluate_setups,
)
from ledgerflow.common.core.work import ancestor_xcoms, work_item
from ledgerflow.common.dagmodel import SerializedTask
from ledgerflow.common.events import (
    TaskAttemptZombie,
    TaskInstanceFailed,
    TaskInstanceFailedByScheduler,
    TaskInstanceMapExpanded,
    TaskInstanceQueued,
    TaskInstanceScheduled,
    TaskInstanceSkipped,
    TaskInstanceUpForRetry,
    TaskInstanceUpstreamFailed,
)


class _Ref(TypedDict):
    dag_id: str
    run_id: str
    task_id: str
    map_index: int


def _ref(run: Run, task_id: str, map_index: int) -> _Ref:
    return {"dag_id": run.dag_id, "run_id": run.run_id, "task_id": task_id, "map_index": map_index}


def _ids(run: Run, task_id: str, map_index: int) -> tuple[object, ...]:
    return (run.dag_id, run.run_id, task_id, map_index)


# --------------------------------------------------------------------------- own state
def own_step(out: Outbox, run_id: str, topo: Topology, ti: TaskInstance) -> None:
    """Decide what an instance's own state calls for."""
    task = topo.tasks.get(ti.task_id)
    if task is None:
        return
    run = out.state.runs[run_id]
    if ti.state == "running":
        _maybe_zombie(out, run, ti)
    elif ti.state == "attempt_failed":
        _retry_or_fail(out, run, task, ti)
    elif ti.state == "scheduled":
        if ti.granted:
            queue(out, run_id, topo, ti.task_id, ti.map_index)
    elif ti.state == "up_for_retry":
        if ti.retry_at is not None and ti.retry_at <= out.now:
            queue(out, run_id, topo, ti.task_id, ti.map_index)
    elif ti.state == "up_for_reschedule":
        _reschedule(out, run, topo, task, ti)
    elif ti.state == "success":
        if ti.follow_task_ids is not None:
            _skip_unfollowed(out, run_id, topo, ti)
        if ti.short_circuit is not None:
            _short_circuit(out, run_id, topo, ti)


def _maybe_zombie(out: Outbox, run: Run, ti: TaskInstance) -> None:
    """Airflow's zombie detection: a running attempt nobody heard of for the zombie
    timeout is failed (and retried per its retries, on any executor)."""
    last = ti.last_seen
    if last is None or out.now - last < out.zombie_timeout:
        return
    silent = (out.now - last).total_seconds()
    reason = (
        f"executor {ti.executor_id or 'unknown'} stopped heartbeating at {last.isoformat()} "
        f"({silent:g}s ago; the zombie timeout is {out.zombie_timeout.total_seconds():g}s)"
    )
    out.emit(
        TaskAttemptZombie(
            **_ref(run, ti.task_id, ti.map_index),
            try_number=ti.try_number,
            executor_id=ti.executor_id,
            last_heartbeat=last,
            at=out.now,
            reason=reason,
        ),
        key=("Zombie", *_ids(run, ti.task_id, ti.map_index), ti.try_number),
        correlation_id=run.run_id,
    )
    out.cancel(run, ti, state="zombie", reason=reason)


def _retry_or_fail(out: Outbox, run: Run, task: SerializedTask, ti: TaskInstance) -> None:
    ref = _ref(run, ti.task_id, ti.map_index)
    ids = _ids(run, ti.task_id, ti.map_index)
    attempts = ti.attempts  # reschedules (and tries before a clear) do not use up retries
    if ti.retryable and attempts <= task.retries:
        delay = retry_delay(
            task, dag_id=run.dag_id, logical_date=run.logical_date, try_number=attempts
        )
        out.emit(
            TaskInstanceUpForRetry(
                **ref, try_number=ti.try_number, retry_at=(ti.end_date or out.now) + delay
            ),
            key=("UpForRetry", *ids, ti.try_number),
            correlation_id=run.run_id,
        )
    else:
        out.emit(
            TaskInstanceFailed(**ref, try_number=ti.try_number, end_date=ti.end_date or out.now),
            key=("TaskFailed", *ids, ti.try_number),
            correlation_id=run.run_id,
        )


def sensor_timeout(task: SerializedTask) -> timedelta | None:
    """How long after its first poke a reschedule-mode sensor gives up (None if the task
    is not one)."""
    if task.sensor is None or task.sensor.mode != "reschedule":
        return None
    return timedelta(seconds=task.sensor.timeout_seconds)


def _reschedule(
    out: Outbox, run: Run, topo: Topology, task: SerializedTask, ti: TaskInstance
) -> None:
    timeout = sensor_timeout(task)
    started = ti.first_poke_at
    if timeout is not None and started is not None and out.now - started >= timeout:
        assert task.sensor is not None
        waited = (out.now - started).total_seconds()
        reason = (
            f"sensor timed out: {waited:g}s since its first poke at {started.isoformat()}, "
            f"timeout is {task.sensor.timeout_seconds:g}s"
        )
        if task.sensor.soft_fail:
            _skip(out, run, ti.task_id, ti.map_index, f"{reason} (soft_fail)")
        else:
            out.emit(
                TaskInstanceFailedByScheduler(
                    **_ref(run, ti.task_id, ti.map_index),
                    try_number=ti.try_number,
                    at=out.now,
                    reason=reason,
                ),
                key=("FailedByScheduler", *_ids(run, ti.task_id, ti.map_index)),
                correlation_id=run.run_id,
            )
        return
    if ti.reschedule_at is not None and ti.reschedule_at <= out.now:
        queue(out, run.run_id, topo, ti.task_id, ti.map_index)


def _skip(out: Outbox, run: Run, task_id: str, map_index: int, reason: str) -> None:
    out.emit(
        TaskInstanceSkipped(**_ref(run, task_id, map_index), at=out.now, reason=reason),
        key=("Skipped", *_ids(run, task_id, map_index)),
        correlation_id=run.run_id,
    )


def _skip_pending(out: Outbox, run_id: str, task_id: str, from_map_index: int, reason: str) -> None:
    """Skip the instances of ``task_id`` that have not started: all of them when the
    skipping task is unmapped, else only the one with the same map index (Airflow looks
    up the downstream instance by the skipping instance's map index)."""
    run = out.state.runs[run_id]
    indexes = run.map_indexes(task_id) if from_map_index < 0 else (from_map_index,)
    for i in indexes:
        if i in run.map_indexes(task_id) and run.ti(task_id, i).state is None:
            _skip(out, out.state.runs[run_id], task_id, i, reason)


def _skip_unfollowed(out: Outbox, run_id: str, topo: Topology, ti: TaskInstance) -> None:
    """Airflow's ``skip_all_except``: direct downstreams that are neither followed nor
    downstream of a followed task are skipped, whatever their trigger rules."""
    followed = {t for t in ti.follow_task_ids or () if t in topo.tasks}
    for t in list(followed):
        followed |= topo.descendants(t)
    for down in topo.downstreams[ti.task_id]:
        if down not in followed:
            reason = f"branch {ti.task_id} did not follow {down}"
            _skip_pending(out, run_id, down, ti.map_index, reason)


def _short_circuit(out: Outbox, run_id: str, topo: Topology, ti: TaskInstance) -> None:
    """``all``: every task downstream is skipped, ignoring trigger rules; ``direct``: the
    direct downstreams only (trigger rules decide the rest). Teardowns still run, as in
    Airflow's ``ShortCircuitOperator``."""
    if ti.short_circuit == "all":
        targets = topo.sorted(topo.descendants(ti.task_id))
    else:
        targets = list(topo.downstreams[ti.task_id])
    for down in targets:
        if not topo.tasks[down].is_teardown:
            reason = f"short-circuited by {ti.task_id} ({ti.short_circuit})"
            _skip_pending(out, run_id, down, ti.map_index, reason)


# --------------------------------------------------------------------------- trigger rules
def _sum(run: Run, task_ids: tuple[str, ...]) -> tuple[int, int, int, int]:
    """Finished counts over every instance of ``task_ids`` (summed in C: a join may have
    thousands of upstreams)."""
    found = [c for c in map(run.counts.get, task_ids) if c is not None]
    if not found:
        return (0, 0, 0, 0)
    s, k, f, u = map(sum, zip(*found, strict=True))
    return (s, k, f, u)


def _instances(run: Run, topo: Topology, task_ids: tuple[str, ...]) -> int:
    lengths = run.map_lengths
    n = len(task_ids)
    if topo.mapped and lengths:
        n += sum((lengths.get(t) or 1) - 1 for t in task_ids if t in topo.mapped)
    return n


def _counts(
    run: Run, topo: Topology, task_ids: tuple[str, ...], *, plan: CountPlan | None = None
) -> UpstreamCounts:
    """Airflow's upstream counts over every instance of ``task_ids`` (or, with a
    ``plan`` that negates, over every task but ``plan.tasks``)."""
    if plan is not None and plan.negate:
        s, k, f, u = (t - o for t, o in zip(run.totals, _sum(run, plan.tasks), strict=True))
        all_instances = len(topo.tasks) + sum(n - 1 for n in run.map_lengths.values() if n > 0)
        upstream = all_instances - _instances(run, topo, plan.tasks)
        setups = plan.setups
    else:
        s, k, f, u = _sum(run, task_ids)
        upstream = _instances(run, topo, task_ids)
        setups = plan.setups if plan is not None else tuple(t for t in task_ids if t in topo.setups)
    upstream_setup = success_setup = skipped_setup = 0
    for t in setups:
        upstream_setup += run.map_lengths.get(t) or 1
        c = run.counts.get(t)
        if c is not None:
            success_setup += c.success
            skipped_setup += c.skipped
    return UpstreamCounts(
        upstream=upstream,
        success=s,
        skipped=k,
        failed=f,
        upstream_failed=u,
        upstream_setup=upstream_setup,
        success_setup=success_setup,
        skipped_setup=skipped_setup,
    )


def trigger_outcome(run: Run, topo: Topology, task: SerializedTask) -> Outcome:
    """The trigger rule's outcome for ``task``'s instances (they share their upstreams)."""
    ups = topo.upstreams[task.task_id]
    if not ups or task.trigger_rule == "always":
        direct = evaluate(task.trigger_rule, UpstreamCounts(0), has_upstreams=False)
    else:
        direct = evaluate(
            task.trigger_rule, _counts(run, topo, ups, plan=topo.count_plan(task.task_id))
        )
    setups = topo.indirect_setups(task.task_id)
    if not setups:
        return direct
    return combine(evaluate_setups(_counts(run, topo, setups)), direct)


def evaluate_task(out: Outbox, run_id: str, topo: Topology, task_id: str) -> None:
    """Settle what can be settled for ``task_id``'s instances in state None."""
    run = out.state.runs[run_id]
    task = topo.tasks[task_id]
    pending = [i for i in run.map_indexes(task_id) if _pending(run, task_id, i)]
    if not pending:
        return
    if task.mapped is not None and run.map_lengths.get(task_id) == 0:
        _skip(out, run, task_id, -1, "mapped over zero values")
        return
    outcome = trigger_outcome(run, topo, task)
    if outcome.verdict == "wait":
        return
    if task.mapped is not None and task_id not in run.map_lengths:
        _settle_placeholder(out, run, topo, task, outcome)
        return
    for i in pending:
        run = out.state.runs[run_id]
        if outcome.verdict == "skipped":
            _skip(out, run, task_id, i, outcome.reason)
        elif outcome.verdict == "upstream_failed":
            _upstream_failed(out, run, task_id, i)
        elif past_allows(out, run, task, i):
            queue(out, run_id, topo, task_id, i)


def _pending(run: Run, task_id: str, map_index: int) -> bool:
    ti = run.tasks.get((task_id, map_index))
    return ti is None or ti.state is None


def _upstream_failed(out: Outbox, run: Run, task_id: str, map_index: int) -> None:
    out.emit(
        TaskInstanceUpstreamFailed(**_ref(run, task_id, map_index), at=out.now),
        key=("UpstreamFailed", *_ids(run, task_id, map_index)),
        correlation_id=run.run_id,
    )


def _settle_placeholder(
    out: Outbox, run: Run, topo: Topology, task: SerializedTask, outcome: Outcome
) -> None:
    """A mapped task that is not expanded yet: its trigger rule first (as Airflow
    evaluates the unexpanded instance), then its length once every source is known."""
    task_id = task.task_id
    if outcome.verdict == "skipped":
        _skip(out, run, task_id, -1, outcome.reason)
        return
    if outcome.verdict == "upstream_failed":
        _upstream_failed(out, run, task_id, -1)
        return
    assert task.mapped is not None
    m = map_length(task.mapped, run, topo)
    if m.verdict == "wait":
        return
    if m.verdict == "missing":
        _upstream_failed(out, run, task_id, -1)
    elif m.verdict == "invalid":
        out.emit(
            TaskInstanceFailedByScheduler(
                **_ref(run, task_id, -1), try_number=0, at=out.now, reason=m.reason
            ),
            key=("FailedByScheduler", *_ids(run, task_id, -1)),
            correlation_id=run.run_id,
        )
    else:
        out.emit(
            TaskInstanceMapExpanded(**_ref(run, task_id, -1), length=m.length, at=out.now),
            key=("MapExpanded", run.dag_id, run.run_id, task_id),
            correlation_id=run.run_id,
        )
        if m.length == 0:
            _skip(out, out.state.runs[run.run_id], task_id, -1, "mapped over zero values")


# --------------------------------------------------------------------------- depends_on_past
def previous_run(out: Outbox, run: Run) -> Run | None:
    """The run before ``run`` (by logical date, then queue time), finished or not."""
    if run.run_id not in out.previous_runs:
        key = run.order_key
        earlier = [r for r in out.state.runs.values() if r.order_key < key]
        out.previous_runs[run.run_id] = max(earlier, key=lambda r: r.order_key, default=None)
    prev = out.previous_runs[run.run_id]
    return out.state.runs[prev.run_id] if prev is not None else None


def past_allows(out: Outbox, run: Run, task: SerializedTask, map_index: int) -> bool:
    """Airflow's ``PrevDagrunDep``: with ``depends_on_past`` the same task instance of
    the previous run must have succeeded or been skipped; with ``wait_for_downstream``
    its direct downstreams too."""
    if not (task.depends_on_past or task.wait_for_downstream):
        return True
    prev = previous_run(out, run)
    if prev is None:
        return True  # the first run of the DAG
    prev_dag = out.catalog.get(prev.version_id)
    prev_topo = topology(prev_dag) if prev_dag is not None else None
    if (
        prev_topo is None
        or task.task_id not in prev_topo.tasks
        or map_index not in prev.map_indexes(task.task_id)
    ):
        # The previous run has no such instance: only the first one ever may go.
        return task.ignore_first_depends_on_past and not _ran_before(out, run, task.task_id)
    if prev.ti(task.task_id, map_index).state not in ("success", "skipped"):
        return False
    if task.wait_for_downstream:
        for down in prev_topo.downstreams[task.task_id]:
            c = prev.counts.get(down)
            if c is None or c.success + c.skipped < prev.instance_count(down):
                return False
    return True


def _ran_before(out: Outbox, run: Run, task_id: str) -> bool:
    key = run.order_key
    for r in out.state.runs.values():
        if r.order_key < key:
            dag = out.catalog.get(r.version_id)
            if dag is not None and task_id in topology(dag).tasks:
                return True
    return False


# --------------------------------------------------------------------------- queueing
def queue(out: Outbox, run_id: str, topo: Topology, task_id: str, map_index: int) -> None:
    """Queue the next attempt and write its work item right after the fact. With pools
    enforced (ADR 0011) an instance is first ``scheduled`` and queued only once the pool
    arbiter grants it its slots."""
    run = out.state.runs[run_id]
    ti = run.ti(task_id, map_index)
    task = topo.tasks[task_id]
    try_number = ti.try_number + 1
    if out.pools and not (ti.state == "scheduled" and ti.granted):
        if ti.state != "scheduled":
            _schedule(out, run, topo, task, map_index, try_number)
        return
    queued = out.emit(
        TaskInstanceQueued(
            **_ref(run, task_id, map_index),
            try_number=try_number,
            queue=task.queue,
            pool=task.pool,
            priority_weight=task.priority_weight,
            queued_when=out.now,
        ),
        key=("TaskInstanceQueued", *_ids(run, task_id, map_index), try_number),
        correlation_id=run.run_id,
    )
    run = out.state.runs[run_id]
    cache_key = (run_id, task_id)
    xcoms = out.xcom_cache.get(cache_key)
    if xcoms is None:
        xcoms = out.xcom_cache[cache_key] = ancestor_xcoms(run, topo, task_id)
    out.work.append(
        work_item(
            run,
            topo.dag,
            task_id,
            map_index,
            try_number,
            now=out.now,
            causation_id=queued.id,
            xcoms=xcoms,
        )
    )


def _schedule(
    out: Outbox, run: Run, topo: Topology, task: SerializedTask, map_index: int, try_number: int
) -> None:
    """Ask the pool arbiter for the attempt's slots, stating every limit it must respect."""
    dag = topo.dag
    out.emit(
        TaskInstanceScheduled(
            **_ref(run, task.task_id, map_index),
            try_number=try_number,
            pool=task.pool,
            pool_slots=task.pool_slots,
            priority_weight=topo.priority_weight(task.task_id),
            max_active_tasks=dag.max_active_tasks,
            max_active_tis_per_dag=task.max_active_tis_per_dag,
            max_active_tis_per_dagrun=task.max_active_tis_per_dagrun,
            at=out.now,
        ),
        key=("TaskInstanceScheduled", *_ids(run, task.task_id, map_index), try_number),
        correlation_id=run.run_id,
    )
