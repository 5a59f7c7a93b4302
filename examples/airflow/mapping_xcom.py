"""Dynamic task mapping over upstream XComs: a list from one task, a mapped task mapped
over another mapped task's results, a reduce, an empty list (the mapped task is skipped,
and so is its ``all_success`` downstream), ``expand_kwargs`` over a list of dicts from
XCom, and ``xcom_pull`` of chosen map indexes."""

from datetime import datetime

from airflow.sdk import DAG, task

with DAG(
    dag_id="mapping_xcom",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example", "mapping"],
):

    @task
    def list_files() -> list[str]:
        return ["a.csv", "bb.csv", "ccc.csv"]

    @task
    def file_size(name: str) -> int:
        print(f"sizing {name}")
        return len(name) * 10

    @task
    def double(size: int) -> int:
        return size * 2

    @task
    def summarize(values) -> int:
        return sum(values)

    sizes = file_size.expand(name=list_files())
    summarize(double.expand(size=sizes))

    @task
    def nothing() -> list[int]:
        return []

    @task
    def process(item: int) -> int:
        return item

    @task
    def after_empty(values) -> list[int]:
        return list(values)

    after_empty(process.expand(item=nothing()))

    @task
    def make_kwargs() -> list[dict[str, int]]:
        return [{"a": 1, "b": 2}, {"a": 3, "b": 4}]

    @task
    def plus(a: int, b: int) -> int:
        return a + b

    plus.expand_kwargs(make_kwargs())

    @task
    def pull_mapped(ti=None):
        one = ti.xcom_pull(task_ids="file_size", map_indexes=1)
        some = ti.xcom_pull(task_ids="file_size", map_indexes=[0, 2])
        print(f"one={one} some={some}")
        return {"one": one, "some": some}

    sizes >> pull_mapped()
