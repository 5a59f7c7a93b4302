"""The TaskFlow tutorial, as in Airflow's docs: ``@dag``, ``@task``, XComs passed as
return values and arguments, ``multiple_outputs``, a task called twice (``double`` and
``double__1``) and ``.override(task_id=...)``; ``start_date`` is a ``pendulum`` datetime,
as in most real Airflow DAGs."""

import json

import pendulum
from airflow.sdk import dag, task


@dag(
    schedule=None,
    start_date=pendulum.datetime(2024, 1, 1, tz="UTC"),
    catchup=False,
    tags=["example", "taskflow"],
)
def tutorial_taskflow():
    @task()
    def extract():
        data_string = '{"1001": 301.27, "1002": 433.21, "1003": 502.22}'
        order_data_dict = json.loads(data_string)
        return order_data_dict

    @task(multiple_outputs=True)
    def transform(order_data_dict: dict):
        total_order_value = 0
        for value in order_data_dict.values():
            total_order_value += value
        return {
            "total_order_value": round(total_order_value, 2),
            "order_count": len(order_data_dict),
        }

    @task()
    def load(total_order_value: float, order_count: int):
        print(f"Total order value is: {total_order_value:.2f} over {order_count} orders")
        return f"{order_count} orders"

    @task
    def double(x: int) -> int:
        return 2 * x

    order_data = extract()
    order_summary = transform(order_data)
    load(order_summary["total_order_value"], order_summary["order_count"])

    first = double(1)
    second = double(first)
    double.override(task_id="double_again")(second)


tutorial_taskflow()
