"""``Variable``, ``Connection`` and ``BaseHook``: from the request, else the environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from ledgerflow.sdk import models
from ledgerflow.sdk.models import BaseHook, Connection, TaskCannotWriteConfig, Variable

from .test_runtime_harness import run


@pytest.fixture(autouse=True)
def request_config() -> Iterator[None]:
    models.configure(
        {"plain": "text", "doc": '{"a": [1, 2]}', "number": 5},
        {
            "db": {
                "conn_type": "postgres",
                "host": "db.internal",
                "schema": "warehouse",
                "login": "etl",
                "password": "p@ss/word",
                "port": 5432,
                "extra": '{"sslmode": "require"}',
            },
            "api": {"conn_type": "http", "host": "https://api.example", "extra": {"timeout": 3}},
        },
    )
    yield
    models.reset()


def test_variables_from_the_request() -> None:
    assert Variable.get("plain") == "text"
    assert Variable.get("doc", deserialize_json=True) == {"a": [1, 2]}
    assert Variable.get("number") == "5"  # variables are text; other JSON is its text
    assert Variable.get("number", deserialize_json=True) == 5


def test_variables_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_FROM_ENV", '{"x": 1}')
    monkeypatch.setenv("AIRFLOW_VAR_PLAIN", "env loses")
    assert Variable.get("from_env") == '{"x": 1}'
    assert Variable.get("from_env", deserialize_json=True) == {"x": 1}
    assert Variable.get("plain") == "text"


def test_missing_variable() -> None:
    assert Variable.get("absent", default_var=None) is None
    assert Variable.get("absent", "fallback") == "fallback"
    with pytest.raises(KeyError, match="Variable absent does not exist .*AIRFLOW_VAR_ABSENT"):
        Variable.get("absent")
    with pytest.raises(ValueError, match="Variable plain is not valid JSON"):
        Variable.get("plain", deserialize_json=True)


def test_default_is_airflow_3s_name_for_default_var() -> None:
    # airflow.sdk.Variable.get(key, default=...) in Airflow 3, default_var in Airflow 2.
    assert Variable.get("absent", default="fallback") == "fallback"
    assert Variable.get("absent", default=None) is None
    assert Variable.get("absent", default={"a": 1}, deserialize_json=True) == {"a": 1}
    assert Variable.get("plain", default="unused") == "text"
    assert Variable.get("doc", default=None, deserialize_json=True) == {"a": [1, 2]}
    with pytest.raises(TypeError, match="not both"):
        Variable.get("absent", default_var=1, default=2)
    with pytest.raises(KeyError):
        Variable.get("absent", deserialize_json=True)


def test_tasks_cannot_write_variables() -> None:
    with pytest.raises(TaskCannotWriteConfig, match="POST /api/v2/variables"):
        Variable.set("k", "v")
    with pytest.raises(TaskCannotWriteConfig):
        Variable.delete("k")


def test_connections_from_the_request() -> None:
    conn = BaseHook.get_connection("db")
    assert (conn.conn_id, conn.conn_type, conn.host, conn.schema) == (
        "db",
        "postgres",
        "db.internal",
        "warehouse",
    )
    assert (conn.login, conn.password, conn.port) == ("etl", "p@ss/word", 5432)
    assert conn.extra_dejson == {"sslmode": "require"}
    assert (
        conn.get_uri() == "postgres://etl:p%40ss%2Fword@db.internal:5432/warehouse?sslmode=require"
    )
    assert Connection.get("api").extra_dejson == {"timeout": 3}
    assert "p@ss" not in repr(conn)


def test_uri_round_trip() -> None:
    for uri in [
        "postgres://etl:p%40ss%2Fword@db.internal:5432/warehouse?sslmode=require",
        "http://https%3A%2F%2Fapi.example/?__extra__=%7B%22timeout%22%3A+3%7D",
        "aws://?region_name=eu-west-1",
        "mysql://user@host/db",
    ]:
        conn = Connection(conn_id="c", uri=uri)
        assert Connection(conn_id="c", uri=conn.get_uri()) == conn


def test_uri_parsing_like_airflow() -> None:
    conn = Connection(conn_id="c", uri="postgresql://u:p%3Aw@Host.Example:5439/my%2Fdb?a=1&b=")
    assert conn.conn_type == "postgres"
    assert (conn.login, conn.password, conn.host, conn.port, conn.schema) == (
        "u",
        "p:w",
        "host.example",
        5439,
        "my/db",
    )
    assert conn.extra_dejson == {"a": "1", "b": ""}
    nested = Connection(conn_id="c", uri="http-custom://https://site.example:8443/api")
    assert (nested.conn_type, nested.host, nested.port, nested.schema) == (
        "http_custom",
        "https://site.example",
        8443,
        "api",
    )
    extra = Connection(conn_id="c", uri='gcp://?__extra__={"nested": {"k": 1}}')
    assert extra.extra_dejson == {"nested": {"k": 1}}


def test_connections_fall_back_to_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_MY_S3", "aws://key:secret@/?region_name=eu-west-1")
    monkeypatch.setenv(
        "AIRFLOW_CONN_JSONCONN",
        json.dumps({"conn_type": "http", "host": "h", "port": 80, "extra": {"x": "y"}}),
    )
    s3 = BaseHook.get_connection("my_s3")
    assert (s3.conn_type, s3.login, s3.password, s3.extra_dejson) == (
        "aws",
        "key",
        "secret",
        {"region_name": "eu-west-1"},
    )
    as_json = BaseHook.get_connection("jsonconn")
    assert (as_json.host, as_json.port, as_json.extra_dejson) == ("h", 80, {"x": "y"})


def test_missing_connection() -> None:
    from ledgerflow.sdk import exceptions

    expected: Any = getattr(exceptions, "AirflowNotFoundException", KeyError)
    with pytest.raises(expected, match="The conn_id `nope` isn't defined"):
        BaseHook.get_connection("nope")


def test_secret_values_for_masking() -> None:
    models.configure({"db_password": "hunter22", "plain": "x" * 10}, {"c": {"password": "pw1"}})
    assert models.secret_values() == ["hunter22", "pw1"]


def test_variables_and_connections_in_a_task_and_its_templates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW_VAR_ENV_ONLY", "from-env")
    source = """
from ledgerflow.sdk import DAG, PythonOperator
from ledgerflow.sdk.models import BaseHook, Variable

def use(templated, **context):
    return {
        "templated": templated,
        "variable": Variable.get("cfg", deserialize_json=True)["region"],
        "host": BaseHook.get_connection("wh").host,
        "context_var": context["var"]["value"].get("missing", "dflt"),
        "context_conn": context["conn"].wh.login,
    }

with DAG("t"):
    PythonOperator(task_id="x", python_callable=use, op_kwargs={"templated": (
        "{{ var.value.env_only }} {{ var.json.cfg.region }} {{ conn.wh.host }}:{{ conn.wh.port }} "
        "{{ var.value.get('nope', 'd') }} {{ conn.wh.extra_dejson.role }}"
    )})
"""
    outcome = run(
        source,
        "x",
        variables={"cfg": '{"region": "eu"}'},
        connections={
            "wh": {
                "conn_type": "snowflake",
                "host": "acct",
                "port": 443,
                "login": "me",
                "extra": '{"role": "etl"}',
            }
        },
    )
    assert outcome["status"] == "success", outcome
    assert outcome["return_value"] == {
        "templated": "from-env eu acct:443 d etl",
        "variable": "eu",
        "host": "acct",
        "context_var": "dflt",
        "context_conn": "me",
    }


def test_missing_variable_in_a_template_names_the_variable() -> None:
    source = """
from ledgerflow.sdk import DAG, BashOperator
with DAG("t"):
    BashOperator(task_id="x", bash_command="echo {{ var.value.not_set }}")
"""
    outcome = run(source, "x")
    assert outcome["status"] == "failed"
    assert outcome["error_type"] == "KeyError"
    assert "field 'bash_command'" in outcome["error"]
    assert "Variable not_set does not exist" in outcome["error"]
    assert outcome["retryable"] is True
