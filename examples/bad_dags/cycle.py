"""Bad on purpose: a >> b >> c, then c >> a on line 14 closes a cycle."""

from datetime import datetime

from ledgerflow.sdk import DAG, BashOperator

with DAG("bad_cycle", start_date=datetime(2024, 1, 1)):
    a = BashOperator(task_id="a", bash_command="echo a")
    b = BashOperator(task_id="b", bash_command="echo b")
    c = BashOperator(task_id="c", bash_command="echo c")

    a >> b
    b >> c
    c >> a
