"""Bad on purpose: a syntax error on line 9."""

from datetime import datetime

from ledgerflow.sdk import DAG, BashOperator

with DAG("bad_syntax", start_date=datetime(2024, 1, 1)):
    BashOperator(task_id="a", bash_command="echo a")
    BashOperator(task_id="b", bash_command="echo b"
