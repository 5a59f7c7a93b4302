"""Render deploy/kubernetes overlays without kustomize: the subset our files use.

``kubectl kustomize`` is the reference (docs/adr/0007-deploy.md). This renderer exists
so that the manifests are checked on a machine without kubectl; where kubectl is
installed, ``test_kubernetes.py`` renders with both and requires the same objects.

Supported, and nothing else (an unknown kustomization field is an error, so the two can
never silently differ): ``resources`` (files and directories), ``namespace``, ``images``
(``name``/``newName``/``newTag``) and ``patches`` (strategic-merge patches from ``path``,
matched by the patch's kind and name or by a ``target`` with ``kind``, ``name`` and
``labelSelector``). Applied in kustomize's order: patches, namespace, images.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

import yaml

Resource = dict[str, Any]

SUPPORTED_FIELDS = {"apiVersion", "kind", "namespace", "resources", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "CustomResourceDefinition"}

# Strategic-merge keys of the built-in kinds' lists that our patches touch. Custom
# resources (KEDA's) have no merge keys: their lists are replaced, as kustomize does.
MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "env": "name",
    "volumes": "name",
    "volumeMounts": "mountPath",
}
BUILTIN_API_GROUPS = re.compile(r"^(v1|[a-z]+/v[0-9a-z]+|[a-z.]+\.k8s\.io/v[0-9a-z]+)$")


class KustomizeError(Exception):
    """The kustomization uses something this renderer does not do, or is wrong."""


def load_documents(path: Path) -> list[Resource]:
    with path.open(encoding="utf-8") as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def render(directory: Path) -> list[Resource]:
    """The resources ``directory``'s kustomization.yaml produces."""
    kustomization_file = directory / "kustomization.yaml"
    [kustomization] = load_documents(kustomization_file)
    unknown = set(kustomization) - SUPPORTED_FIELDS
    if unknown:
        raise KustomizeError(f"{kustomization_file}: unsupported fields {sorted(unknown)}")
    resources: list[Resource] = []
    for entry in kustomization.get("resources", []):
        target = (directory / entry).resolve()
        resources += render(target) if target.is_dir() else load_documents(target)
    for patch_entry in kustomization.get("patches", []):
        _apply_patch(resources, directory, patch_entry)
    if "namespace" in kustomization:
        for res in resources:
            if res["kind"] not in CLUSTER_SCOPED:
                res.setdefault("metadata", {})["namespace"] = kustomization["namespace"]
    for image in kustomization.get("images", []):
        for container in _containers(resources):
            container["image"] = _retag(container["image"], image)
    return resources


def _apply_patch(resources: list[Resource], directory: Path, entry: dict[str, Any]) -> None:
    if set(entry) - {"path", "target"}:
        raise KustomizeError(f"unsupported patch fields: {sorted(entry)}")
    [patch] = load_documents(directory / entry["path"])
    if "target" in entry:
        target = entry["target"]
        if set(target) - {"kind", "name", "labelSelector"}:
            raise KustomizeError(f"unsupported target fields: {sorted(target)}")
        matched = [r for r in resources if _matches(r, target)]
    else:
        matched = [
            r
            for r in resources
            if r["kind"] == patch["kind"] and r["metadata"]["name"] == patch["metadata"]["name"]
        ]
    if not matched:
        raise KustomizeError(f"patch {entry['path']} matches no resource")
    for res in matched:
        body = {k: v for k, v in patch.items() if k not in ("apiVersion", "kind", "metadata")}
        meta = {
            k: v for k, v in patch.get("metadata", {}).items() if k not in ("name", "namespace")
        }
        if meta:
            body["metadata"] = meta
        _merge(res, body, builtin=bool(BUILTIN_API_GROUPS.match(res["apiVersion"])))


def _matches(res: Resource, target: dict[str, Any]) -> bool:
    if "kind" in target and res["kind"] != target["kind"]:
        return False
    if "name" in target and not re.fullmatch(target["name"], res["metadata"]["name"]):
        return False
    labels = res["metadata"].get("labels", {})
    for term in filter(None, target.get("labelSelector", "").split(",")):
        key, _, value = term.partition("=")
        if labels.get(key.strip()) != value.strip():
            return False
    return True


def _merge(dst: dict[str, Any], patch: dict[str, Any], *, builtin: bool) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and "$patch" in value:
            raise KustomizeError("$patch directives are not supported")
        if isinstance(value, dict) and isinstance(dst.get(key), dict):
            _merge(dst[key], value, builtin=builtin)
        elif isinstance(value, list) and builtin and key in MERGE_KEYS and key in dst:
            dst[key] = _merge_list(dst[key], value, MERGE_KEYS[key], builtin=builtin)
        else:
            dst[key] = copy.deepcopy(value)


def _merge_list(
    old: list[dict[str, Any]], new: list[dict[str, Any]], key: str, *, builtin: bool
) -> list[dict[str, Any]]:
    """Merge by ``key``; items only in the patch come first, as kustomize puts them."""
    by_key = {item[key]: item for item in old}
    added = []
    for item in new:
        if item[key] in by_key:
            _merge(by_key[item[key]], item, builtin=builtin)
        else:
            added.append(copy.deepcopy(item))
    return added + old


def pod_specs(resources: list[Resource]) -> list[tuple[Resource, dict[str, Any]]]:
    """``(resource, pod spec)`` of every workload."""
    found = []
    for res in resources:
        spec = res.get("spec", {})
        if res["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job"):
            found.append((res, spec["template"]["spec"]))
        elif res["kind"] == "CronJob":
            found.append((res, spec["jobTemplate"]["spec"]["template"]["spec"]))
    return found


def _containers(resources: list[Resource]) -> list[dict[str, Any]]:
    return [
        c
        for _, pod in pod_specs(resources)
        for c in pod.get("containers", []) + pod.get("initContainers", [])
    ]


def _retag(image: str, rule: dict[str, Any]) -> str:
    name, tag = image, ""
    if "@" in name:
        name, digest = name.split("@", 1)
        tag = "@" + digest
    elif ":" in name.rsplit("/", 1)[-1]:
        name, tag_only = name.rsplit(":", 1)
        tag = ":" + tag_only
    if name != rule["name"]:
        return image
    if set(rule) - {"name", "newName", "newTag"}:
        raise KustomizeError(f"unsupported image fields: {sorted(rule)}")
    new_tag = f":{rule['newTag']}" if "newTag" in rule else tag
    return f"{rule.get('newName', name)}{new_tag}"
