"""Parsing DAG files in a subprocess: good files, and bad files pointing at the right line."""

from __future__ import annotations

from pathlib import Path

import pytest
from ledgerflow.common.dagparse import DagParseError, parse_dag_source, parse_dag_source_sync

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
BAD = EXAMPLES / "bad_dags"


def source(path: Path) -> str:
    return path.read_text()


async def parse_error(content: str, filename: str = "dags/x.py") -> DagParseError:
    with pytest.raises(DagParseError) as info:
        await parse_dag_source(content, filename)
    return info.value


@pytest.mark.parametrize(
    ("name", "kind", "lineno", "message"),
    [
        ("syntax_error.py", "syntax", 9, "SyntaxError: '(' was never closed"),
        ("import_error.py", "import", 5, "No module named 'ledgerflow_no_such_module'"),
        ("cycle.py", "cycle", 14, "a -> b -> c -> a"),
        ("duplicate_task_id.py", "duplicate_task_id", 12, "'extract'"),
    ],
)
async def test_bad_files_report_kind_and_line(
    name: str, kind: str, lineno: int, message: str
) -> None:
    error = await parse_error(source(BAD / name), f"dags/{name}")
    assert (error.kind, error.lineno, error.filename) == (kind, lineno, f"dags/{name}")
    assert message in error.message
    assert str(error).startswith(f"dags/{name}:{lineno}: {kind}: ")
    assert error.as_dict() == {
        "message": error.message,
        "filename": f"dags/{name}",
        "lineno": lineno,
        "kind": kind,
    }


async def test_examples_parse() -> None:
    dags = {}
    for path in sorted(EXAMPLES.glob("*.py")):
        for d in await parse_dag_source(source(path), f"examples/{path.name}"):
            dags[d.dag_id] = d
    assert set(dags) == {
        "diamond",
        "hello",
        "bench_chain_20",
        "bench_fanout_1000",
        "bench_sleep_100ms",
    }
    diamond = dags["diamond"]
    assert {t.task_id: set(t.upstream_task_ids) for t in diamond.tasks} == {
        "a": set(),
        "b": {"a"},
        "c": {"a"},
        "d": {"b", "c"},
    }
    assert diamond.task("c").retries == 1 and diamond.task("c").retry_delay_seconds == 1.0
    assert diamond.task("b").operator == "BashOperator"
    assert diamond.fileloc == "examples/diamond.py"
    assert dags["hello"].task("shout").upstream_task_ids == ("greet",)
    chain = dags["bench_chain_20"]
    assert len(chain.tasks) == 20
    assert all(len(t.upstream_task_ids) == (0 if i == 0 else 1) for i, t in enumerate(chain.tasks))


async def test_exception_at_import_points_at_the_innermost_line_in_the_file() -> None:
    content = "\n".join(
        [
            "from ledgerflow.sdk import DAG",  # 1
            "def helper():",  # 2
            "    return {}['missing']",  # 3
            "with DAG('x'):",  # 4
            "    helper()",  # 5
        ]
    )
    error = await parse_error(content)
    assert (error.kind, error.lineno) == ("import", 3)
    assert error.message == "KeyError: 'missing'"


async def test_error_inside_sdk_call_points_at_the_users_line() -> None:
    content = "from ledgerflow.sdk import DAG, BashOperator\nwith DAG('x'):\n    BashOperator(task_id='bad id', bash_command='true')\n"
    error = await parse_error(content)
    assert (error.kind, error.lineno) == ("import", 3)
    assert "invalid task_id 'bad id'" in error.message


async def test_file_without_a_dag() -> None:
    error = await parse_error("x = 1\n")
    assert (error.kind, error.lineno) == ("no_dags", None)


async def test_uncalled_dag_function_is_no_dag() -> None:
    error = await parse_error("from ledgerflow.sdk import dag\n@dag\ndef f():\n    pass\n")
    assert error.kind == "no_dags"


async def test_duplicate_dag_ids_in_one_file() -> None:
    content = "from ledgerflow.sdk import DAG\nDAG('same')\n\nb = DAG('same')\n"
    error = await parse_error(content)
    assert (error.kind, error.lineno) == ("duplicate_dag_id", 4)


async def test_every_trigger_rule_is_accepted_and_serialized() -> None:
    content = (
        "from ledgerflow.sdk import DAG, BashOperator\nwith DAG('x'):\n"
        "    BashOperator(task_id='a', bash_command='true', trigger_rule='all_done')\n"
        "    BashOperator(task_id='b', bash_command='true', trigger_rule='one_done')\n"
    )
    (d,) = await parse_dag_source(content, "dags/x.py")
    assert [t.trigger_rule for t in d.tasks] == ["all_done", "one_done"]


async def test_unknown_airflow_module_is_an_import_error_naming_it() -> None:
    content = "\n".join(
        [
            "from airflow.sdk import DAG",  # 1: provided by ledgerflow
            "from airflow.providers.standard.operators.bash import BashOperator",  # 2
            "from airflow.providers.snowflake.operators.snowflake import SnowflakeOperator",  # 3
            "with DAG('x'):",
            "    BashOperator(task_id='a', bash_command='true')",
        ]
    )
    error = await parse_error(content)
    assert (error.kind, error.lineno, error.filename) == ("import", 3, "dags/x.py")
    assert "airflow.providers.snowflake" in error.message
    assert error.message.startswith("ModuleNotFoundError: No module named")
    assert not error.retryable  # the API answers 422 with this detail
    assert error.as_dict()["lineno"] == 3


async def test_scheduled_dag_with_a_required_param_points_at_the_dag() -> None:
    content = (
        "from ledgerflow.sdk import DAG, Param, EmptyOperator\n"
        "\n"
        "with DAG('p', schedule='@daily', params={'x': Param(type='integer')}):\n"
        "    EmptyOperator(task_id='a')\n"
    )
    error = await parse_error(content)
    assert (error.kind, error.lineno) == ("error", 3)
    assert "param x" in error.message


async def test_airflow_dag_file_parses_unchanged() -> None:
    content = (
        "from datetime import datetime\n"
        "from airflow import DAG\n"
        "from airflow.operators.bash import BashOperator\n"
        "from airflow.operators.python import PythonOperator\n"
        "from airflow.utils.trigger_rule import TriggerRule\n"
        "with DAG('classic', start_date=datetime(2024, 1, 1), schedule='@daily') as dag:\n"
        "    a = BashOperator(task_id='a', bash_command='echo a')\n"
        "    b = PythonOperator(task_id='b', python_callable=print,\n"
        "                       trigger_rule=TriggerRule.ALL_DONE)\n"
        "    a >> b\n"
    )
    (d,) = await parse_dag_source(content, "dags/classic.py")
    assert d.task("b").trigger_rule == "all_done"
    assert d.task("b").upstream_task_ids == ("a",)
    assert d.task("a").operator == "BashOperator"


async def test_dags_not_bound_to_names_and_module_level_dags_are_all_found() -> None:
    content = (
        "from ledgerflow.sdk import DAG, dag, BashOperator\n"
        "for i in range(3):\n"
        "    with DAG(f'gen_{i}'):\n"
        "        BashOperator(task_id='t', bash_command='true')\n"
        "plain = DAG('plain')\n"
        "@dag\n"
        "def decorated():\n"
        "    pass\n"
        "decorated()\n"
    )
    dags = await parse_dag_source(content, "dags/many.py")
    assert [d.dag_id for d in dags] == ["gen_0", "gen_1", "gen_2", "plain", "decorated"]
    assert dags[4].lineno == 6


async def test_prints_and_subprocess_output_do_not_corrupt_the_answer() -> None:
    content = (
        "import os, sys\nprint('noise')\nos.system('echo shell noise')\n"
        "sys.stdout.write('{not json')\nfrom ledgerflow.sdk import DAG\nDAG('quiet')\n"
    )
    dags = await parse_dag_source(content, "dags/noisy.py")
    assert [d.dag_id for d in dags] == ["quiet"]


async def test_dataclasses_and_pickle_work_in_dag_files() -> None:
    content = (
        "import dataclasses, pickle\n"
        "@dataclasses.dataclass\nclass Conf:\n    n: int = 1\n"
        "assert pickle.loads(pickle.dumps(Conf())) == Conf()\n"
        "from ledgerflow.sdk import DAG\nDAG('dc')\n"
    )
    assert [d.dag_id for d in await parse_dag_source(content, "dags/dc.py")] == ["dc"]


async def test_sys_exit_at_import_is_an_import_error() -> None:
    error = await parse_error("import sys\nsys.exit(3)\n")
    assert (error.kind, error.lineno) == ("import", 2)


async def test_timeout_kills_the_parser() -> None:
    with pytest.raises(DagParseError) as info:
        await parse_dag_source("import time\ntime.sleep(60)\n", "dags/slow.py", timeout=1.0)
    assert info.value.kind == "timeout"
    assert info.value.retryable


def test_sync_variant_matches() -> None:
    dags = parse_dag_source_sync(source(EXAMPLES / "diamond.py"), "examples/diamond.py")
    assert [d.dag_id for d in dags] == ["diamond"]
    with pytest.raises(DagParseError) as info:
        parse_dag_source_sync(source(BAD / "cycle.py"), "cycle.py")
    assert (info.value.kind, info.value.lineno) == ("cycle", 14)
    with pytest.raises(DagParseError) as info:
        parse_dag_source_sync("while True:\n    pass\n", "spin.py", timeout=0.5)
    assert info.value.kind == "timeout"
