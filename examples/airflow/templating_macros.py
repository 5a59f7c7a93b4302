"""Jinja templating of template fields: ``ds``, ``ds_nodash``, ``ts``, ``logical_date``,
``data_interval_start``/``end``, ``run_id``, ``dag_run.conf``, ``ti``, ``task``,
``dag``, ``params`` and ``macros`` (``ds_add``, ``ds_format``, ``datetime``,
``timedelta``); PythonOperator's templated ``op_kwargs`` and ``templates_dict``; context
values as ``@task`` keyword arguments and through ``get_current_context()``."""

from datetime import datetime

from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.python import PythonOperator
from airflow.sdk import DAG, get_current_context, task

RENDER = " && ".join(
    [
        'echo "ds={{ ds }} nodash={{ ds_nodash }} ts={{ ts }}"',
        'echo "start={{ data_interval_start.isoformat() }} end={{ data_interval_end.isoformat() }}"',
        "echo \"run_id={{ run_id }} name={{ dag_run.conf.get('name', 'nobody') }}\"",
        'echo "ti={{ ti.task_id }} task={{ task.task_id }} dag={{ dag.dag_id }}"',
        "echo \"week_later={{ macros.ds_add(ds, 7) }} uk={{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%Y') }}\"",
        "echo \"year={{ macros.datetime(2030, 1, 1).year }} tomorrow={{ (logical_date + macros.timedelta(days=1)).strftime('%Y-%m-%d') }}\"",
        'echo "label={{ params.label }}"',
    ]
)


def use_templates(day, label, templates_dict=None):
    query = templates_dict["query"]
    print(f"query: {query}")
    return f"{day}|{label}|{query}"


with DAG(
    dag_id="templating_macros",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"label": "daily"},
    tags=["example", "templating"],
):
    render_context = BashOperator(task_id="render_context", bash_command=RENDER)

    python_templates = PythonOperator(
        task_id="python_templates",
        python_callable=use_templates,
        op_kwargs={"day": "{{ ds }}", "label": "{{ params.label }}"},
        templates_dict={"query": "SELECT * FROM events WHERE day = '{{ ds }}'"},
    )

    @task
    def context_kwargs(ds=None, logical_date=None, **context):
        return {
            "ds": ds,
            "year": logical_date.year,
            "run_id": context["run_id"],
            "conf_name": context["dag_run"].conf.get("name"),
        }

    @task
    def current_context():
        context = get_current_context()
        return f"{context['ti'].task_id}@{context['ds_nodash']}"

    render_context >> python_templates >> context_kwargs() >> current_context()
