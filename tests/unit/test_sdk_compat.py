"""``import airflow...`` in DAG files: the compatibility layer, with the real ``airflow``
absent (this environment) and present (a fake package on ``sys.path``, in a subprocess)."""

from __future__ import annotations

import importlib
import importlib.util
import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from ledgerflow.sdk import compat
from ledgerflow.sdk.parse import parse


@pytest.fixture
def installed() -> Iterator[None]:
    compat.install()
    try:
        yield
    finally:
        compat.uninstall()


IMPORTS = [
    ("airflow", "DAG", "ledgerflow.sdk.dag_definition.DAG"),
    ("airflow.sdk", "DAG", "ledgerflow.sdk.dag_definition.DAG"),
    ("airflow.sdk", "dag", "ledgerflow.sdk.dag_definition.dag"),
    ("airflow.sdk", "task", "ledgerflow.sdk.decorators._TaskDecoratorCollection"),
    ("airflow.sdk", "task_group", "ledgerflow.sdk.taskgroup.task_group"),
    ("airflow.sdk", "TaskGroup", "ledgerflow.sdk.taskgroup.TaskGroup"),
    ("airflow.sdk", "Param", "ledgerflow.sdk.params.Param"),
    ("airflow.sdk", "chain", "ledgerflow.sdk.dependencies.chain"),
    ("airflow.sdk", "BaseSensorOperator", "ledgerflow.sdk.sensors.BaseSensorOperator"),
    ("airflow.sdk", "TriggerRule", "ledgerflow.sdk.rules.TriggerRule"),
    ("airflow.sdk", "Variable", "ledgerflow.sdk.models.Variable"),
    ("airflow.sdk", "Connection", "ledgerflow.sdk.models.Connection"),
    ("airflow.sdk", "BaseHook", "ledgerflow.sdk.models.BaseHook"),
    ("airflow.sdk", "get_current_context", "ledgerflow.sdk.context.get_current_context"),
    ("airflow.sdk.definitions.dag", "DAG", "ledgerflow.sdk.dag_definition.DAG"),
    ("airflow.sdk.definitions.taskgroup", "TaskGroup", "ledgerflow.sdk.taskgroup.TaskGroup"),
    ("airflow.sdk.definitions.param", "ParamsDict", "ledgerflow.sdk.params.ParamsDict"),
    ("airflow.sdk.bases.sensor", "PokeReturnValue", "ledgerflow.sdk.sensors.PokeReturnValue"),
    ("airflow.decorators", "task", "ledgerflow.sdk.decorators._TaskDecoratorCollection"),
    ("airflow.decorators", "dag", "ledgerflow.sdk.dag_definition.dag"),
    ("airflow.decorators", "setup", "ledgerflow.sdk.decorators.setup"),
    ("airflow.models", "DAG", "ledgerflow.sdk.dag_definition.DAG"),
    ("airflow.models", "BaseOperator", "ledgerflow.sdk.baseoperator.BaseOperator"),
    ("airflow.models", "Variable", "ledgerflow.sdk.models.Variable"),
    ("airflow.models", "Param", "ledgerflow.sdk.params.Param"),
    ("airflow.models.dag", "DAG", "ledgerflow.sdk.dag_definition.DAG"),
    ("airflow.models.baseoperator", "chain", "ledgerflow.sdk.dependencies.chain"),
    ("airflow.models.param", "Param", "ledgerflow.sdk.params.Param"),
    ("airflow.models.variable", "Variable", "ledgerflow.sdk.models.Variable"),
    ("airflow.operators.bash", "BashOperator", "ledgerflow.sdk.operators.BashOperator"),
    ("airflow.operators.python", "PythonOperator", "ledgerflow.sdk.operators.PythonOperator"),
    (
        "airflow.operators.python",
        "ShortCircuitOperator",
        "ledgerflow.sdk.branch.ShortCircuitOperator",
    ),
    ("airflow.operators.empty", "EmptyOperator", "ledgerflow.sdk.operators.EmptyOperator"),
    ("airflow.operators.branch", "BaseBranchOperator", "ledgerflow.sdk.branch.BaseBranchOperator"),
    (
        "airflow.providers.standard.operators.python",
        "BranchPythonOperator",
        "ledgerflow.sdk.branch.BranchPythonOperator",
    ),
    (
        "airflow.providers.standard.operators.bash",
        "BashOperator",
        "ledgerflow.sdk.operators.BashOperator",
    ),
    (
        "airflow.providers.standard.operators.empty",
        "EmptyOperator",
        "ledgerflow.sdk.operators.EmptyOperator",
    ),
    (
        "airflow.providers.standard.sensors.python",
        "PythonSensor",
        "ledgerflow.sdk.sensors.PythonSensor",
    ),
    (
        "airflow.providers.standard.sensors.time_delta",
        "TimeDeltaSensor",
        "ledgerflow.sdk.sensors.TimeDeltaSensor",
    ),
    (
        "airflow.providers.standard.sensors.date_time",
        "DateTimeSensor",
        "ledgerflow.sdk.sensors.DateTimeSensor",
    ),
    (
        "airflow.providers.standard.sensors.external_task",
        "ExternalTaskSensor",
        "ledgerflow.sdk.sensors.ExternalTaskSensor",
    ),
    ("airflow.providers.standard.sensors.bash", "BashSensor", "ledgerflow.sdk.sensors.BashSensor"),
    ("airflow.sensors.base", "BaseSensorOperator", "ledgerflow.sdk.sensors.BaseSensorOperator"),
    (
        "airflow.sensors.external_task",
        "ExternalTaskSensor",
        "ledgerflow.sdk.sensors.ExternalTaskSensor",
    ),
    ("airflow.utils.trigger_rule", "TriggerRule", "ledgerflow.sdk.rules.TriggerRule"),
    ("airflow.utils.task_group", "TaskGroup", "ledgerflow.sdk.taskgroup.TaskGroup"),
    ("airflow.utils.dates", "days_ago", "ledgerflow.sdk.timezone.days_ago"),
    ("airflow.utils.helpers", "cross_downstream", "ledgerflow.sdk.dependencies.cross_downstream"),
    ("airflow.utils.edgemodifier", "Label", "ledgerflow.sdk.edges.Label"),
    ("airflow.utils.state", "State", "ledgerflow.sdk.state.State"),
    (
        "airflow.exceptions",
        "AirflowSkipException",
        "ledgerflow.sdk.exceptions.AirflowSkipException",
    ),
    (
        "airflow.exceptions",
        "AirflowFailException",
        "ledgerflow.sdk.exceptions.AirflowFailException",
    ),
    ("airflow.hooks.base", "BaseHook", "ledgerflow.sdk.models.BaseHook"),
    ("airflow.macros", "ds_add", "ledgerflow.sdk.macros.ds_add"),
    ("airflow.sdk", "literal", "ledgerflow.sdk.xcom_arg.literal"),
    ("airflow.sdk", "get_parsing_context", "ledgerflow.sdk.compat.shims.get_parsing_context"),
]


def qualified(value: object) -> str:
    target = (
        value
        if isinstance(value, type) or callable(value) and not hasattr(value, "python")
        else type(value)
    )
    return f"{target.__module__}.{target.__qualname__}"


@pytest.mark.usefixtures("installed")
@pytest.mark.parametrize(("module", "name", "target"), IMPORTS)
def test_airflow_names_are_ledgerflows(module: str, name: str, target: str) -> None:
    value = getattr(importlib.import_module(module), name)
    assert qualified(value) == target


@pytest.mark.usefixtures("installed")
def test_airflow_package_looks_like_airflow() -> None:
    import airflow
    import airflow.macros

    assert airflow.__version__.startswith("3.")
    assert airflow.macros.ds_add("2024-01-31", 1) == "2024-02-01"
    from airflow.sdk import TriggerRule

    assert TriggerRule.ALL_DONE == "all_done"


@pytest.mark.usefixtures("installed")
def test_unknown_modules_and_names_fail_clearly() -> None:
    with pytest.raises(ModuleNotFoundError) as info:
        importlib.import_module("airflow.providers.snowflake.operators.snowflake")
    assert info.value.name == "airflow.providers.snowflake"
    assert "No module named 'airflow.providers.snowflake'" in str(info.value)
    with pytest.raises(ImportError, match="cannot import name 'PythonVirtualenvOperator'"):
        exec("from airflow.operators.python import PythonVirtualenvOperator", {})


def test_real_airflow_is_absent_here_and_install_is_idempotent() -> None:
    compat.uninstall()  # the loader installs it; start from a clean interpreter state
    assert importlib.util.find_spec("airflow") is None
    compat.install()
    compat.install()
    try:
        assert sum(1 for f in sys.meta_path if f is compat._finder) == 1
        assert sys.meta_path[0] is compat._finder
    finally:
        compat.uninstall()
    assert "airflow" not in sys.modules and not compat.installed()


def test_sdk_exports_the_runtime_names_lazily() -> None:
    import ledgerflow.sdk as sdk
    from ledgerflow.sdk import models

    assert sdk.Variable is models.Variable and sdk.BaseHook is models.BaseHook
    assert sdk.macros.ds_add("2024-01-01", 2) == "2024-01-03"
    assert callable(sdk.get_current_context)
    for name in sdk.__all__:
        assert getattr(sdk, name) is not None


AIRFLOW3_DAG = """
from __future__ import annotations

import pendulum_free_dates as dates  # a sibling module: resolved from the DAG's folder
from airflow.sdk import DAG, Param, TaskGroup, chain, dag, task, task_group, setup, teardown
from airflow.providers.standard.operators.bash import BashOperator
from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.providers.standard.operators.python import BranchPythonOperator, PythonOperator
from airflow.providers.standard.sensors.external_task import ExternalTaskSensor
from airflow.sdk.bases.sensor import PokeReturnValue
from airflow.utils.trigger_rule import TriggerRule


@dag(
    schedule="@daily",
    start_date=dates.START,
    catchup=False,
    tags=["example"],
    params={"rows": Param(3, type="integer", minimum=1, description="rows to load")},
    default_args={"retries": 1},
)
def airflow3_style():
    @task
    def extract() -> list[int]:
        return [1, 2, 3]

    @task
    def double(x: int) -> int:
        return 2 * x

    @task(multiple_outputs=True)
    def summary(values: list[int]) -> dict[str, int]:
        return {"total": sum(values), "count": len(values)}

    @task.sensor(poke_interval=30, timeout=600, mode="reschedule")
    def upstream_ready() -> PokeReturnValue:
        return PokeReturnValue(is_done=True, xcom_value="ok")

    @setup
    def create_bucket():
        return "bucket"

    @teardown
    def delete_bucket(bucket):
        return None

    @task_group
    def report(total):
        announce = BashOperator(task_id="announce", bash_command=f"echo {total}")
        announce >> EmptyOperator(task_id="done")

    bucket = create_bucket()
    results = summary(double.expand(x=extract()))
    wait = ExternalTaskSensor(task_id="wait_other", external_dag_id="other", mode="reschedule")
    choose = BranchPythonOperator(task_id="choose", python_callable=lambda: "report.announce")
    skipped = EmptyOperator(task_id="skipped", trigger_rule=TriggerRule.NONE_FAILED)
    chain(bucket, upstream_ready(), wait, results, choose, [report(results["total"]), skipped])
    skipped >> delete_bucket(bucket)


airflow3_style()
"""


def test_an_airflow3_dag_file_parses_unchanged(tmp_path: Path) -> None:
    (tmp_path / "pendulum_free_dates.py").write_text(
        "from datetime import datetime, timezone\nSTART = datetime(2024, 1, 1, tzinfo=timezone.utc)\n"
    )
    path = tmp_path / "airflow3_style.py"
    path.write_text(AIRFLOW3_DAG)
    try:
        result = parse(AIRFLOW3_DAG, str(path))
    finally:
        compat.uninstall()
        sys.modules.pop("pendulum_free_dates", None)
    assert result["ok"], result
    (d,) = result["dags"]
    tasks = {t["task_id"]: t for t in d["tasks"]}
    assert d["params"] == {"rows": 3}
    assert d["param_schemas"]["rows"]["description"] == "rows to load"
    assert tasks["double"]["mapped"]["sources"][0]["task_id"] == "extract"
    assert tasks["upstream_ready"]["sensor"]["mode"] == "reschedule"
    assert tasks["report.announce"]["task_group_id"] == "report"
    # An XComArg formatted into a string is a template, not a dependency (as in Airflow).
    assert tasks["report.announce"]["upstream_task_ids"] == ["choose"]
    assert (
        "xcom_pull(task_ids='summary'"
        in tasks["report.announce"]["template_fields"]["bash_command"]
    )
    assert tasks["create_bucket"]["is_setup"] and tasks["delete_bucket"]["is_teardown"]
    assert tasks["choose"]["is_branch"] and tasks["skipped"]["trigger_rule"] == "none_failed"
    assert all(t["retries"] == 1 for t in d["tasks"])


FAKE_AIRFLOW = """
import os
if os.environ.get("FAKE_AIRFLOW_MAY_IMPORT") != "1":
    raise RuntimeError("the real airflow package was imported")
REAL = True
"""


def run_python(code: str, fake_root: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environ = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(fake_root), os.environ.get("PYTHONPATH", "")]),
        **env,
    }
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=environ,
        timeout=60,
        check=False,
    )


@pytest.fixture
def fake_airflow(tmp_path: Path) -> Path:
    package = tmp_path / "site" / "airflow"
    (package / "operators").mkdir(parents=True)
    (package / "__init__.py").write_text(FAKE_AIRFLOW)
    (package / "operators" / "__init__.py").write_text("")
    (package / "operators" / "bash.py").write_text("BashOperator = 'real'\n")
    return tmp_path / "site"


def test_shim_wins_when_a_real_airflow_is_installed(fake_airflow: Path) -> None:
    code = """
        import importlib.util, json, sys
        assert importlib.util.find_spec("airflow") is not None  # the fake one is there
        from ledgerflow.sdk.parse import parse
        source = (
            "from airflow import DAG\\n"
            "from airflow.operators.bash import BashOperator\\n"
            "with DAG('x'):\\n"
            "    BashOperator(task_id='a', bash_command='true')\\n"
        )
        print(json.dumps(parse(source, "dags/x.py")))
    """
    done = run_python(code, fake_airflow)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["ok"], result
    assert result["dags"][0]["tasks"][0]["operator"] == "BashOperator"


def test_install_replaces_a_real_airflow_imported_before(fake_airflow: Path) -> None:
    code = """
        import airflow
        assert airflow.REAL
        from ledgerflow.sdk import compat
        compat.install()
        import airflow
        from airflow.operators.bash import BashOperator
        print(getattr(airflow, "REAL", False), BashOperator.__module__)
    """
    done = run_python(code, fake_airflow, FAKE_AIRFLOW_MAY_IMPORT="1")
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["False", "ledgerflow.sdk.operators"]


def test_parser_subprocess_reports_unknown_provider(fake_airflow: Path) -> None:
    request = json.dumps(
        {
            "content": "import airflow\nfrom airflow.providers.amazon.aws.hooks.s3 import S3Hook\n",
            "filename": "dags/s3.py",
        }
    )
    done = subprocess.run(
        [sys.executable, "-m", "ledgerflow.sdk.parse"],
        input=request,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(fake_airflow)},
        timeout=60,
        check=False,
    )
    answer = json.loads(done.stdout)
    assert answer["ok"] is False
    assert answer["error"]["kind"] == "import" and answer["error"]["lineno"] == 2
    assert "airflow.providers.amazon" in answer["error"]["message"]
