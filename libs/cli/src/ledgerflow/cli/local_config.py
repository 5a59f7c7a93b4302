"""Variables and connections for ``ledgerflow dags test`` (a local run, no API): from
``--variables`` / ``--connections`` JSON files and Airflow's ``AIRFLOW_VAR_*`` /
``AIRFLOW_CONN_*`` environment variables, and the masker that hides their secrets in
the run's output."""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from ledgerflow.cli.errors import CliError
from ledgerflow.common.secrets import Masker, is_sensitive


def _read_json_object(name: str, option: str) -> dict[str, Any]:
    try:
        doc = json.loads(Path(name).read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"{option} {name}: cannot read: {exc.strerror or exc}") from exc
    except json.JSONDecodeError as exc:
        raise CliError(f"{option} {name}: not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if not isinstance(doc, dict):
        raise CliError(f"{option} {name}: must be a JSON object")
    return doc


def _variable_text(value: Any) -> str:
    # As the API stores it: a value that is not a string is kept as its JSON text.
    return value if isinstance(value, str) else json.dumps(value)


def load_variables(name: str | None) -> dict[str, str]:
    if not name:
        return {}
    return {str(k): _variable_text(v) for k, v in _read_json_object(name, "--variables").items()}


def variables_from_env(environ: Mapping[str, str]) -> dict[str, str]:
    """``AIRFLOW_VAR_<KEY>`` variables, keyed by the lower-cased key (Airflow looks up
    ``AIRFLOW_VAR_`` + the upper-cased key, so ``Variable.get("my_key")`` finds them)."""
    prefix = "AIRFLOW_VAR_"
    return {k[len(prefix) :].lower(): v for k, v in environ.items() if k.startswith(prefix)}


def _connection(conn_id: str, spec: Any) -> dict[str, Any]:
    if isinstance(spec, str):
        spec = spec.strip()
        if spec.startswith("{"):
            try:
                spec = json.loads(spec)
            except json.JSONDecodeError as exc:
                raise CliError(f"connection {conn_id!r}: not valid JSON: {exc.msg}") from exc
        else:
            return connection_from_uri(spec)
    if not isinstance(spec, dict):
        raise CliError(f"connection {conn_id!r}: must be an object or a URI")
    extra = spec.get("extra")
    port = spec.get("port")
    return {
        "conn_type": spec.get("conn_type") or spec.get("connection_type"),
        "host": spec.get("host"),
        "schema": spec.get("schema"),
        "login": spec.get("login"),
        "password": spec.get("password"),
        "port": int(port) if port not in (None, "") else None,
        # Airflow keeps extra as JSON text.
        "extra": json.dumps(extra) if isinstance(extra, dict | list) else extra,
    }


def connection_from_uri(uri: str) -> dict[str, Any]:
    """Airflow's connection URI (``postgres://user:pass@host:5432/schema?k=v``)."""
    parts = urlsplit(uri)
    conn_type = parts.scheme.replace("-", "_")
    if conn_type == "postgresql":
        conn_type = "postgres"
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    extra_text = query.pop("__extra__", None)
    extra: str | None = extra_text or (json.dumps(query) if query else None)
    return {
        "conn_type": conn_type,
        "host": unquote(parts.hostname) if parts.hostname else None,
        "schema": unquote(parts.path[1:]) if parts.path else None,
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "port": parts.port,
        "extra": extra,
    }


def load_connections(name: str | None) -> dict[str, dict[str, Any]]:
    if not name:
        return {}
    doc = _read_json_object(name, "--connections")
    return {str(k): _connection(str(k), v) for k, v in doc.items()}


def connections_from_env(environ: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    """``AIRFLOW_CONN_<CONN_ID>`` connections (a URI or JSON), keyed by the lower-cased id."""
    prefix = "AIRFLOW_CONN_"
    return {
        k[len(prefix) :].lower(): _connection(k[len(prefix) :].lower(), v)
        for k, v in environ.items()
        if k.startswith(prefix)
    }


def secrets_masker(
    variables: Mapping[str, str], connections: Mapping[str, Mapping[str, Any]]
) -> Masker:
    """Masks what the executor masks: values of sensitive variables and connection
    passwords (ADR 0006)."""
    masker = Masker()
    for key, value in variables.items():
        if is_sensitive(key):
            masker.add(value)
    for conn in connections.values():
        if conn.get("password"):
            masker.add(conn["password"])
    return masker
