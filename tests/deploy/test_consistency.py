"""Deployment files and code agree: variables, ports, probe paths, commands.

- every variable the code reads is classified (tests/deploy/contract.py), every required
  one is set for each process in compose and in every Kubernetes overlay, no file sets a
  ``LEDGERFLOW_*`` variable the code does not know (a typo), and each process's
  environment makes a valid ``Settings``;
- every port and probe path in compose and the manifests is one the code serves;
- every command line parses with the CLI it runs.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest
from ledgerflow.cli import init_command
from ledgerflow.cli.main import build_parser
from ledgerflow.common.probes import PROBE_PATHS
from ledgerflow.common.settings import Settings

from .compose_file import resolved, service_environment
from .contract import (
    OPTIONAL,
    PROCESSES,
    REQUIRED,
    ROOT,
    SHARED,
    known_variables,
    settings_variables,
)
from .kustomize_lite import pod_specs
from .test_kubernetes import OVERLAYS, component, config_map, of_kind, rendered

DUMMY_SECRET = "dummy-secret-value-for-the-check"


Serves = Callable[[str], bool]


@pytest.fixture(scope="module")
def routes() -> dict[str, Serves]:
    """Whether the api and ui apps route a GET of a path: asked of the apps themselves
    (without their lifespan, so a handler may fail; only "404 Not Found" means no)."""
    import httpx
    from ledgerflow.api.app import create_app as create_api
    from ledgerflow.ui.app import create_app as create_ui

    settings = Settings(admin_password="x", secret_key="k" * 32)

    def router(app: Any) -> Serves:
        async def status(path: str) -> int:
            transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
            async with httpx.AsyncClient(transport=transport, base_url="http://probe") as c:
                return (await c.get(path)).status_code

        return lambda path: asyncio.run(status(path)) not in (404, 405)

    return {"api": router(create_api(settings)), "ui": router(create_ui(settings))}


def _clean_settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for name in list(os.environ):
        if name.startswith("LEDGERFLOW_"):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return Settings()


# ---------------------------------------------------------------------- the variables
def test_every_variable_the_code_reads_is_classified() -> None:
    known = known_variables()
    unclassified = known - set(REQUIRED) - set(OPTIONAL)
    assert not unclassified, (
        f"classify {sorted(unclassified)} in tests/deploy/contract.py (REQUIRED for which "
        "processes, or OPTIONAL with why the default is safe), then set it in "
        "deploy/compose.yaml and deploy/kubernetes/ if required"
    )
    stale = (set(REQUIRED) | set(OPTIONAL)) - known
    assert not stale, f"{sorted(stale)} are no longer read by any code: drop them"
    assert not set(REQUIRED) & set(OPTIONAL)
    assert set().union(*REQUIRED.values()) <= PROCESSES


# compose ------------------------------------------------------------------------------
COMPOSE_PROCESSES = sorted(PROCESSES)


@pytest.mark.parametrize("process", COMPOSE_PROCESSES)
def test_compose_sets_what_each_process_needs(
    process: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = service_environment(process)
    missing = {v for v, who in REQUIRED.items() if process in who} - set(env)
    assert not missing, f"compose service {process} lacks {sorted(missing)}"
    unknown = {k for k in env if k.startswith("LEDGERFLOW_")} - known_variables()
    assert not unknown, f"compose service {process} sets unknown {sorted(unknown)}"
    _clean_settings(env, monkeypatch)  # the values make a valid configuration


def test_compose_shares_one_kafka_layout() -> None:
    for variable in SHARED:
        values = {
            name: service_environment(name)[variable]
            for name in COMPOSE_PROCESSES
            if variable in service_environment(name)
        }
        assert len(set(values.values())) <= 1, f"{variable} differs: {values}"


# Kubernetes ---------------------------------------------------------------------------
def _workload_environments(overlay: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(process, {variable: value})`` of each workload; Secret values are dummies."""
    config = config_map(overlay)
    for res, pod in pod_specs(list(rendered(overlay))):
        [container] = pod["containers"]
        env: dict[str, str] = {}
        for source in container.get("envFrom", []):
            assert source["configMapRef"]["name"] == "ledgerflow-config"
            env.update(config)
        for item in container.get("env", []):
            env[item["name"]] = item.get("value", DUMMY_SECRET)
        yield component(res), env


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_set_what_each_process_needs(
    overlay: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = set()
    for process, env in _workload_environments(overlay):
        seen.add(process)
        missing = {v for v, who in REQUIRED.items() if process in who} - set(env)
        assert not missing, f"{overlay}: {process} lacks {sorted(missing)}"
        unknown = {k for k in env if k.startswith("LEDGERFLOW_")} - known_variables()
        assert not unknown, f"{overlay}: {process} sets unknown {sorted(unknown)}"
        with monkeypatch.context() as m:
            _clean_settings(env, m)
    assert seen >= PROCESSES - {"load-examples"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifests_share_one_kafka_layout(overlay: str) -> None:
    for variable in SHARED:
        values = {p: env[variable] for p, env in _workload_environments(overlay) if variable in env}
        kafka_clients = {p: v for p, v in values.items() if p != "ui"}
        assert len(set(kafka_clients.values())) <= 1, f"{overlay}: {variable}: {values}"


def test_the_image_sets_only_known_variables() -> None:
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    image_env = set(re.findall(r"\b(LEDGERFLOW_[A-Z_]+)=", text))
    assert image_env and image_env <= settings_variables()


# --------------------------------------------------------------- ports and probe paths
def _listens(port: int, env: dict[str, str]) -> bool:
    """Whether the process with ``env`` listens on ``port`` at all."""
    names = ("LEDGERFLOW_PROBE_PORT", "LEDGERFLOW_API_PORT", "LEDGERFLOW_UI_PORT")
    return str(port) in {env.get(n) for n in names}


def _serves(port: int, path: str, env: dict[str, str], routes: dict[str, Serves]) -> bool:
    """Whether the process with ``env`` answers ``GET path`` on ``port``."""
    return (
        (str(port) == env.get("LEDGERFLOW_PROBE_PORT") and path in PROBE_PATHS)
        or (str(port) == env.get("LEDGERFLOW_API_PORT") and routes["api"](path))
        or (str(port) == env.get("LEDGERFLOW_UI_PORT") and routes["ui"](path))
    )


@pytest.mark.parametrize("process", ["projector", "api", "scheduler", "executor", "ui"])
def test_compose_health_checks_ask_what_the_code_serves(
    process: str, routes: dict[str, Serves]
) -> None:
    service = resolved()["services"][process]
    env = service_environment(process)
    [url] = [part for part in service["healthcheck"]["test"] if part.startswith("http://")]
    parts = urlsplit(url)
    assert parts.hostname == "127.0.0.1"
    assert _serves(parts.port or 80, parts.path, env, routes), url
    for published in service.get("ports", []):
        assert str(published["target"]) in (
            env.get("LEDGERFLOW_API_PORT"),
            env.get("LEDGERFLOW_UI_PORT"),
        )


def test_the_ui_finds_the_api_in_compose() -> None:
    url = urlsplit(service_environment("ui")["LEDGERFLOW_API_URL"])
    assert url.hostname in resolved()["services"]
    assert str(url.port) == service_environment(url.hostname or "")["LEDGERFLOW_API_PORT"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_probes_ask_what_the_code_serves(overlay: str, routes: dict[str, Serves]) -> None:
    envs = dict(_workload_environments(overlay))
    for res in of_kind(overlay, "Deployment"):
        env = envs[component(res)]
        [container] = res["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for port in ports.values():
            assert _listens(port, env), f"{component(res)}: nothing listens on {port}"
        for probe in ("readinessProbe", "livenessProbe"):
            http = container[probe]["httpGet"]
            port = ports[http["port"]]
            assert _serves(port, http["path"], env, routes), (component(res), probe)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ui_finds_the_api_service(overlay: str) -> None:
    url = urlsplit(config_map(overlay)["LEDGERFLOW_API_URL"])
    services = {s["metadata"]["name"]: s for s in of_kind(overlay, "Service")}
    assert url.hostname in services
    assert url.port in {p["port"] for p in services[url.hostname or ""]["spec"]["ports"]}


# --------------------------------------------------------------------- command lines
def _check_command(argv: list[str]) -> None:
    """``argv`` as the container runs it (after tini): the CLI or the init module."""
    if argv[:3] == ["python", "-m", "ledgerflow.cli.init_command"]:
        init_command.build_parser().parse_args(argv[3:])
    elif argv[:3] == ["sh", "-c"] or argv[:2] == ["sh", "-c"]:
        script = argv[2]
        for command in re.findall(r"exec (ledgerflow [^;]+)", script):
            _check_command(shlex.split(command))
    else:
        assert argv[0] == "ledgerflow", argv
        args = build_parser().parse_args(argv[1:])
        assert args.handler.__name__ != "show_help", argv


def _after_tini(entrypoint: list[str]) -> list[str]:
    assert entrypoint[:2] == ["tini", "--"], entrypoint
    return entrypoint[2:]


@pytest.mark.parametrize(
    "process", ["init", "projector", "api", "scheduler", "executor", "ui", "load-examples"]
)
def test_compose_commands_parse(process: str) -> None:
    service = resolved()["services"][process]
    entrypoint = service.get("entrypoint") or ["tini", "--", "ledgerflow"]
    _check_command(_after_tini(entrypoint) + list(service.get("command") or []))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_manifest_commands_parse(overlay: str) -> None:
    for _res, pod in pod_specs(list(rendered(overlay))):
        [container] = pod["containers"]
        entrypoint = container.get("command") or ["tini", "--", "ledgerflow"]
        _check_command(_after_tini(entrypoint) + list(container.get("args", [])))
