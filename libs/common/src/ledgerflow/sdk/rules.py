"""``TriggerRule`` and ``WeightRule``: Airflow's enums, as ``str`` enums.

Members compare equal to their string values, so ``trigger_rule=TriggerRule.ALL_DONE`` and
``trigger_rule="all_done"`` are the same thing everywhere.
"""

from __future__ import annotations

from enum import StrEnum


class TriggerRule(StrEnum):
    """When a task may run, given the states of its upstream tasks."""

    ALL_SUCCESS = "all_success"
    ALL_FAILED = "all_failed"
    ALL_DONE = "all_done"
    ALL_DONE_MIN_ONE_SUCCESS = "all_done_min_one_success"
    ALL_DONE_SETUP_SUCCESS = "all_done_setup_success"
    ONE_SUCCESS = "one_success"
    ONE_FAILED = "one_failed"
    ONE_DONE = "one_done"
    NONE_FAILED = "none_failed"
    NONE_SKIPPED = "none_skipped"
    ALWAYS = "always"
    NONE_FAILED_MIN_ONE_SUCCESS = "none_failed_min_one_success"
    ALL_SKIPPED = "all_skipped"

    @classmethod
    def is_valid(cls, trigger_rule: str) -> bool:
        return trigger_rule in cls.all_triggers()

    @classmethod
    def all_triggers(cls) -> set[str]:
        return {member.value for member in cls}


class WeightRule(StrEnum):
    """How a task's effective priority is computed from its ``priority_weight``."""

    DOWNSTREAM = "downstream"
    UPSTREAM = "upstream"
    ABSOLUTE = "absolute"

    @classmethod
    def is_valid(cls, weight_rule: str) -> bool:
        return weight_rule in cls.all_weight_rules()

    @classmethod
    def all_weight_rules(cls) -> set[str]:
        return {member.value for member in cls}
