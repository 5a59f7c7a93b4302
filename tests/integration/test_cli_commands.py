"""A few CLI commands against a real API, projector, Kafka and Postgres: submit, show,
list-runs and delete a DAG, read the event log with ``events tail``, ``version``."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from ledgerflow.cli.main import main
from ledgerflow.common.settings import Settings

from tests.integration.test_api_schemathesis import _free_port, _services, _wait_until

pytestmark = pytest.mark.integration

PASSWORD = "s3cret-cli"
DAG = """\
from ledgerflow.sdk import DAG, task

with DAG("cli_dag", tags=["cli"]):
    @task
    def hi():
        return 1

    hi()
"""


@pytest.fixture
def live(
    fresh_database: str, kafka_bootstrap: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> Iterator[Settings]:
    port = _free_port()
    prefix = f"dev-cli-{uuid.uuid4().hex[:8]}"
    settings = Settings(
        kafka_bootstrap=kafka_bootstrap,
        database_url=fresh_database,
        topic_prefix=prefix,
        partitions=1,
        work_partitions=1,
        admin_password=PASSWORD,
        api_host="127.0.0.1",
        api_port=port,
    )
    for name, value in {
        "LEDGERFLOW_KAFKA_BOOTSTRAP": kafka_bootstrap,
        "LEDGERFLOW_TOPIC_PREFIX": prefix,
        "LEDGERFLOW_PARTITIONS": "1",
        "LEDGERFLOW_API_URL": f"http://127.0.0.1:{port}",
        "LEDGERFLOW_ADMIN_PASSWORD": PASSWORD,
        "LEDGERFLOW_CONFIG": str(tmp_path / "none.toml"),
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("LEDGERFLOW_API_KEY", raising=False)
    monkeypatch.chdir(tmp_path)
    with _services(settings):
        _wait_until(lambda: requests.get(f"http://127.0.0.1:{port}/api/v2/version").ok)
        yield settings


def test_cli_against_the_api(
    live: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "cli_dag.py").write_text(DAG)
    assert main(["dags", "submit", "cli_dag.py"]) == 0
    capsys.readouterr()

    def shown() -> bool:
        return main(["-o", "json", "dags", "show", "cli_dag"]) == 0

    _wait_until(shown)
    capsys.readouterr()
    assert main(["-o", "json", "dags", "show", "cli_dag"]) == 0
    body = json.loads(capsys.readouterr().out)
    assert body["dag"]["dag_id"] == "cli_dag"
    assert [t["task_id"] for t in body["tasks"]] == ["hi"]

    assert main(["-o", "yaml", "dags", "list-runs", "cli_dag"]) == 0
    assert capsys.readouterr().out == "[]\n"

    assert main(["-o", "json", "version"]) == 0
    assert "api" in json.loads(capsys.readouterr().out)

    assert main(["events", "tail", "--topic", "dags", "--from", "beginning", "--max", "1"]) == 0
    [line] = capsys.readouterr().out.splitlines()
    envelope = json.loads(line)
    assert envelope["data"]["type"] == "DagVersionPublished"
    assert envelope["data"]["dag_id"] == "cli_dag"

    assert main(["dags", "delete", "cli_dag", "--yes"]) == 0
    deadline = time.monotonic() + 30
    while main(["dags", "show", "cli_dag"]) == 0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert "not found" in capsys.readouterr().err
