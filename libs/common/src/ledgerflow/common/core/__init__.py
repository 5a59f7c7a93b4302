"""The pure scheduling core: ``evolve`` folds run-log events into a DAG's state and
``decide`` says what follows. No I/O, no clock, no asyncio (HOUSE_STYLE §2).

Modules: ``state`` (frozen state), ``evolve`` (the fold), ``decide`` (entry point and
run lifecycle), ``outbox`` (emission and the dirty set), ``steps`` (per task instance),
``trigger_rules``, ``mapping``, ``retry``, ``topology`` (derived DAG structure) and
``work`` (work items).
"""

from ledgerflow.common.core.decide import Decision, Tick, decide, next_wake
from ledgerflow.common.core.evolve import SCHEDULER_SOURCE, evolve
from ledgerflow.common.core.state import DagState, Run, TaskInstance, TIKey, empty
from ledgerflow.common.core.work import Catalog, ancestor_xcoms, queued_work, work_item

__all__ = [
    "SCHEDULER_SOURCE",
    "Catalog",
    "DagState",
    "Decision",
    "Run",
    "TIKey",
    "TaskInstance",
    "Tick",
    "ancestor_xcoms",
    "decide",
    "empty",
    "evolve",
    "next_wake",
    "queued_work",
    "work_item",
]
