"""`ledgerflow standalone`: credentials, supervision of children, the start-up sequence.

The real services are replaced by small stand-in processes (a fake API on a local port,
sleepers), so this runs without Kafka or Postgres.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import stat
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.standalone import (
    ChildSpec,
    Supervisor,
    build_specs,
    load_or_create_credentials,
    run_standalone,
)
from ledgerflow.common.settings import Settings

SLEEPER = [sys.executable, "-c", "import time; time.sleep(60)"]


def test_credentials_are_generated_once_and_reused(tmp_path: Path) -> None:
    first = load_or_create_credentials(tmp_path, {})
    assert len(first["LEDGERFLOW_ADMIN_PASSWORD"]) >= 16 and first["LEDGERFLOW_SECRET_KEY"]
    env_file = tmp_path / "standalone.env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    assert load_or_create_credentials(tmp_path, {}) == first


def test_credentials_from_the_environment_win(tmp_path: Path) -> None:
    creds = load_or_create_credentials(tmp_path, {"LEDGERFLOW_ADMIN_PASSWORD": "mine"})
    assert creds["LEDGERFLOW_ADMIN_PASSWORD"] == "mine"
    assert "mine" not in (tmp_path / "standalone.env").read_text()  # not written to disk


def test_the_services_and_their_order() -> None:
    names = [s.name for s in build_specs(2)]
    assert names == ["projector", "api", "scheduler", "executor-1", "executor-2", "ui"]
    executor = build_specs(1, queue="gpu", slots=8)[3]
    assert list(executor.argv[1:]) == [
        "-m",
        "ledgerflow.cli.main",
        "executor",
        "--queue",
        "gpu",
        "--slots",
        "8",
    ]


def test_supervisor_stops_children_and_kills_the_stubborn(tmp_path: Path) -> None:
    stubborn = [
        sys.executable,
        "-c",
        "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('up', flush=True); time.sleep(60)",
    ]
    sup = Supervisor(
        [ChildSpec("polite", SLEEPER), ChildSpec("stubborn", stubborn)],
        env=os.environ,
        log_dir=tmp_path,
        grace_seconds=0.5,
    )
    sup.start()
    deadline = time.monotonic() + 10
    while "up" not in (tmp_path / "stubborn.log").read_text():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sup.first_exited() is None
    codes = sup.stop()
    assert codes == {"polite": -signal.SIGTERM, "stubborn": -signal.SIGKILL}
    assert sup.stop() == codes  # a second stop is harmless


def test_supervisor_notices_a_dead_child(tmp_path: Path) -> None:
    dying = [
        sys.executable,
        "-c",
        "import sys; print('boom'); "
        """print('{"level": "error", "logger": "x.y", "msg": "gone", "exc": "Traceback: E"}'); """
        "sys.exit(3)",
    ]
    sup = Supervisor(
        [ChildSpec("ok", SLEEPER), ChildSpec("dying", dying)], env=os.environ, log_dir=tmp_path
    )
    sup.start()
    try:
        deadline = time.monotonic() + 10
        while sup.first_exited() is None:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert sup.first_exited() == ("dying", 3)
        assert sup.log_tail("dying") == "boom\nerror x.y: gone\nTraceback: E"
    finally:
        sup.stop()


# A stand-in API: /health, /auth/token, /api/v2/dagFiles (422 for bad.py); it writes
# each accepted or rejected file name to RECORD so the test knows it was called.
FAKE_API = textwrap.dedent("""
    import json, os, sys
    from http.server import BaseHTTPRequestHandler, HTTPServer

    RECORD = sys.argv[2]

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def reply(self, status, body):
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            self.reply(200, {"status": "healthy"}) if self.path == "/health" else self.reply(404, {})

        def do_POST(self):
            body = json.loads(self.rfile.read(int(self.headers["content-length"])))
            if self.path == "/auth/token":
                ok = body["password"] == os.environ["LEDGERFLOW_ADMIN_PASSWORD"]
                return self.reply(200 if ok else 401, {"access_token": "t"})
            if self.headers.get("authorization") != "Bearer t":
                return self.reply(401, {})
            with open(RECORD, "a") as f:
                f.write(body["filename"] + "\\n")
            if body["filename"] == "bad.py":
                return self.reply(422, {"detail": {"message": "boom", "lineno": 2, "kind": "syntax"}})
            self.reply(201, {"dags": [{"dag_id": body["filename"][:-3], "version_id": "v"}]})

    HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
""")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _args(**overrides: object) -> argparse.Namespace:
    base = dict(
        load_examples=None,
        executors=1,
        queue="default",
        slots=4,
        state_dir=".ledgerflow",
        startup_timeout=20.0,
        grace=2.0,
    )
    return argparse.Namespace(**(base | overrides))


def test_standalone_starts_loads_examples_prints_credentials_and_stops_on_sigterm(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    record = tmp_path / "submitted.txt"
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "good.py").write_text("dag\n")
    (examples / "bad.py").write_text("def (\n")
    specs = [
        ChildSpec("api", [sys.executable, "-c", FAKE_API, str(port), str(record)]),
        ChildSpec("worker", SLEEPER),
    ]
    ctx = CliContext(
        settings=Settings(api_url=f"http://127.0.0.1:{port}"), environ={"PATH": os.environ["PATH"]}
    )

    def stop_when_loaded() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if record.exists() and len(record.read_text().split()) == 2:
                time.sleep(0.3)  # let the banner print
                break
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=stop_when_loaded, daemon=True).start()
    state_dir = tmp_path / "state"
    code = run_standalone(
        _args(load_examples=str(examples), state_dir=str(state_dir)), ctx, specs=specs
    )

    out, err = capsys.readouterr()
    password = (
        (state_dir / "standalone.env").read_text().split("LEDGERFLOW_ADMIN_PASSWORD=")[1].split()[0]
    )
    assert code == 0, err
    assert f"password:  {password}" in out
    assert f"API:       http://127.0.0.1:{port}" in out
    assert "UI:        http://127.0.0.1:8080" in out
    assert "username:  admin" in out
    assert "loaded good.py: good" in err
    assert f"skipped {examples / 'bad.py'}:2: boom" in err
    assert "received SIGTERM, stopping" in err
    assert (state_dir / "logs" / "worker.log").exists()


def test_standalone_stops_everything_when_a_child_dies(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()
    specs = [
        ChildSpec("api", [sys.executable, "-c", FAKE_API, str(port), str(tmp_path / "r")]),
        ChildSpec(
            "scheduler",
            [
                sys.executable,
                "-c",
                "import time, sys; time.sleep(1.5); print('lost the broker'); sys.exit(2)",
            ],
        ),
        ChildSpec("worker", SLEEPER),
    ]
    ctx = CliContext(
        settings=Settings(api_url=f"http://127.0.0.1:{port}"), environ=dict(os.environ)
    )
    code = run_standalone(_args(state_dir=str(tmp_path / "state")), ctx, specs=specs)
    err = capsys.readouterr().err
    assert code == 1
    assert "the scheduler process exited with code 2; stopping everything" in err
    assert "lost the broker" in err
    assert "worker (-15)" in err  # the others were stopped


def test_standalone_gives_up_when_the_api_never_gets_healthy(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    port = _free_port()  # nothing listens there
    ctx = CliContext(
        settings=Settings(api_url=f"http://127.0.0.1:{port}"), environ=dict(os.environ)
    )
    code = run_standalone(
        _args(state_dir=str(tmp_path / "s"), startup_timeout=1.0),
        ctx,
        specs=[ChildSpec("worker", SLEEPER)],
    )
    assert code == 1
    assert "was not healthy after 1s" in capsys.readouterr().err
