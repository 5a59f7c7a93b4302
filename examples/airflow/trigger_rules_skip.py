"""Every trigger rule, downstream of two tasks where one succeeded and
one was skipped.

Each ``rule_<name>`` task has that trigger rule; the expected states follow
Airflow's TriggerRuleDep."""

from datetime import datetime

from airflow.exceptions import AirflowSkipException
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="trigger_rules_skip",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "trigger-rules"],
):

    @task
    def ok():
        print("ok")
        return "ok"

    @task
    def skipper():
        raise AirflowSkipException("skipper: nothing to do")

    upstreams = [ok(), skipper()]

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
