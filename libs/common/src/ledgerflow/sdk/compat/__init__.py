"""Airflow compatibility: ``import airflow...`` in DAG files gets ledgerflow's SDK.

:func:`install` puts a meta-path finder first on ``sys.meta_path``; it answers for
``airflow`` and every ``airflow.*`` module, so it wins even when a real ``airflow`` is
installed (ledgerflow never installs a distribution of that name). The modules it
provides are listed in :mod:`ledgerflow.sdk.compat.modules`; their attributes are
imported lazily. Any other ``airflow.*`` module (``airflow.providers.snowflake``, ...)
raises ``ModuleNotFoundError`` naming it, which the DAG loader reports with the file and
line of the import. The parser and the task runner call :func:`install`; it is
idempotent.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import types
from collections.abc import Sequence
from typing import Any

COMPAT_MARKER = "__ledgerflow_compat__"


class _LazyModule(types.ModuleType):
    """An Airflow module whose attributes are imported from ledgerflow on first access."""

    def __getattr__(self, name: str) -> Any:
        alias = self.__dict__.get("_lf_alias")
        if alias is not None and not name.startswith("__"):
            value = getattr(importlib.import_module(alias), name)
            setattr(self, name, value)
            return value
        names: dict[str, str] = self.__dict__.get("_lf_names", {})
        target = names.get(name)
        if target is None:
            raise AttributeError(
                f"module {self.__name__!r} has no attribute {name!r} (ledgerflow's Airflow "
                "compatibility layer does not provide it)"
            )
        module_name, _, attr = target.partition(":")
        module = importlib.import_module(module_name)
        try:
            value = getattr(module, attr)
        except AttributeError:
            value = importlib.import_module(f"{module_name}.{attr}")
        setattr(self, name, value)
        return value

    def __dir__(self) -> list[str]:
        alias = self.__dict__.get("_lf_alias")
        extra = dir(importlib.import_module(alias)) if alias else self.__dict__.get("_lf_names", {})
        return sorted({*super().__dir__(), *extra})


class AirflowCompatFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Finds and creates ``airflow`` and ``airflow.*`` modules from the tables."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != "airflow" and not fullname.startswith("airflow."):
            return None
        if fullname not in _package_names():
            raise ModuleNotFoundError(
                f"No module named {fullname!r} (ledgerflow's Airflow compatibility layer does "
                "not provide it; see ledgerflow.sdk.compat.modules for what it does)",
                name=fullname,
            )
        is_package = any(name.startswith(fullname + ".") for name in _package_names())
        return importlib.machinery.ModuleSpec(fullname, self, is_package=is_package)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return _LazyModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        from ledgerflow.sdk.compat import modules

        module.__dict__[COMPAT_MARKER] = True
        alias = modules.ALIASES.get(module.__name__)
        if alias is not None:
            module.__dict__["_lf_alias"] = alias
            return
        names = modules.MODULES.get(module.__name__, {})
        module.__dict__["_lf_names"] = names
        module.__dict__["__all__"] = sorted(names)
        if module.__name__ == "airflow":
            module.__dict__["__version__"] = modules.AIRFLOW_VERSION


_PACKAGES: frozenset[str] | None = None


def _package_names() -> frozenset[str]:
    global _PACKAGES
    if _PACKAGES is None:
        from ledgerflow.sdk.compat.modules import package_names

        _PACKAGES = package_names()
    return _PACKAGES


_finder = AirflowCompatFinder()


def install() -> None:
    """Put the finder first on ``sys.meta_path`` and forget any real ``airflow`` modules
    imported before (so the next import gets ledgerflow's). Idempotent."""
    if sys.meta_path and sys.meta_path[0] is _finder:
        return
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    sys.meta_path.insert(0, _finder)
    for name in [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]:
        if not getattr(sys.modules[name], "__dict__", {}).get(COMPAT_MARKER, False):
            del sys.modules[name]


def uninstall() -> None:
    """Remove the finder and the modules it created (for tests)."""
    while _finder in sys.meta_path:
        sys.meta_path.remove(_finder)
    for name in [n for n in sys.modules if n == "airflow" or n.startswith("airflow.")]:
        del sys.modules[name]


def installed() -> bool:
    return _finder in sys.meta_path
