"""Dependencies every way Airflow writes them: ``>>``, ``<<``, lists, ``chain`` (with
lists of equal length, pairwise), ``cross_downstream``, ``set_upstream`` and
``set_downstream``. ``collect`` pulls the XCom of every ancestor, which only works when
they really are its ancestors."""

from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, chain, cross_downstream


def name_of(**context):
    return context["ti"].task_id


def collect(ti):
    ids = ["a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2", "e"]
    values = ti.xcom_pull(task_ids=ids)
    print(f"collected {values}")
    return values


with DAG(
    dag_id="dependencies",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    tags=["example"],
):
    start = EmptyOperator(task_id="start")
    middle = EmptyOperator(task_id="middle")
    t = {
        name: PythonOperator(task_id=name, python_callable=name_of)
        for name in ("a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2", "e")
    }
    gather = PythonOperator(task_id="collect", python_callable=collect)

    # start >> a1 >> b1 >> middle and start >> a2 >> b2 >> middle
    chain(start, [t["a1"], t["a2"]], [t["b1"], t["b2"]], middle)
    # every c before every d
    cross_downstream([t["c1"], t["c2"]], [t["d1"], t["d2"]])
    middle >> [t["c1"], t["c2"]]
    t["e"].set_upstream(t["d1"])
    t["d2"].set_downstream(t["e"])
    gather << t["e"]
