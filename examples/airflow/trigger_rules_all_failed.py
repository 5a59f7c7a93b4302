"""Every trigger rule, downstream of two tasks where one failed and
the other is therefore upstream_failed.

Each ``rule_<name>`` task has that trigger rule; the expected states follow
Airflow's TriggerRuleDep."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="trigger_rules_all_failed",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "trigger-rules"],
):

    @task
    def boom():
        raise ValueError("boom on purpose")

    @task
    def never():
        print("not reached")

    first = boom()
    second = never()
    first >> second  # second ends upstream_failed
    upstreams = [first, second]

    for rule in (
        TriggerRule.ALL_SUCCESS,
        TriggerRule.ALL_FAILED,
        TriggerRule.ALL_DONE,
        TriggerRule.ALL_DONE_MIN_ONE_SUCCESS,
        TriggerRule.ALL_SKIPPED,
        TriggerRule.ONE_SUCCESS,
        TriggerRule.ONE_FAILED,
        TriggerRule.ONE_DONE,
        TriggerRule.NONE_FAILED,
        TriggerRule.NONE_FAILED_MIN_ONE_SUCCESS,
        TriggerRule.NONE_SKIPPED,
        TriggerRule.ALWAYS,
    ):
        upstreams >> EmptyOperator(task_id=f"rule_{rule.value}", trigger_rule=rule)
