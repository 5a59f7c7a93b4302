"""deploy/compose.yaml, checked by compose itself (offline) and for what the issue asks."""

from __future__ import annotations

import re

import pytest
import yaml

from .compose_file import (
    COMPOSE_FILE,
    ENV_EXAMPLE,
    REQUIRED_SECRETS,
    clean_environment,
    resolved,
    run_compose,
    service_environment,
)
from .contract import is_secret

APP_SERVICES = ("init", "projector", "api", "scheduler", "executor", "ui", "load-examples")
LONG_RUNNING = ("projector", "api", "scheduler", "executor", "ui")


def test_compose_accepts_the_file() -> None:
    result = run_compose("config", "--quiet", env=clean_environment(REQUIRED_SECRETS))
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("variable", sorted(REQUIRED_SECRETS))
def test_each_secret_is_required(variable: str) -> None:
    env = clean_environment({k: v for k, v in REQUIRED_SECRETS.items() if k != variable})
    result = run_compose("config", "--quiet", env=env)
    assert result.returncode != 0
    assert f"required variable {variable} is missing a value" in result.stderr


def test_the_env_example_lists_exactly_the_required_variables_empty() -> None:
    text = ENV_EXAMPLE.read_text(encoding="utf-8")
    assigned = dict(re.findall(r"^([A-Z][A-Z0-9_]*)=(.*)$", text, flags=re.M))
    assert assigned == dict.fromkeys(REQUIRED_SECRETS, "")  # names only, never values
    compose = _without_comments(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert set(re.findall(r"\$\{([A-Z0-9_]+):\?", compose)) == set(REQUIRED_SECRETS)
    optional = set(re.findall(r"^# ([A-Z][A-Z0-9_]*)=", text, flags=re.M))
    assert optional == set(re.findall(r"\$\{([A-Z0-9_]+):-", compose))


def _without_comments(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))


def test_no_secret_value_is_written_in_the_file() -> None:
    raw = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    for name, service in raw["services"].items():
        env = service.get("environment") or {}
        for key, value in env.items() if isinstance(env, dict) else ():
            if is_secret(key) or key == "POSTGRES_PASSWORD":
                assert "${" in str(value) and ":?" in str(value), f"{name}.{key} is not ${{VAR:?}}"


def test_kafka_is_the_official_image_in_kraft_mode_with_a_volume() -> None:
    kafka = resolved()["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "broker,controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    data_dir = kafka["environment"]["KAFKA_LOG_DIRS"]
    assert any(v["type"] == "volume" and v["target"] == data_dir for v in kafka["volumes"])
    postgres = resolved()["services"]["postgres"]
    assert any(v["type"] == "volume" for v in postgres["volumes"])
    assert set(resolved()["volumes"]) >= {"kafka-data", "postgres-data"}


def test_every_image_is_pinned() -> None:
    for name, service in resolved()["services"].items():
        image = service["image"]
        assert ":" in image.rsplit("/", 1)[-1] and not image.endswith(":latest"), name


def test_schedulers_and_executors_run_several_and_executors_scale() -> None:
    services = resolved()["services"]
    assert services["scheduler"]["deploy"]["replicas"] >= 2
    executor = services["executor"]
    assert executor["deploy"]["replicas"] >= 1
    # `--scale executor=N` needs no fixed name and no host port.
    assert "container_name" not in executor and not executor.get("ports")


def test_startup_order_waits_for_health_not_just_start() -> None:
    services = resolved()["services"]
    allowed = {"service_healthy", "service_completed_successfully", "service_started"}
    for name in APP_SERVICES:
        depends = services[name]["depends_on"]
        assert depends, name
        assert {d["condition"] for d in depends.values()} <= allowed, name
    assert services["init"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["init"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("projector", "api", "scheduler", "executor"):
        assert services[name]["depends_on"]["init"]["condition"] == (
            "service_completed_successfully"
        )
    assert services["ui"]["depends_on"]["api"]["condition"] == "service_healthy"
    assert services["load-examples"]["depends_on"]["api"]["condition"] == "service_healthy"


def test_every_long_running_service_has_a_health_check_and_restarts() -> None:
    services = resolved()["services"]
    for name in (*LONG_RUNNING, "kafka", "postgres"):
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), name
        assert services[name]["restart"] == "unless-stopped", name
    for name in ("init", "load-examples"):
        assert services[name]["restart"] == "no", name


def test_app_containers_are_locked_down() -> None:
    services = resolved()["services"]
    for name in APP_SERVICES:
        service = services[name]
        assert service["read_only"] is True, name
        assert service["cap_drop"] == ["ALL"], name
        assert "no-new-privileges:true" in service["security_opt"], name
        assert service.get("user") in (None, "10001", "10001:10001"), name  # the image's user


def test_only_the_ui_api_and_jaeger_ui_are_published_on_localhost() -> None:
    published = {
        name: [(p.get("host_ip"), p["published"], p["target"]) for p in service.get("ports", [])]
        for name, service in resolved()["services"].items()
        if service.get("ports")
    }
    assert published == {
        "api": [("127.0.0.1", "8081", 8081)],
        "ui": [("127.0.0.1", "8080", 8080)],
        "jaeger": [("127.0.0.1", "16686", 16686)],
    }


def test_example_dags_are_loaded_from_the_image() -> None:
    loader = resolved()["services"]["load-examples"]
    assert "ledgerflow dags submit /opt/ledgerflow-examples/*.py" in " ".join(loader["entrypoint"])
    assert service_environment("load-examples")["LEDGERFLOW_API_URL"] == "http://api:8081"
