"""Every trigger rule, downstream of two tasks where both were
skipped.

Each ``rule_<name>`` task has that trigger rule; the expected states follow
Airflow's TriggerRuleDep."""

from datetime import datetime

from airflow.exceptions import AirflowSkipException
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="trigger_rules_all_skipped",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "trigger-rules"],
):

    @task
    def skip_a():
        raise AirflowSkipException("skip_a: nothing to do")

    @task
    def skip_b():
        raise AirflowSkipException("skip_b: nothing to do")

    upstreams = [skip_a(), skip_b()]

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
