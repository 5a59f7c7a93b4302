"""`ledgerflow` argument parsing: every command maps to its handler and options."""

from __future__ import annotations

import pytest
from ledgerflow.cli import client_commands as client
from ledgerflow.cli import service_commands as services
from ledgerflow.cli.errors import CliError
from ledgerflow.cli.main import build_parser, main


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


@pytest.mark.parametrize(
    ("argv", "handler"),
    [
        (["api"], services.cmd_api),
        (["projector"], services.cmd_projector),
        (["scheduler"], services.cmd_scheduler),
        (["executor"], services.cmd_executor),
        (["ui"], services.cmd_ui),
        (["dags", "submit", "a.py"], client.cmd_dags_submit),
        (["dags", "list"], client.cmd_dags_list),
        (["dags", "trigger", "d"], client.cmd_dags_trigger),
        (["dags", "pause", "d"], client.cmd_dags_pause),
        (["dags", "unpause", "d"], client.cmd_dags_unpause),
        (["runs", "show", "d", "r"], client.cmd_runs_show),
        (["runs", "list", "d"], client.cmd_runs_list),
        (["tasks", "logs", "d", "r", "t"], client.cmd_tasks_logs),
    ],
)
def test_each_command_has_its_handler(argv: list[str], handler: object) -> None:
    assert parse(*argv).handler is handler


def test_service_options() -> None:
    assert parse("projector").rebuild is False
    assert parse("projector", "--rebuild").rebuild is True
    args = parse("executor")
    assert (args.queue, args.slots) == ("default", 4)
    args = parse("executor", "--queue", "gpu", "--slots", "2")
    assert (args.queue, args.slots) == ("gpu", 2)


def test_standalone_options() -> None:
    args = parse("standalone")
    assert (args.load_examples, args.executors, args.state_dir) == (None, 1, ".ledgerflow")
    args = parse("standalone", "--load-examples", "examples", "--executors", "3")
    assert (args.load_examples, args.executors) == ("examples", 3)


def test_trigger_options() -> None:
    args = parse(
        "dags", "trigger", "etl", "--conf", '{"a": 1}', "--run-id", "r1", "--wait", "--timeout", "5"
    )
    assert (args.dag_id, args.conf, args.run_id, args.wait, args.timeout) == (
        "etl",
        '{"a": 1}',
        "r1",
        True,
        5.0,
    )
    args = parse("dags", "trigger", "etl")
    assert (args.conf, args.run_id, args.wait) == (None, None, False)


def test_submit_takes_several_files() -> None:
    assert parse("dags", "submit", "a.py", "b.py").files == ["a.py", "b.py"]


def test_logs_try_defaults_to_latest() -> None:
    assert parse("tasks", "logs", "d", "r", "t").try_number is None
    assert parse("tasks", "logs", "d", "r", "t", "--try", "2").try_number == 2


@pytest.mark.parametrize(
    "argv",
    [
        ["executor", "--slots", "0"],
        ["standalone", "--executors", "0"],
        ["dags", "submit"],
        ["dags", "trigger"],
        ["tasks", "logs", "d", "r", "t", "--try", "0"],
        ["nonsense"],
    ],
)
def test_bad_arguments_are_usage_errors(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exc:
        parse(*argv)
    assert exc.value.code == 2
    assert "usage: ledgerflow" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [[], ["dags"], ["runs"], ["tasks"]])
def test_a_group_without_a_command_prints_help(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert "usage: ledgerflow" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{bad", "--conf is not valid JSON"),
        ("[1, 2]", "--conf must be a JSON object"),
    ],
)
def test_conf_must_be_a_json_object(text: str, message: str) -> None:
    with pytest.raises(CliError, match=message):
        client.parse_conf(text)
    assert client.parse_conf('{"x": [1]}') == {"x": [1]}
    assert client.parse_conf(None) == {}


def test_bad_configuration_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LEDGERFLOW_API_PORT", "not-a-port")
    assert main(["dags", "list"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("ledgerflow: invalid configuration: LEDGERFLOW_API_PORT")
    assert len(err.strip().splitlines()) == 1
