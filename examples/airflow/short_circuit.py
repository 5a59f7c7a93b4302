"""Short-circuiting: ShortCircuitOperator with a true and a false condition (by default a
false one skips every downstream task, whatever its trigger rule) and
``@task.short_circuit(ignore_downstream_trigger_rules=False)``, which skips only the
direct downstreams and lets trigger rules decide the rest."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import ShortCircuitOperator
from airflow.sdk import DAG, task
from airflow.utils.trigger_rule import TriggerRule

with DAG(
    dag_id="short_circuit",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
):
    cond_true = ShortCircuitOperator(task_id="cond_true", python_callable=lambda: True)
    true_1 = EmptyOperator(task_id="true_1")
    cond_true >> true_1

    cond_false = ShortCircuitOperator(task_id="cond_false", python_callable=lambda: False)
    false_1 = EmptyOperator(task_id="false_1")
    false_2 = EmptyOperator(task_id="false_2", trigger_rule=TriggerRule.ALL_DONE)
    cond_false >> false_1 >> false_2

    @task.short_circuit(ignore_downstream_trigger_rules=False)
    def soft_false():
        print("nothing new upstream")
        return 0

    soft_1 = EmptyOperator(task_id="soft_1")
    soft_2 = EmptyOperator(task_id="soft_2", trigger_rule=TriggerRule.ALL_DONE)
    soft_false() >> soft_1 >> soft_2
