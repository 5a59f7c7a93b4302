"""Jinja templating of template fields, the context keys and the macros, as a task sees
them (in-process ``execute_request``)."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest
from ledgerflow.sdk.templating import RENDERED_FIELD_MAX_BYTES, _plain_text

from .test_runtime_harness import run, xcom

ECHO = """
from datetime import timedelta
from ledgerflow.sdk import DAG, BaseOperator

class Echo(BaseOperator):
    template_fields = ("text", "items")
    template_ext = (".sql", ".sh")

    def __init__(self, *, text=None, items=None, **kwargs):
        super().__init__(**kwargs)
        self.text = text
        self.items = items

    def execute(self, context):
        return {"text": self.text, "items": self.items}
"""


def echo(text: Any, *, dag_args: str = "", items: Any = None, **fields: Any) -> dict[str, Any]:
    """Render ``text`` (and ``items``) as the template fields of a task; the outcome."""
    source = ECHO + (
        f"with DAG('t', params={{'p': 1, 'q': 'dag'}}{dag_args}):\n"
        f"    Echo(task_id='e', text={text!r}, items={items!r})\n"
    )
    return run(source, "e", **fields)


def rendered(text: str, **kwargs: Any) -> Any:
    outcome = echo(text, **kwargs)
    assert outcome["status"] == "success", outcome
    return outcome["return_value"]["text"]


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ ds }}", "2024-05-01"),
        ("{{ ds_nodash }}", "20240501"),
        ("{{ ts }}", "2024-05-01T12:30:00+00:00"),
        ("{{ ts_nodash }}", "20240501T123000"),
        ("{{ ts_nodash_with_tz }}", "20240501T123000+0000"),
        ("{{ logical_date.year }}", "2024"),
        ("{{ data_interval_start }}", "2024-04-30 12:30:00+00:00"),
        ("{{ data_interval_end | ds }}", "2024-05-01"),
        ("{{ prev_data_interval_start_success }}", "None"),
        ("{{ run_id }}", "manual__1"),
        ("{{ dag_run.run_id }}/{{ dag_run.run_type }}/{{ dag_run.conf }}", "manual__1/manual/{}"),
        (
            "{{ dag_run.logical_date | ds }} {{ dag_run.data_interval_start | ds }}",
            "2024-05-01 2024-04-30",
        ),
        ("{{ ti.task_id }} {{ task_instance.dag_id }} {{ ti.try_number }}", "e t 1"),
        (
            "{{ ti.map_index }} {{ ti.max_tries }} {{ ti.state }} {{ ti.log_url }}",
            "-1 0 running None",
        ),
        ("{{ task.task_id }} {{ dag.dag_id }}", "e t"),
        ("{{ params.p }} {{ params['q'] }}", "1 dag"),
        ("{{ map_index }} {{ try_number }} {{ test_mode }}", "-1 1 False"),
        ("{{ inlets }} {{ outlets }} {{ triggering_asset_events | length }}", "[] [] 0"),
        ("{{ task_instance_key_str }}", "t__e__20240501"),
        ("{{ macros.ds_add(ds, 5) }} {{ macros.ds_add(ds, -1) }}", "2024-05-06 2024-04-30"),
        ("{{ macros.ds_format(ds, '%Y-%m-%d', '%d/%m/%y') }}", "01/05/24"),
        ("{{ (macros.datetime(2024, 1, 1) + macros.timedelta(days=1)).day }}", "2"),
        ("{{ macros.json.dumps({'a': 1}) }}", '{"a": 1}'),
        ("{{ macros.uuid.UUID(int=1).int }} {{ macros.time.time() > 0 }}", "1 True"),
        ("{{ 0 <= macros.random() < 1 }}", "True"),
        ("{{ logical_date | ts_nodash }}", "20240501T123000"),
        ("{% do params.update({'z': 2}) %}{{ params.z }}", "2"),
    ],
)
def test_context_keys_macros_and_filters(template: str, expected: str) -> None:
    assert rendered(template) == expected


def test_conf_overrides_params_and_run_type() -> None:
    text = "{{ params.p }} {{ params.q }} {{ params.new }} {{ dag_run.conf.new }} {{ dag_run.run_type }}"
    assert rendered(text, conf={"q": "conf", "new": 3}, run_type="scheduled") == (
        "1 conf 3 3 scheduled"
    )


def test_params_with_param_objects_task_params_and_conf() -> None:
    source = ECHO + (
        "from ledgerflow.sdk.params import Param\n"
        "with DAG('t', params={'n': Param(5, type='integer'), 'none': Param(None),"
        " 'required': Param(type='string'), 'both': 'dag'}):\n"
        "    Echo(task_id='e', params={'both': 'task', 'own': 1},\n"
        "         text='{{ params.n }} {{ params.none }} {{ params.both }} {{ params.own }}"
        " {{ params.required }} {{ params | length }}')\n"
    )
    assert run(source, "e", conf={"required": "given"})["return_value"]["text"] == (
        "5 None task 1 given 5"
    )
    assert run(source, "e")["error"].endswith(
        "UndefinedError: 'dict object' has no attribute 'required'"
    )


def test_macros_dateutil_when_installed() -> None:
    pytest.importorskip("dateutil")
    text = "{{ (macros.dateutil.parser.parse('2024-01-31') + macros.dateutil.relativedelta.relativedelta(months=1)).date() }}"
    assert rendered(text) == "2024-02-29"


def test_nested_collections_are_rendered_recursively() -> None:
    items = {"a": ["{{ ds }}", ("{{ run_id }}", 3)], "b": {"c": "{{ params.p + 1 }}"}, "n": None}
    outcome = echo("x", items=items)
    assert outcome["return_value"]["items"] == {
        "a": ["2024-05-01", ["manual__1", 3]],
        "b": {"c": "2"},
        "n": None,
    }
    assert outcome["rendered_fields"] == {
        "text": "x",
        "items": {"a": ["2024-05-01", ["manual__1", 3]], "b": {"c": "2"}, "n": None},
    }


def test_undefined_variables_fail_by_default_with_field_and_line() -> None:
    outcome = echo("line one\nrm -rf {{ not_a_key }}/x\n")
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "UndefinedError"
    assert outcome["error"] == (
        "Exception rendering Jinja template for task 'e', field 'text' "
        "(line 2: 'rm -rf {{ not_a_key }}/x'): UndefinedError: 'not_a_key' is undefined"
    )
    assert outcome["retryable"] is True


def test_syntax_error_names_field_and_line_and_is_not_retried() -> None:
    outcome = echo("ok", items=["fine", "a\n{{ broken"])
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "TemplateSyntaxError"
    assert "field 'items'" in outcome["error"]
    assert "(line 2: '{{ broken')" in outcome["error"]
    assert outcome["retryable"] is False
    # The field rendered before the failure is still reported.
    assert outcome["rendered_fields"] == {"text": "ok"}


def test_error_in_a_template_file_names_the_file(capfd: pytest.CaptureFixture[str]) -> None:
    files = {"sql/q.sql": "select 1;\nselect {{ 1 + 'a' }};\n"}
    outcome = echo("q.sql", dag_args=", template_searchpath=['sql']", extra_files=files)
    assert outcome["error_type"] == "TypeError"
    assert outcome["error"].startswith(
        "Exception rendering Jinja template for task 'e', field 'text' "
        "(q.sql line 2: \"select {{ 1 + 'a' }};\"): TypeError: unsupported operand"
    )


def test_missing_template_file_says_where_it_looked() -> None:
    outcome = echo("nowhere.sql")
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "TemplateNotFound"
    assert (
        "template file 'nowhere.sql' not found in the DAG file's folder or in "
        "template_searchpath []" in outcome["error"]
    )
    assert outcome["retryable"] is False


def test_template_files_from_extra_files_and_searchpath() -> None:
    files = {
        "query.sql": "select * from t where d = '{{ ds }}'\n",
        "sql/nested/report.sql": "{% include 'nested/parts/cols.sql' %} -- {{ params.p }}",
        "sql/nested/parts/cols.sql": "select a, b",
        "scripts/run.sh": "echo {{ run_id }}",
    }
    outcome = echo(
        "query.sql",
        items=["nested/report.sql", "run.sh", "plain {{ ts_nodash }}"],
        dag_args=", template_searchpath=['sql', 'scripts']",
        extra_files=files,
    )
    assert outcome["status"] == "success", outcome
    assert outcome["return_value"] == {
        "text": "select * from t where d = '2024-05-01'",
        "items": ["select a, b -- 1", "echo manual__1", "plain 20240501T123000"],
    }


def test_searchpath_built_from_dunder_file_resolves_in_the_private_folder() -> None:
    source = ECHO + (
        "import os\n"
        "with DAG('t', template_searchpath=[os.path.join(os.path.dirname(__file__), 'sql')]):\n"
        "    Echo(task_id='e', text='q.sql')\n"
    )
    outcome = run(source, "e", extra_files={"sql/q.sql": "{{ ds_nodash }}"})
    assert outcome["return_value"]["text"] == "20240501", outcome


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x.sql", "a/../../x.sql"])
def test_extra_files_may_not_escape_the_folder(bad: str) -> None:
    outcome = echo("x", extra_files={bad: "boom"})
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "BadRequest"
    assert "must be relative" in outcome["error"]
    assert outcome["retryable"] is False


def test_native_rendering() -> None:
    outcome = echo(
        "{{ params.p + 41 }}",
        items=["[1, 2, {{ params.p }}]", "{{ dag_run.conf }}", "plain", "007", "{{ ds }}"],
        dag_args=", render_template_as_native_obj=True",
        conf={"k": True},
    )
    assert outcome["status"] == "success", outcome
    assert outcome["return_value"] == {
        "text": 42,
        "items": [[1, 2, 1], {"k": True}, "plain", "007", "2024-05-01"],
    }
    assert outcome["rendered_fields"]["text"] == 42


def test_a_task_can_override_native_rendering() -> None:
    source = ECHO + (
        "with DAG('t', render_template_as_native_obj=True):\n"
        "    Echo(task_id='native', text='{{ 1 + 1 }}')\n"
        "    Echo(task_id='text', text='{{ 1 + 1 }}', render_template_as_native_obj=False)\n"
        "with DAG('u'):\n"
        "    Echo(task_id='native', text='{{ 1 + 1 }}', render_template_as_native_obj=True)\n"
    )
    assert run(source, "native")["return_value"]["text"] == 2
    assert run(source, "text")["return_value"]["text"] == "2"
    assert run(source, "native", dag_id="u")["return_value"]["text"] == 2


def test_error_in_an_included_file_names_that_file() -> None:
    files = {
        "sql/main.sql": "{% include 'parts/where.sql' %}",
        "sql/parts/where.sql": "where\n  d = {{ missing_macro() }}",
    }
    outcome = echo("main.sql", dag_args=", template_searchpath=['sql']", extra_files=files)
    assert outcome["error"] == (
        "Exception rendering Jinja template for task 'e', field 'text' "
        "(parts/where.sql line 2: 'd = {{ missing_macro() }}'): "
        "UndefinedError: 'missing_macro' is undefined"
    )


def test_user_defined_macros_filters_and_undefined() -> None:
    dag_args = (
        ", user_defined_macros={'env': 'prod', 'twice': lambda s: s * 2}"
        ", user_defined_filters={'shout': lambda s: s.upper() + '!'}"
    )
    assert rendered("{{ env | shout }} {{ twice('ab') }}", dag_args=dag_args) == "PROD! abab"
    # Context keys win over macros of the same name, as in Airflow.
    assert rendered("{{ ds }}", dag_args=", user_defined_macros={'ds': 'x'}") == "2024-05-01"
    lenient = ", template_undefined=__import__('jinja2').Undefined"
    assert rendered("[{{ nothing }}]", dag_args=lenient) == "[]"


def test_xcomargs_in_template_fields_are_resolved_not_rendered() -> None:
    source = ECHO + (
        "with DAG('t'):\n"
        "    up = Echo(task_id='up')\n"
        "    Echo(task_id='e', text=up.output, items=['{{ ds }}', up.output])\n"
    )
    outcome = run(source, "e", xcoms=[xcom("up", "{{ not rendered }}")])
    assert outcome["return_value"] == {
        "text": "{{ not rendered }}",
        "items": ["2024-05-01", "{{ not rendered }}"],
    }


def test_nested_objects_with_template_fields_are_rendered() -> None:
    source = ECHO + (
        "class Inner:\n"
        "    template_fields = ('sql',)\n"
        "    def __init__(self, sql):\n"
        "        self.sql = sql\n"
        "    def __str__(self):\n"
        "        return f'Inner({self.sql})'\n"
        "class Outer(Echo):\n"
        "    def execute(self, context):\n"
        "        return self.items[0].sql\n"
        "with DAG('t'):\n"
        "    Outer(task_id='e', items=[Inner('select {{ ds }}')])\n"
    )
    outcome = run(source, "e")
    assert outcome["return_value"] == "select 2024-05-01"
    assert outcome["rendered_fields"]["items"] == ["Inner(select 2024-05-01)"]


def test_prepare_template_runs_after_template_files_are_read() -> None:
    source = ECHO + (
        "import json\n"
        "class JsonConf(Echo):\n"
        "    template_ext = ('.json',)\n"
        "    def prepare_template(self):\n"
        "        self.text = self.text.replace('X', '{{ ds }}')\n"
        "with DAG('t'):\n"
        "    JsonConf(task_id='e', text='conf.json')\n"
    )
    outcome = run(source, "e", extra_files={"conf.json": '{"day": "X"}'})
    assert outcome["return_value"]["text"] == '{"day": "2024-05-01"}'


def test_rendered_fields_are_truncated_and_secrets_masked() -> None:
    big = "x" * (RENDERED_FIELD_MAX_BYTES + 100)
    outcome = echo(
        "{{ conn.db.password }} {{ var.value.api_key }} {{ var.value.plain }}",
        items={"big": big, "password": "hunter2"},
        connections={"db": {"conn_type": "postgres", "password": "s3cr3t-pw"}},
        variables={"api_key": "k-123456", "plain": "visible"},
    )
    assert outcome["status"] == "success", outcome
    # The task itself sees the real values ...
    assert outcome["return_value"]["text"] == "s3cr3t-pw k-123456 visible"
    # ... the rendered fields recorded for the UI do not.
    fields = outcome["rendered_fields"]
    assert fields["text"] == "*** *** visible"
    assert fields["items"]["password"] == "***"
    assert fields["items"]["big"].startswith("x" * RENDERED_FIELD_MAX_BYTES + "... [truncated")
    assert len(fields["items"]["big"]) < RENDERED_FIELD_MAX_BYTES + 60


@pytest.mark.parametrize(
    "text",
    ["", "a", "a\n", "a\n\n", "\n", "a\r\nb\rc\n", "a\r\n", "  x  \t", "é\u2028x\n", "{ x }", "%}"],
)
def test_plain_strings_render_exactly_as_jinja_would(text: str) -> None:
    import jinja2.sandbox

    env = jinja2.sandbox.SandboxedEnvironment(undefined=jinja2.StrictUndefined)
    assert _plain_text(text) == env.from_string(text).render({})


def test_plain_strings_do_not_import_jinja() -> None:
    code = (
        "import sys\n"
        "from ledgerflow.sdk.runner import execute_request\n"
        "src = '''from ledgerflow.sdk import DAG, BashOperator\n"
        'with DAG("t"):\n'
        '    BashOperator(task_id="b", bash_command="echo plain\\\\n")\n'
        "'''\n"
        "out = execute_request({'source': src, 'filename': 'dags/t.py', 'dag_id': 't',"
        " 'task_id': 'b'})\n"
        "assert out['return_value'] == 'plain', out\n"
        "print('jinja2' in sys.modules)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines()[-1] == "False"
