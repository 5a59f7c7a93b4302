"""Bad on purpose: an import that fails on line 5."""

from datetime import datetime

import ledgerflow_no_such_module  # noqa: F401, E402
from ledgerflow.sdk import DAG, BashOperator

with DAG("bad_import", start_date=datetime(2024, 1, 1)):
    BashOperator(task_id="a", bash_command="echo a")
