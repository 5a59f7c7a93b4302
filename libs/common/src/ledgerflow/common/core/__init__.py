"""The pure scheduling core: ``evolve`` folds run-log events into a DAG's state and
``decide`` says what follows. No I/O, no clock, no asyncio (HOUSE_STYLE §2)."""

from ledgerflow.common.core.decide import Catalog, Decision, Tick, decide, queued_work, work_item
from ledgerflow.common.core.evolve import SCHEDULER_SOURCE, evolve
from ledgerflow.common.core.state import DagState, Run, TaskInstance, empty

__all__ = [
    "SCHEDULER_SOURCE",
    "Catalog",
    "DagState",
    "Decision",
    "Run",
    "TaskInstance",
    "Tick",
    "decide",
    "empty",
    "evolve",
    "queued_work",
    "work_item",
]
