"""Dynamic task mapping over literals: ``partial().expand()``, a reduce over the mapped
results, ``expand`` over two arguments (their cross product, the last argument varying
fastest), ``expand_kwargs``, and classic operators mapped with ``partial``."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.sdk import DAG, task

with DAG(
    dag_id="mapping_literals",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mapping"],
):

    @task
    def add(x: int, y: int) -> int:
        return x + y

    @task
    def total(values) -> int:
        values = list(values)
        print(f"total of {values} is {sum(values)}")
        return sum(values)

    total(add.partial(y=10).expand(x=[1, 2, 3]))

    @task
    def multiply(x: int, y: int) -> int:
        return x * y

    multiply.expand(x=[1, 2], y=[10, 100])

    @task
    def describe(name: str, size: int) -> str:
        return f"{name}:{size}"

    describe.expand_kwargs([{"name": "small", "size": 1}, {"name": "large", "size": 100}])

    BashOperator.partial(task_id="echo").expand(bash_command=["echo one", "echo two"])
    BashOperator.partial(task_id="kw_bash", bash_command='echo "X is $X"').expand_kwargs(
        [{"env": {"X": "first"}}, {"env": {"X": "second"}}]
    )
