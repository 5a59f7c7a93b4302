"""Cancels that are due again after a scheduler restart (docs/adr/0010). Pure, no I/O.

A ``CancelTaskAttempt`` goes to the control topic only after the facts that decided it
(a clear, a mark, a zombie verdict, a run timeout) are acknowledged, so a scheduler that
dies in between leaves the facts in the run log and the cancel unsent: the attempt would
run on to its end. Replaying the run log, :class:`OpenAttempts` remembers every attempt
that was queued and has not reported an end; :meth:`OpenAttempts.due` then names those
the replayed state has moved past (the instance is at a later try, or no longer queued
or running), whose cancel is due. Cancel ids are derived from the attempt, so a cancel
sent before the crash and again now is one cancel to every reader, and an executor
ignores a cancel for an attempt it does not run (it only remembers it).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from ledgerflow.common.core.evolve import SCHEDULER_SOURCE
from ledgerflow.common.core.state import DagState
from ledgerflow.common.events import (
    CancelTaskAttempt,
    Envelope,
    TaskAttemptFailed,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptSucceeded,
    TaskInstanceQueued,
    deterministic_id,
    make_envelope,
)

Attempt = tuple[str, str, str, int, int]
"""(dag_id, run_id, task_id, map_index, try_number)"""

_ENDS = (TaskAttemptSucceeded, TaskAttemptFailed, TaskAttemptSkipped, TaskAttemptRescheduled)


class OpenAttempts:
    """Attempts queued and not yet ended by a report, folded from the run log."""

    def __init__(self) -> None:
        self._open: dict[Attempt, None] = {}

    def note(self, env: Envelope) -> None:
        data = env.data
        if isinstance(data, (TaskInstanceQueued, *_ENDS)):
            attempt = (data.dag_id, data.run_id, data.task_id, data.map_index, data.try_number)
            if isinstance(data, TaskInstanceQueued):
                self._open[attempt] = None
            else:
                self._open.pop(attempt, None)

    def __len__(self) -> int:
        return len(self._open)

    def forget(self, dag_ids: set[str]) -> None:
        for attempt in [a for a in self._open if a[0] in dag_ids]:
            del self._open[attempt]

    def overtaken(self, state: DagState) -> Iterator[tuple[Attempt, str]]:
        """The open attempts of ``state``'s DAG that the state has moved past, each
        with the state the executor should report it as (see ``AttemptHandle``)."""
        for attempt in list(self._open):
            dag_id, run_id, task_id, map_index, try_number = attempt
            if dag_id != state.dag_id:
                continue
            run = state.runs.get(run_id)
            if run is None:
                continue
            ti = run.ti(task_id, map_index)
            if ti.try_number == try_number and ti.state in ("queued", "running"):
                continue  # the live attempt: nothing to cancel
            if ti.try_number == try_number and ti.state in ("success", "skipped"):
                yield attempt, ti.state  # marked so while it ran
            elif ti.try_number == try_number and ti.state is not None:
                yield attempt, "zombie" if ti.state == "up_for_retry" else "failed"
            else:
                yield attempt, "cleared"

    def due(self, state: DagState, *, now: datetime) -> list[Envelope]:
        """The ``CancelTaskAttempt`` messages to (re-)send for ``state``'s DAG."""
        out = []
        for attempt, cancel_state in self.overtaken(state):
            dag_id, run_id, task_id, map_index, try_number = attempt
            out.append(
                make_envelope(
                    CancelTaskAttempt(
                        dag_id=dag_id,
                        run_id=run_id,
                        task_id=task_id,
                        map_index=map_index,
                        try_number=try_number,
                        reason=(
                            f"attempt {try_number} was overtaken ({cancel_state}) while it "
                            f"may still run; cancel re-sent after a scheduler restart"
                        ),
                        state=cancel_state,
                    ),
                    id=deterministic_id("CancelTaskAttempt", *attempt),
                    source=SCHEDULER_SOURCE,
                    time=now,
                    aggregate_key=dag_id,
                    correlation_id=run_id,
                )
            )
        return out
