"""Template files: ``template_searchpath`` (built from ``__file__``, the usual idiom)
lets ``bash_command="greet.sh"`` find ``scripts/greet.sh``; the DAG's own folder is
always searched too, so ``scripts/greet.sh`` works as well. Both are rendered with
Jinja (``params``, ``ds``, ``dag``, ``task``) before bash runs them."""

import os
from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, Param

HERE = os.path.dirname(os.path.abspath(__file__))

with DAG(
    dag_id="template_files",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    template_searchpath=[os.path.join(HERE, "scripts")],
    params={"who": Param("world", type="string")},
    tags=["example", "templating"],
):
    via_searchpath = BashOperator(task_id="via_searchpath", bash_command="greet.sh")
    via_dag_folder = BashOperator(task_id="via_dag_folder", bash_command="scripts/greet.sh")
    via_searchpath >> via_dag_folder
