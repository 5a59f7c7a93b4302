"""Trigger rules, evaluated as Airflow 3's ``TriggerRuleDep`` does with
``flag_upstream_failed=True`` (the scheduler's setting).

Airflow evaluates a rule in two steps: first it may *change the state* of a task
instance that can never run (to ``skipped`` or ``upstream_failed``), then it says
whether the rule *passes*. Both steps are counts over the finished upstream task
instances; a mapped upstream counts once per map index (once, as its placeholder, until
it is expanded). :func:`evaluate` returns the combined outcome.

Indirect setups (setups upstream of an upstream whose teardown is downstream of the
task) add a constraint first (:func:`evaluate_setups`): if one of them failed the task
is ``upstream_failed``, if one was skipped it is skipped, and it waits until all
succeeded. Teardowns have no such constraint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from ledgerflow.common.dagmodel import TriggerRule

Verdict = Literal["run", "wait", "skipped", "upstream_failed"]


@dataclass(frozen=True, slots=True)
class Outcome:
    """What a trigger rule says about a task instance in state None, and why."""

    verdict: Verdict
    reason: str = ""


RUN = Outcome("run")


@dataclass(frozen=True, slots=True)
class UpstreamCounts:
    """Airflow's ``_UpstreamTIStates`` plus the number of upstream task instances.

    ``upstream`` counts instances (a mapped upstream with 3 indexes counts 3); the state
    counts are over finished instances; ``*_setup`` count only instances of setup tasks.
    """

    upstream: int
    success: int = 0
    skipped: int = 0
    failed: int = 0
    upstream_failed: int = 0
    upstream_setup: int = 0
    success_setup: int = 0
    skipped_setup: int = 0

    @property
    def done(self) -> int:
        return self.success + self.skipped + self.failed + self.upstream_failed

    def describe(self) -> str:
        return (
            f"{self.upstream} upstream: {self.success} success, {self.skipped} skipped, "
            f"{self.failed} failed, {self.upstream_failed} upstream_failed, "
            f"{self.upstream - self.done} not done"
        )


def evaluate(rule: TriggerRule, c: UpstreamCounts, *, has_upstreams: bool = True) -> Outcome:
    """The outcome of ``rule`` for a task instance whose direct upstreams are ``c``."""
    if not has_upstreams or rule == "always":
        return RUN
    new = _state_change(rule, c)
    if new is not None:
        return Outcome(new, f"trigger rule {rule}: {c.describe()}")
    return RUN if _passes(rule, c) else Outcome("wait")


def _state_change(rule: TriggerRule, c: UpstreamCounts) -> Verdict | None:
    """Airflow's ``if dep_context.flag_upstream_failed:`` block."""
    upstream_done = c.done >= c.upstream
    failures = c.failed or c.upstream_failed
    match rule:
        case "all_success":
            if failures:
                return "upstream_failed"
            if c.skipped:
                return "skipped"
        case "all_failed":
            if c.success or c.skipped:
                return "skipped"
        case "one_success":
            if upstream_done and c.done == c.skipped:
                return "skipped"
            if upstream_done and c.success <= 0:
                return "upstream_failed"
        case "one_failed":
            if upstream_done and not failures:
                return "skipped"
        case "one_done":
            if upstream_done and not (c.failed or c.success):
                return "skipped"
        case "none_failed":
            if failures:
                return "upstream_failed"
        case "none_failed_min_one_success":
            if failures:
                return "upstream_failed"
            if c.skipped == c.upstream:
                return "skipped"
        case "none_skipped":
            if c.skipped:
                return "skipped"
        case "all_skipped":
            if c.success or c.failed or c.upstream_failed:
                return "skipped"
        case "all_done_min_one_success":
            non_skipped_done = c.success + c.failed + c.upstream_failed
            if c.skipped > 0:
                return "skipped"
            if non_skipped_done >= c.upstream - c.skipped and c.success == 0:
                return "upstream_failed"
        case "all_done_setup_success":
            if upstream_done and c.upstream_setup and c.skipped_setup >= c.upstream_setup:
                return "skipped"
            if upstream_done and c.upstream_setup and c.success_setup == 0:
                return "upstream_failed"
    return None


def _passes(rule: TriggerRule, c: UpstreamCounts) -> bool:
    """Airflow's second block: does the rule pass (no failing status)?"""
    upstream_done = c.done >= c.upstream
    match rule:
        case "one_success":
            return c.success > 0
        case "one_failed":
            return bool(c.failed or c.upstream_failed)
        case "one_done":
            return c.success + c.failed > 0
        case "all_success":
            return c.upstream - c.success <= 0
        case "all_failed":
            return c.upstream - c.failed - c.upstream_failed <= 0
        case "all_done":
            return upstream_done
        case "none_failed" | "none_failed_min_one_success":
            return c.upstream - c.success - c.skipped <= 0
        case "none_skipped":
            return upstream_done and c.skipped == 0
        case "all_skipped":
            return c.upstream - c.skipped <= 0
        case "all_done_setup_success":
            return upstream_done and not (c.upstream_setup and not c.success_setup)
        case "all_done_min_one_success":
            non_skipped_done = c.success + c.failed + c.upstream_failed
            return c.skipped == 0 and non_skipped_done >= c.upstream - c.skipped and c.success > 0
        case "always":
            return True
    raise AssertionError(f"no strategy to evaluate trigger rule {rule!r}")


def evaluate_setups(c: UpstreamCounts) -> Outcome:
    """Airflow's ``_evaluate_setup_constraint`` over a task's indirect setups."""
    if c.upstream == 0:
        return RUN
    if c.failed or c.upstream_failed:
        return Outcome("upstream_failed", f"a setup task failed ({c.describe()})")
    if c.skipped:
        return Outcome("skipped", f"a setup task was skipped ({c.describe()})")
    return RUN if c.upstream - c.success <= 0 else Outcome("wait")


def combine(setups: Outcome, direct: Outcome) -> Outcome:
    """Both constraints: a state change by the setup constraint wins (Airflow returns
    before evaluating the direct relatives), then the direct relatives' state change,
    then both must pass."""
    if setups.verdict in ("skipped", "upstream_failed"):
        return setups
    if direct.verdict in ("skipped", "upstream_failed"):
        return direct
    if setups.verdict == "wait" or direct.verdict == "wait":
        return Outcome("wait")
    return RUN
