"""Dependencies point inward (ADR 0001): checked by walking every module's imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("api", "scheduler", "executor", "ui")


def imports_of(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def modules(under: Path) -> list[Path]:
    return sorted(p for p in under.rglob("*.py"))


@pytest.mark.parametrize("service", SERVICES)
def test_no_service_imports_another(service):
    src = ROOT / "services" / service / "src"
    others = [s for s in SERVICES if s != service]
    for path in modules(src):
        for name in imports_of(path):
            for other in others:
                assert not name.startswith(f"ledgerflow.{other}"), f"{path}: imports {name}"
            assert not name.startswith("ledgerflow.cli"), f"{path}: imports {name}"


def test_common_imports_no_service():
    for path in modules(ROOT / "libs/common/src"):
        for name in imports_of(path):
            for s in (*SERVICES, "cli"):
                assert not name.startswith(f"ledgerflow.{s}"), f"{path}: imports {name}"


ALLOWED_FOR_SCHEMA = {"pydantic", "ledgerflow.common.dagmodel"}


def _third_party(name: str) -> str:
    return name.split(".")[0]


def test_event_schema_imports_only_pydantic_and_stdlib():
    import sys

    common = ROOT / "libs/common/src/ledgerflow/common"
    paths = [common / "dagmodel.py", *modules(common / "events")]
    assert len(paths) > 2, "the events package has moved: update this test"
    for path in paths:
        for name in imports_of(path):
            top = _third_party(name)
            assert (
                top in sys.stdlib_module_names
                or top == "__future__"
                or name in ALLOWED_FOR_SCHEMA
                or name.startswith("ledgerflow.common.events")
            ), f"{path.name} imports {name}"


def test_core_imports_only_the_schema():
    import sys

    for path in modules(ROOT / "libs/common/src/ledgerflow/common/core"):
        for name in imports_of(path):
            top = _third_party(name)
            ok = (
                top in sys.stdlib_module_names
                or top in ("__future__", "pydantic", "croniter")
                or name.startswith("ledgerflow.common.core")
                or name in ("ledgerflow.common.events", "ledgerflow.common.dagmodel")
            )
            assert ok, f"{path}: imports {name}"
            assert name not in ("asyncio", "logging", "time"), (
                f"{path}: the core does no I/O ({name})"
            )
