"""deploy/kubernetes: rendered, validated strictly against Kubernetes' schemas, checked.

Rendering: ``kustomize_lite`` (always) and ``kubectl kustomize`` (where installed, which
must agree). Validation: kubernetes-validate's bundled schemas (no network) for the
built-in kinds; KEDA's kinds against ``schemas/keda-v2.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate.utils as kv
import pytest
import yaml
from ledgerflow.common.settings import Settings
from ledgerflow.common.topics import Topics

from .contract import ROOT, is_secret
from .kustomize_lite import Resource, pod_specs, render

KUBERNETES = ROOT / "deploy" / "kubernetes"
OVERLAYS = ("base", "overlays/dev", "overlays/production")
# The oldest Kubernetes these manifests target, and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.30.0", kv.latest_version())
KEDA_SCHEMA = json.loads((Path(__file__).parent / "schemas" / "keda-v2.json").read_text())
# Parameters of KEDA's Kafka scaler (keda.sh/docs/latest/scalers/apache-kafka).
KAFKA_SCALER_METADATA = {
    "bootstrapServers",
    "bootstrapServersFromEnv",
    "consumerGroup",
    "consumerGroupFromEnv",
    "topic",
    "topicFromEnv",
    "lagThreshold",
    "activationLagThreshold",
    "offsetResetPolicy",
    "allowIdleConsumers",
    "excludePersistentLag",
    "limitToPartitionsWithLag",
    "scaleToZeroOnInvalidOffset",
    "partitionLimitation",
    "version",
    "sasl",
    "tls",
    "unsafeSsl",
}


@cache
def rendered(overlay: str) -> tuple[Resource, ...]:
    return tuple(render(KUBERNETES / overlay))


def of_kind(overlay: str, kind: str) -> list[Resource]:
    return [r for r in rendered(overlay) if r["kind"] == kind]


def named(overlay: str, kind: str, name: str) -> Resource:
    [found] = [r for r in of_kind(overlay, kind) if r["metadata"]["name"] == name]
    return found


def component(res: Resource) -> str:
    return str(res["metadata"]["labels"]["app.kubernetes.io/component"])


def selects(selector: dict[str, str], labels: dict[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def config_map(overlay: str) -> dict[str, str]:
    return dict(named(overlay, "ConfigMap", "ledgerflow-config")["data"])


def keyed(resources: list[Any]) -> dict[tuple[str, str | None, str], Any]:
    return {
        (r["kind"], r["metadata"].get("namespace"), r["metadata"]["name"]): r for r in resources
    }


# ------------------------------------------------------------------ rendering, schemas
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_kubectl_kustomize_renders_the_same(overlay: str) -> None:
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl is not installed; kustomize_lite's rendering is checked alone")
    result = subprocess.run(
        [kubectl, "kustomize", str(KUBERNETES / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    reference = keyed([d for d in yaml.safe_load_all(result.stdout) if d])
    assert keyed(list(rendered(overlay))) == reference


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_built_in_kinds_validate_strictly(overlay: str, version: str) -> None:
    for res in rendered(overlay):
        if res["apiVersion"].startswith("keda.sh/"):
            continue
        try:
            kv.validate(res, version, strict=True)
        except kv.SchemaNotFoundError as exc:
            pytest.fail(f"{res['kind']} {res['apiVersion']}: {exc.message}")
        except kv.ValidationError as exc:
            where = ".".join(str(p) for p in exc.path)
            pytest.fail(f"{res['kind']}/{res['metadata']['name']} ({version}): {where}: {exc}")


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_keda_kinds_validate(overlay: str) -> None:
    keda = [r for r in rendered(overlay) if r["apiVersion"].startswith("keda.sh/")]
    assert {r["kind"] for r in keda} >= {"ScaledObject"}
    for res in keda:
        schema = {**KEDA_SCHEMA, "$ref": f"#/$defs/{res['kind']}"}
        jsonschema.validate(res, schema, cls=jsonschema.Draft202012Validator)
        behavior = (
            res["spec"].get("advanced", {}).get("horizontalPodAutoscalerConfig", {}).get("behavior")
        )
        if behavior is not None:  # checked as what it becomes: an HPA's behavior
            hpa = {
                "apiVersion": "autoscaling/v2",
                "kind": "HorizontalPodAutoscaler",
                "metadata": {"name": "keda-hpa"},
                "spec": {
                    "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "x"},
                    "maxReplicas": res["spec"]["maxReplicaCount"],
                    "behavior": behavior,
                },
            }
            kv.validate(hpa, KUBERNETES_VERSIONS[-1], strict=True)


def test_manifests_use_no_yaml_anchors() -> None:
    """kustomize's YAML library and ours may treat anchors and merge keys differently."""
    for path in KUBERNETES.rglob("*.yaml"):
        text = path.read_text(encoding="utf-8")
        assert "<<:" not in text and ": &" not in text and ": *" not in text, path


# ------------------------------------------------------------------ secrets
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_secret_values_in_manifests(overlay: str) -> None:
    assert not of_kind(overlay, "Secret"), "Secrets are created outside git (docs/deploy.md)"
    for key in config_map(overlay):
        assert not is_secret(key), f"{key} in the ConfigMap"
    for res, pod in pod_specs(list(rendered(overlay))):
        for container in pod["containers"]:
            for env in container.get("env", []):
                if is_secret(env["name"]):
                    assert "secretKeyRef" in env.get("valueFrom", {}), (
                        f"{res['metadata']['name']}: {env['name']} must come from a Secret"
                    )


# ------------------------------------------------------------------ workloads
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_pods_meet_the_restricted_pod_security_standard(overlay: str) -> None:
    for res, pod in pod_specs(list(rendered(overlay))):
        name = res["metadata"]["name"]
        security = pod["securityContext"]
        assert security["runAsNonRoot"] is True and security["runAsUser"] != 0, name
        assert security["seccompProfile"]["type"] == "RuntimeDefault", name
        assert pod["automountServiceAccountToken"] is False, name
        for container in pod["containers"]:
            sc = container["securityContext"]
            assert sc["allowPrivilegeEscalation"] is False, name
            assert sc["readOnlyRootFilesystem"] is True, name
            assert sc["capabilities"]["drop"] == ["ALL"], name
            for kind in ("requests", "limits"):
                assert set(container["resources"][kind]) >= {"cpu", "memory"}, (name, kind)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_probes_on_declared_ports(overlay: str) -> None:
    for res in of_kind(overlay, "Deployment"):
        [container] = res["spec"]["template"]["spec"]["containers"]
        ports = {p["name"]: p["containerPort"] for p in container["ports"]}
        for probe in ("readinessProbe", "livenessProbe"):
            http = container[probe]["httpGet"]
            assert http["port"] in ports, (res["metadata"]["name"], probe)
        # Liveness never depends on Kafka or Postgres: always the probe server's /healthz.
        assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "probe"}
        assert ports["probe"] == int(config_map(overlay)["LEDGERFLOW_PROBE_PORT"])


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_deployment_has_a_disruption_budget_that_allows_drains(overlay: str) -> None:
    budgets = of_kind(overlay, "PodDisruptionBudget")
    for res in of_kind(overlay, "Deployment"):
        labels = res["spec"]["template"]["metadata"]["labels"]
        [pdb] = [b for b in budgets if selects(b["spec"]["selector"]["matchLabels"], labels)]
        replicas = res["spec"].get("replicas")
        if "minAvailable" in pdb["spec"]:
            assert replicas is not None and pdb["spec"]["minAvailable"] < replicas
        else:
            assert pdb["spec"]["maxUnavailable"] >= 1


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_high_availability_replicas(overlay: str) -> None:
    by_component = {component(d): d for d in of_kind(overlay, "Deployment")}
    for name in ("scheduler", "api", "ui"):
        assert by_component[name]["spec"]["replicas"] >= 2, name
    assert "replicas" not in by_component["executor"]["spec"]  # owned by KEDA's HPA


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_route_to_pods_and_declared_ports(overlay: str) -> None:
    deployments = of_kind(overlay, "Deployment")
    for service in of_kind(overlay, "Service"):
        [target] = [
            d
            for d in deployments
            if selects(service["spec"]["selector"], d["spec"]["template"]["metadata"]["labels"])
        ]
        [container] = target["spec"]["template"]["spec"]["containers"]
        names = {p["name"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert port["targetPort"] in names
    assert {component(s) for s in of_kind(overlay, "Service")} == {"api", "ui"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_ingress_exposes_only_the_ui(overlay: str) -> None:
    [ingress] = of_kind(overlay, "Ingress")
    backends = {
        (p["backend"]["service"]["name"], p["backend"]["service"]["port"]["name"])
        for rule in ingress["spec"]["rules"]
        for p in rule["http"]["paths"]
    }
    assert backends == {("ledgerflow-ui", "http")}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_admit_traffic_only_to_the_api_and_ui(overlay: str) -> None:
    policies = of_kind(overlay, "NetworkPolicy")
    pods = {component(d): d["spec"]["template"] for d in of_kind(overlay, "Deployment")}
    deny = [p for p in policies if "ingress" not in p["spec"]]
    assert deny and all(
        any(selects(p["spec"]["podSelector"]["matchLabels"], t["metadata"]["labels"]) for p in deny)
        for t in pods.values()
    ), "a default-deny policy must select every ledgerflow pod"
    admitted: dict[str, set[int]] = {}
    for policy in policies:
        for name, template in pods.items():
            if selects(
                policy["spec"]["podSelector"]["matchLabels"], template["metadata"]["labels"]
            ):
                for rule in policy["spec"].get("ingress", []):
                    admitted.setdefault(name, set()).update(p["port"] for p in rule["ports"])
    http_ports = {
        name: {
            p["containerPort"] for p in t["spec"]["containers"][0]["ports"] if p["name"] == "http"
        }
        for name, t in pods.items()
    }
    assert admitted == {"api": http_ports["api"], "ui": http_ports["ui"]}


# ------------------------------------------------------------------ executors and KEDA
@pytest.mark.parametrize("overlay", OVERLAYS)
def test_each_executor_deployment_scales_on_its_own_consumer_group(overlay: str) -> None:
    from ledgerflow.executor.service import group_id_for

    config = config_map(overlay)
    settings = Settings(topic_prefix=config["LEDGERFLOW_TOPIC_PREFIX"])
    scaled = {s["spec"]["scaleTargetRef"]["name"]: s for s in of_kind(overlay, "ScaledObject")}
    executors = [d for d in of_kind(overlay, "Deployment") if component(d) == "executor"]
    assert executors and set(scaled) == {d["metadata"]["name"] for d in executors}
    for deployment in executors:
        [container] = deployment["spec"]["template"]["spec"]["containers"]
        args = container["args"]
        queue = args[args.index("--queue") + 1]
        spec = scaled[deployment["metadata"]["name"]]["spec"]
        assert 1 <= spec["minReplicaCount"] <= spec["maxReplicaCount"]
        # More consumers than partitions sit idle.
        assert spec["maxReplicaCount"] == int(config["LEDGERFLOW_WORK_PARTITIONS"])
        [trigger] = spec["triggers"]
        meta = trigger["metadata"]
        assert trigger["type"] == "kafka" and set(meta) <= KAFKA_SCALER_METADATA
        assert meta["consumerGroup"] == group_id_for(settings, queue)
        assert meta["topic"] == Topics(settings.topic_prefix).work(queue)
        # KEDA reads the bootstrap servers from the executor container's environment.
        env_names = {e["name"] for e in container.get("env", [])} | set(config)
        assert meta["bootstrapServersFromEnv"] in env_names
        slots = int(args[args.index("--slots") + 1])
        assert int(meta["lagThreshold"]) >= slots  # one replica carries at least its slots


def test_secured_kafka_reaches_keda_too() -> None:
    [scaled] = of_kind("overlays/production", "ScaledObject")
    [trigger] = scaled["spec"]["triggers"]
    [auth] = of_kind("overlays/production", "TriggerAuthentication")
    assert trigger["authenticationRef"]["name"] == auth["metadata"]["name"]
    parameters = {ref["parameter"] for ref in auth["spec"]["secretTargetRef"]}
    assert parameters >= {"sasl", "username", "password", "tls", "ca"}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_the_init_job_creates_the_work_topic_of_every_queue(overlay: str) -> None:
    init = named(overlay, "Job", "ledgerflow-init")
    [container] = init["spec"]["template"]["spec"]["containers"]
    assert container["command"][-2:] == ["-m", "ledgerflow.cli.init_command"]
    args = container["args"]
    init_queues = {args[i + 1] for i, a in enumerate(args) if a == "--queue"}
    executor_queues = {
        d["metadata"]["labels"]["ledgerflow.io/queue"]
        for d in of_kind(overlay, "Deployment")
        if component(d) == "executor"
    }
    assert init_queues == executor_queues


def test_the_dev_overlay_loads_the_examples() -> None:
    job = named("overlays/dev", "Job", "ledgerflow-load-examples")
    [container] = job["spec"]["template"]["spec"]["containers"]
    assert "ledgerflow dags submit /opt/ledgerflow-examples/*.py" in " ".join(container["args"])
    assert container["image"] == "ledgerflow:local"


def test_every_secret_key_and_security_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    keys: set[str] = set()
    for overlay in OVERLAYS:
        for _res, pod in pod_specs(list(rendered(overlay))):
            for env in pod["containers"][0].get("env", []):
                ref = env.get("valueFrom", {}).get("secretKeyRef")
                if ref and ref["name"] == "ledgerflow":
                    keys.add(ref["key"])
        for auth in of_kind(overlay, "TriggerAuthentication"):
            keys |= {r["key"] for r in auth["spec"]["secretTargetRef"] if r["name"] == "ledgerflow"}
    assert keys and all(f"`{key}`" in docs for key in keys), sorted(keys)
    security = [
        f"LEDGERFLOW_{name.upper()}"
        for name in Settings.model_fields
        if name.startswith(("kafka_s", "database_ssl"))
    ]
    assert all(name in docs for name in security), security
