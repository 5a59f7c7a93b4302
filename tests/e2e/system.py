"""A whole ledgerflow system for end-to-end tests: every service its own process.

Tests drive it only as a user would: the HTTP API, the CLI and the topics. Each system
gets its own topic prefix and database on the shared test Kafka and Postgres.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from ledgerflow.common.secrets import generate_key

SERVICES: dict[str, list[str]] = {
    "projector": ["projector"],
    "api": ["api"],
    "scheduler": ["scheduler"],
    "executor": ["executor", "--queue", "default", "--slots", "4"],
}
# Started on request (``system.start("ui")``), not by ``start_all``: only the browser
# tests need the web UI.
OPTIONAL_SERVICES: dict[str, list[str]] = {"ui": ["ui"]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class System:
    kafka_bootstrap: str
    database_url: str
    workdir: Path
    prefix: str = field(default_factory=lambda: f"e2e-{uuid.uuid4().hex[:8]}")
    password: str = field(default_factory=lambda: uuid.uuid4().hex)
    fernet_key: str = field(default_factory=generate_key)  # shared by api and executors
    api_port: int = field(default_factory=free_port)
    ui_port: int = field(default_factory=free_port)
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    # Extra LEDGERFLOW_* settings for every service (e.g. short timeouts in fault tests).
    extra_env: dict[str, str] = field(default_factory=dict)
    _token: str | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.ui_port}"

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LEDGERFLOW_")}
        env.update(
            LEDGERFLOW_KAFKA_BOOTSTRAP=self.kafka_bootstrap,
            LEDGERFLOW_DATABASE_URL=self.database_url,
            LEDGERFLOW_TOPIC_PREFIX=self.prefix,
            LEDGERFLOW_API_PORT=str(self.api_port),
            LEDGERFLOW_API_URL=self.api_url,
            LEDGERFLOW_UI_HOST="127.0.0.1",
            LEDGERFLOW_UI_PORT=str(self.ui_port),
            LEDGERFLOW_ADMIN_PASSWORD=self.password,
            LEDGERFLOW_SECRET_KEY="e2e-" + self.password,
            LEDGERFLOW_FERNET_KEY=self.fernet_key,
            LEDGERFLOW_PARTITIONS="3",
            LEDGERFLOW_WORK_PARTITIONS="3",
            PYTHONUNBUFFERED="1",
        )
        env.update(self.extra_env)
        return env

    # ------------------------------------------------------------------ processes
    def start(self, name: str, *, args: list[str] | None = None) -> None:
        """Start service ``name`` (``args``: its CLI arguments, for a second instance of
        a service under another name, e.g. ``executor-b``)."""
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the process
        argv = args or {**SERVICES, **OPTIONAL_SERVICES}[name]
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "ledgerflow.cli", *argv],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
        )

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.procs[name]
        proc.send_signal(sig)
        proc.wait(timeout=30)

    def start_all(self) -> None:
        # The projector creates the schema and the topics; start it first.
        for name in SERVICES:
            self.start(name)
        self.wait_healthy()

    def stop_all(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 20
        for proc in self.procs.values():
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def logs(self) -> str:
        out = []
        for name in self.procs:
            path = self.workdir / f"{name}.log"
            if path.exists():
                out.append(f"----- {name} -----\n" + path.read_text(errors="replace")[-4000:])
        return "\n".join(out)

    def check_alive(self) -> None:
        dead = {n: p.returncode for n, p in self.procs.items() if p.poll() is not None}
        if dead:
            raise AssertionError(f"services exited: {dead}\n{self.logs()}")

    # ------------------------------------------------------------------ HTTP
    def wait_healthy(self, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                r = httpx.get(f"{self.api_url}/health", timeout=2)
                if r.status_code == 200:
                    return
                last = r.text
            except httpx.HTTPError as exc:
                last = exc
            time.sleep(0.2)
        raise AssertionError(f"API not healthy after {timeout}s: {last}\n{self.logs()}")

    def token(self) -> str:
        if self._token is None:
            r = httpx.post(
                f"{self.api_url}/auth/token",
                json={"username": "admin", "password": self.password},
                timeout=10,
            )
            r.raise_for_status()
            self._token = r.json()["access_token"]
        return self._token

    def client(self) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, timeout=30, headers={"Authorization": f"Bearer {self.token()}"}
        )

    def wait_run(self, dag_id: str, run_id: str, timeout: float = 120) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while time.monotonic() < deadline:
                r = c.get(f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")
                if r.status_code == 200 and r.json()["state"] in ("success", "failed"):
                    return r.json()
                time.sleep(0.2)
        raise AssertionError(f"run {dag_id}/{run_id} did not finish in {timeout}s\n{self.logs()}")

    def wait_dag(self, dag_id: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        with self.client() as c:
            while time.monotonic() < deadline:
                if c.get(f"/api/v2/dags/{dag_id}").status_code == 200:
                    return
                time.sleep(0.1)
        raise AssertionError(f"DAG {dag_id} not visible in {timeout}s")
