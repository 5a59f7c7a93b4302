"""Custom operators subclassing BaseOperator: ``template_fields``, ``template_ext`` (the
``.sql`` file next to this DAG is read and rendered), ``params``, ``user_defined_macros``
and ``self.log``."""

from datetime import datetime

from airflow.sdk import DAG, BaseOperator


class SqlReportOperator(BaseOperator):
    """Renders a SQL statement (inline or from a ``.sql`` file) and "runs" it."""

    template_fields = ("sql", "target_table")
    template_ext = (".sql",)
    template_fields_renderers = {"sql": "sql"}
    ui_color = "#ededed"

    def __init__(self, *, sql: str, target_table: str, **kwargs):
        super().__init__(**kwargs)
        self.sql = sql
        self.target_table = target_table

    def execute(self, context):
        statement = " ".join(self.sql.split())
        self.log.info("Loading %s with: %s", self.target_table, statement)
        return {"table": self.target_table, "sql": statement}


class GreetOperator(BaseOperator):
    template_fields = ("name",)

    def __init__(self, *, name: str, **kwargs):
        super().__init__(**kwargs)
        self.name = name

    def execute(self, context):
        message = f"Hello {self.name} from {context['task'].task_id}"
        print(message)
        return message


with DAG(
    dag_id="custom_operator",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    catchup=False,
    params={"table": "sales"},
    user_defined_macros={"env_name": "staging", "shout": lambda text: text.upper() + "!"},
    tags=["example", "templating"],
):
    report = SqlReportOperator(
        task_id="report",
        sql="sql/report.sql",
        target_table="{{ params.table }}_{{ ds_nodash }}",
    )
    inline = SqlReportOperator(
        task_id="inline",
        sql="SELECT 1 FROM {{ params.table }} -- {{ shout(env_name) }}",
        target_table="scratch",
    )
    greet = GreetOperator(task_id="greet", name="{{ env_name | upper }}")
    report >> inline >> greet
