"""A diamond: ``a >> [b, c] >> d``.

``a`` and ``d`` are Python tasks, ``b`` runs bash, and ``c`` fails on its first try and
succeeds on its retry. The end-to-end tests run this DAG and check every task's state,
try number and log lines.
"""

from datetime import datetime, timedelta

from ledgerflow.sdk import DAG, BashOperator, PythonOperator


def extract() -> dict[str, int]:
    print("extracting rows")
    return {"rows": 3}


def flaky(ti, try_number) -> str:
    print(f"flaky: attempt {try_number} of {ti.task_id}")
    if try_number == 1:
        raise RuntimeError("failing on purpose on the first try")
    print("flaky: succeeded on retry")
    return "recovered"


def report(ti) -> str:
    rows = ti.xcom_pull(task_ids="a")["rows"]
    bash_said = ti.xcom_pull(task_ids="b")
    flaky_said = ti.xcom_pull(task_ids="c")
    print(f"report: rows={rows} bash={bash_said} flaky={flaky_said}")
    return f"{rows} rows"


with DAG(
    "diamond",
    description="a >> [b, c] >> d, with a bash task and a task that succeeds on retry",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["example"],
    default_args={"owner": "ledgerflow"},
):
    a = PythonOperator(task_id="a", python_callable=extract)
    b = BashOperator(task_id="b", bash_command='echo "hello from bash"; echo "bash done"')
    c = PythonOperator(
        task_id="c", python_callable=flaky, retries=1, retry_delay=timedelta(seconds=1)
    )
    d = PythonOperator(task_id="d", python_callable=report)

    a >> [b, c] >> d
