"""Branching: ``BranchPythonOperator``, ``BaseBranchOperator`` and ``ShortCircuitOperator``.

A task cannot skip other tasks itself here: it reports its choice and the scheduler's
core skips (ADR 0006). A branch sets ``context["ti"].follow_task_ids`` to the task ids
to run (a task group id stands for the group's root tasks); every other direct
downstream is skipped. A short circuit with a falsy condition sets
``context["ti"].short_circuit`` to ``"all"`` (skip everything downstream, whatever its
trigger rule; Airflow's ``ignore_downstream_trigger_rules=True``) or ``"direct"`` (skip
the direct downstreams and let trigger rules decide the rest).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, ClassVar

from ledgerflow.sdk.baseoperator import BaseOperator
from ledgerflow.sdk.exceptions import AirflowException
from ledgerflow.sdk.operators import PythonOperator


class SkipMixin:
    """Airflow's marker for operators that skip downstream tasks."""

    inherits_from_skipmixin: ClassVar[bool] = True
    _is_branch: ClassVar[bool] = True


class BranchMixIn(SkipMixin):
    """``do_branch(context, branches)``: validate the choice and report it."""

    def do_branch(self, context: dict[str, Any], branches_to_execute: Any) -> Any:
        """Report ``branches_to_execute`` (a task id, a group id, a list of them, or None
        for "skip every downstream"); return it, as Airflow does (it is the XCom)."""
        task: BaseOperator = self  # type: ignore[assignment]
        task.log.info("Branch into %s", branches_to_execute)
        follow = expand_branch_ids(task, branches_to_execute)
        context["ti"].follow_task_ids = follow
        return branches_to_execute


def expand_branch_ids(task: BaseOperator, branches: Any) -> list[str]:
    """The chosen task ids, group ids replaced by the groups' root tasks, checked to be
    direct downstreams of ``task``."""
    if branches is None:
        chosen: list[Any] = []
    elif isinstance(branches, str):
        chosen = [branches]
    elif isinstance(branches, Iterable):
        chosen = list(branches)
    else:
        raise AirflowException(
            "'branch_task_ids' must be either None, a task ID, or an Iterable of IDs, but "
            f"got {type(branches).__name__!r}."
        )
    bad_types = [(b, type(b).__name__) for b in chosen if not isinstance(b, str)]
    if bad_types:
        raise AirflowException(
            "'branch_task_ids' expected all task IDs are strings. "
            f"Invalid tasks found: {bad_types}."
        )
    dag = task.dag
    groups = dag.task_group_dict if dag is not None else {}
    downstream = task.downstream_task_ids
    follow: list[str] = []
    for branch in chosen:
        ids = [t.task_id for t in groups[branch].get_roots()] if branch in groups else [branch]
        for tid in ids:
            if dag is not None and tid not in dag.task_dict:
                raise AirflowException(
                    f"branch task {task.task_id!r} chose {tid!r}, which is not a task or "
                    f"task group of DAG {dag.dag_id!r}"
                )
            if tid not in downstream:
                raise AirflowException(
                    f"branch task {task.task_id!r} chose {tid!r}, which is not directly "
                    f"downstream of it (its direct downstreams: {sorted(downstream)})"
                )
            if tid not in follow:
                follow.append(tid)
    return follow


class BaseBranchOperator(BaseOperator, BranchMixIn):
    """Subclass and implement :meth:`choose_branch`; it returns the task id(s) to run."""

    _is_branch: ClassVar[bool] = True

    def choose_branch(self, context: dict[str, Any]) -> str | Iterable[str] | None:
        raise NotImplementedError

    def execute(self, context: dict[str, Any]) -> Any:
        return self.do_branch(context, self.choose_branch(context))


class BranchPythonOperator(BaseBranchOperator, PythonOperator):
    """A ``PythonOperator`` whose callable returns the task id(s) to run next."""

    def choose_branch(self, context: dict[str, Any]) -> Any:
        return PythonOperator.execute(self, context)


class ShortCircuitOperator(PythonOperator, SkipMixin):
    """Run the callable; if the result is falsy, skip what is downstream.

    ``ignore_downstream_trigger_rules=True`` (the default) skips every task downstream;
    ``False`` skips only the direct downstreams and lets trigger rules decide the rest.
    Teardown tasks are never skipped.
    """

    _is_branch: ClassVar[bool] = True

    def __init__(self, *, ignore_downstream_trigger_rules: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ignore_downstream_trigger_rules = ignore_downstream_trigger_rules

    def execute(self, context: dict[str, Any]) -> Any:
        condition = super().execute(context)
        self.log.info("Condition result is %s", condition)
        if condition:
            self.log.info("Proceeding with downstream tasks...")
            return condition
        if not self.downstream_task_ids:
            self.log.info("No downstream tasks; nothing to do.")
            return condition
        mode = "all" if self.ignore_downstream_trigger_rules else "direct"
        self.log.info("Skipping downstream tasks (%s)", mode)
        context["ti"].short_circuit = mode
        return condition
