"""The Airflow corpus under ``ledgerflow dags test``: every DAG file of
``examples/airflow`` runs locally (the scheduler's core in this process, each task in a
runner child, no Kafka) and produces the states, XComs and log lines of
``tests/corpus/expectations.py``."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from ledgerflow.cli.main import main
from ledgerflow.common.dagparse import parse_dag_source_sync

from tests.corpus.check import MISSING, ObservedRun, problems
from tests.corpus.expectations import (
    BAD_CONFS,
    CONNECTIONS,
    CORPUS_DIR,
    DAGS_TEST,
    EXPECTATIONS,
    MISSING_PROVIDER,
    MISSING_PROVIDER_MODULE,
    VARIABLES,
    Expectation,
    by_dag_id,
    for_mode,
)


def dags_test(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, exp: Expectation, **overrides: Any
) -> tuple[int, dict[str, Any]]:
    """Run ``ledgerflow dags test`` for ``exp`` in this process; (exit code, JSON result)."""
    argv = [
        "dags",
        "test",
        str(exp.path),
        "--dag-id",
        exp.dag_id,
        "--logical-date",
        exp.logical_date,
        "--output",
        "json",
    ]
    conf = overrides.get("conf", exp.conf)
    if conf:
        argv += ["--conf", json.dumps(conf)]
    variables = overrides.get("variables", exp.variables)
    if variables:
        (tmp_path / "variables.json").write_text(json.dumps(variables))
        argv += ["--variables", str(tmp_path / "variables.json")]
    if exp.connections and overrides.get("connections", True):
        (tmp_path / "connections.json").write_text(json.dumps(exp.connections))
        argv += ["--connections", str(tmp_path / "connections.json")]
    capsys.readouterr()
    code = main(argv)
    out = capsys.readouterr().out
    return code, json.loads(out) if out.strip() else {}


def observed(result: dict[str, Any]) -> ObservedRun:
    tis = {
        (t["task_id"], t["map_index"]): (t["state"], t["try_number"])
        for t in result["task_instances"]
    }
    xcoms = {(x["task_id"], x["map_index"], x["key"]): x["value"] for x in result["xcoms"]}
    logs = {
        (a["task_id"], a["map_index"], a["try_number"]): "\n".join(a["log"])
        for a in result["attempts"]
    }
    return ObservedRun(
        run_id=result["run_id"] or "",
        state=result["state"],
        task_instances=tis,
        xcom=lambda t, m, k: xcoms.get((t, m, k), MISSING),
        log=lambda t, m, n: logs[(t, m, n)],
        upstream={t["task_id"]: frozenset(t["upstream_task_ids"]) for t in result["tasks"]},
    )


def test_the_corpus_has_at_least_25_files_and_every_dag_has_expectations() -> None:
    files = sorted(CORPUS_DIR.glob("*.py"))
    assert len(files) >= 25
    expected = by_dag_id()
    with ThreadPoolExecutor(max_workers=4) as pool:  # each parse is a subprocess
        parsed = pool.map(lambda p: parse_dag_source_sync(p.read_text(), p.name), files)
    for path, dags in zip(files, parsed, strict=True):
        for dag in dags:
            assert dag.dag_id in expected, f"{path.name}: DAG {dag.dag_id} has no expectation"
            assert expected[dag.dag_id].file == path.name
        assert "ledgerflow" not in path.read_text(), f"{path.name}: use Airflow imports only"
    assert {e.file for e in EXPECTATIONS} == {p.name for p in files}


@pytest.mark.parametrize("exp", for_mode(DAGS_TEST), ids=lambda e: e.dag_id)
def test_corpus_dag_runs_as_airflow_would(
    exp: Expectation, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, result = dags_test(capsys, tmp_path, exp)
    assert result, "no JSON result on stdout"
    found = problems(exp, observed(result))
    assert not found, f"{exp.dag_id}:\n  " + "\n  ".join(found)
    assert code == (0 if exp.run_state == "success" else 1)


@pytest.mark.parametrize(("dag_id", "conf", "param"), BAD_CONFS)
def test_conf_that_breaks_a_param_schema_is_rejected(
    dag_id: str, conf: dict[str, Any], param: str, capsys: pytest.CaptureFixture[str], tmp_path
) -> None:
    code, result = dags_test(capsys, tmp_path, by_dag_id()[dag_id], conf=conf)
    assert code == 1
    assert result["state"] == "rejected"
    assert param in result["reason"], result["reason"]
    assert result["attempts"] == []


def test_variables_and_connections_from_airflow_env_vars(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for key, value in VARIABLES.items():
        monkeypatch.setenv(
            f"AIRFLOW_VAR_{key.upper()}", value if isinstance(value, str) else json.dumps(value)
        )
    conn = CONNECTIONS["warehouse"]
    monkeypatch.setenv(
        "AIRFLOW_CONN_WAREHOUSE",
        f"postgres://{conn['login']}:{conn['password']}@{conn['host']}:{conn['port']}"
        f"/{conn['schema']}?sslmode=require",
    )
    exp = by_dag_id()["variables_connections"]
    code, result = dags_test(capsys, tmp_path, exp, variables={}, connections=False)
    found = problems(exp, observed(result))
    assert not found, "\n".join(found)
    assert code == 0


def test_a_provider_ledgerflow_lacks_is_named(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["dags", "test", str(MISSING_PROVIDER)])
    err = capsys.readouterr().err
    assert code == 1
    assert MISSING_PROVIDER_MODULE in err and "missing_provider.py:6" in err, err


def test_text_output_shows_states_and_logs(capsys: pytest.CaptureFixture[str]) -> None:
    exp = by_dag_id()["bash_features"]
    code = main(["dags", "test", str(exp.path), "--logical-date", exp.logical_date])
    out = capsys.readouterr().out
    assert code == 0
    assert "--- skip_me (try 1): skipped" in out
    assert "skipping on purpose" in out
    assert "fails" in out and "failed" in out
    assert "of bash_features: success" in out.splitlines()[-1]


def test_a_file_with_several_dags_needs_dag_id(capsys: pytest.CaptureFixture[str]) -> None:
    path = by_dag_id()["ext_producer"].path
    code = main(["dags", "test", str(path)])
    err = capsys.readouterr().err
    assert code == 1
    assert "--dag-id" in err and "ext_producer" in err and "ext_consumer" in err, err


def test_airflow_connection_uris_and_env_vars_are_read_like_airflow() -> None:
    from ledgerflow.cli.local_config import (
        connection_from_uri,
        connections_from_env,
        variables_from_env,
    )

    assert connection_from_uri("postgresql://u%40x:p%2Fw@db.local:5433/sales?sslmode=require") == {
        "conn_type": "postgres",
        "host": "db.local",
        "schema": "sales",
        "login": "u@x",
        "password": "p/w",
        "port": 5433,
        "extra": '{"sslmode": "require"}',
    }
    env = {
        "AIRFLOW_VAR_REGION": "eu",
        "AIRFLOW_CONN_API": '{"conn_type": "http", "host": "api.local", "extra": {"a": 1}}',
        "HOME": "/root",
    }
    assert variables_from_env(env) == {"region": "eu"}
    assert connections_from_env(env)["api"]["extra"] == '{"a": 1}'
    assert connections_from_env(env)["api"]["host"] == "api.local"
