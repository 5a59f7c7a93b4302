"""Bad on purpose: the task id "extract" is used twice; the second is on line 12."""

from datetime import datetime

from ledgerflow.sdk import DAG, BashOperator, PythonOperator

with DAG("bad_duplicate", start_date=datetime(2024, 1, 1)):
    first = PythonOperator(task_id="extract", python_callable=print)
    load = BashOperator(task_id="load", bash_command="echo load")
    first >> load

    again = BashOperator(task_id="extract", bash_command="echo again")
