"""``ledgerflow variables ...`` and ``ledgerflow connections ...``, like Airflow's CLI.

They go through the REST API (``/api/v2/variables``, ``/api/v2/connections``), which
never returns a password and shows sensitive values as ``***``: so neither do these
commands. Output is a table by default, JSON with ``--output json``.

Writes are answered before the projection has them (ADR 0006): a read straight after a
write may not see it for a moment.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from ledgerflow.cli.api_client import ApiClient
from ledgerflow.cli.client_commands import print_table
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError

REDACTED = "***"
PAGE = 100
EXTRA_KEY = "__extra__"  # Airflow's URI query parameter holding the whole extra as JSON


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _print_json(value: Any) -> None:
    print(json.dumps(value, indent=2))


def _pages(api: ApiClient, path: str, field: str) -> Iterator[dict[str, Any]]:
    """Every item of a paginated Airflow collection."""
    offset = 0
    while True:
        body = api.get_json(path, params={"limit": PAGE, "offset": offset})
        items = body.get(field, [])
        yield from items
        offset += len(items)
        if not items or offset >= int(body.get("total_entries", 0)):
            return


def _output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o",
        "--output",
        choices=("table", "json"),
        default="table",
        help="output format (default: table)",
    )


# ---------------------------------------------------------------------------- variables


def cmd_variables_get(args: argparse.Namespace, ctx: CliContext) -> int:
    """Print a variable's value (``***`` for a sensitive one, as the API shows it)."""
    with ctx.api_client() as api:
        response = api.request("GET", f"/api/v2/variables/{_q(args.key)}", accept=(404,))
    if response.status_code == 404:
        if args.default is not None:
            print(args.default)
            return 0
        raise CliError(f"variable {args.key!r} does not exist")
    value = response.json().get("value")
    if args.json:
        try:
            value = json.dumps(json.loads(value), indent=2)
        except (TypeError, ValueError):
            raise CliError(f"variable {args.key!r} does not hold JSON") from None
    print(value)
    return 0


def _put_variable(api: ApiClient, body: dict[str, Any]) -> None:
    """Create the variable, or replace it if it exists (``airflow variables set``)."""
    response = api.request("POST", "/api/v2/variables", json=body, accept=(409,))
    if response.status_code == 409:
        api.request("PATCH", f"/api/v2/variables/{_q(body['key'])}", json=body)


def cmd_variables_set(args: argparse.Namespace, ctx: CliContext) -> int:
    value: Any = args.value
    if args.json:
        try:
            value = json.loads(args.value)
        except ValueError as exc:
            raise CliError(f"VALUE is not valid JSON: {exc}") from None
    body: dict[str, Any] = {"key": args.key, "value": value, "is_secret": args.secret}
    if args.description is not None:
        body["description"] = args.description
    with ctx.api_client() as api:
        _put_variable(api, body)
    print(f"Variable {args.key} created")
    return 0


def cmd_variables_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        variables = list(_pages(api, "/api/v2/variables", "variables"))
    if args.output == "json":
        _print_json(variables)
        return 0
    print_table(
        ("key", "value", "description", "secret"),
        [
            (v.get("key"), v.get("value"), v.get("description"), v.get("is_secret"))
            for v in variables
        ],
    )
    return 0


def cmd_variables_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        api.request("DELETE", f"/api/v2/variables/{_q(args.key)}")
    print(f"Variable {args.key} deleted")
    return 0


def _has_redacted(value: Any) -> bool:
    """Whether ``value`` is, or holds, the ``***`` the API shows instead of a secret."""
    if value == REDACTED:
        return True
    if isinstance(value, dict):
        return any(_has_redacted(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_redacted(v) for v in value)
    if isinstance(value, str) and REDACTED in value:
        try:
            return _has_redacted(json.loads(value))
        except ValueError:
            return False
    return False


def variables_from_file(path: Path) -> list[dict[str, Any]]:
    """Airflow's ``variables import`` format: ``{key: value}``, where a value may be
    ``{"value": ..., "description": ...}``."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or exc}") from None
    except ValueError as exc:
        raise CliError(f"{path} is not valid JSON: {exc}") from None
    if not isinstance(doc, dict):
        raise CliError(f"{path} must hold a JSON object of key: value")
    bodies: list[dict[str, Any]] = []
    for key, raw in doc.items():
        value, description = raw, None
        if isinstance(raw, dict) and "value" in raw:
            value, description = raw["value"], raw.get("description")
        bodies.append({"key": key, "value": value, "description": description})
    return bodies


def cmd_variables_import(args: argparse.Namespace, ctx: CliContext) -> int:
    bodies = variables_from_file(Path(args.file))
    # An export shows secrets as ***: importing that would overwrite the real values.
    redacted = [b["key"] for b in bodies if _has_redacted(b["value"])]
    if redacted:
        print(
            f"skipping {len(redacted)} value(s) holding {REDACTED} (secrets an export "
            "cannot contain; set them with `ledgerflow variables set`): " + ", ".join(redacted),
            file=sys.stderr,
        )
        bodies = [b for b in bodies if not _has_redacted(b["value"])]
    action = {
        "action": "create",
        "entities": bodies,
        "action_on_existence": args.action_on_existing_key,
    }
    with ctx.api_client() as api:
        result = api.request("PATCH", "/api/v2/variables", json={"actions": [action]}).json()
    created = (result.get("create") or {}).get("success", [])
    errors = (result.get("create") or {}).get("errors", [])
    for error in errors:
        print(f"error: {error.get('error')}", file=sys.stderr)
    print(f"{len(created)} of {len(bodies)} variables imported")
    return 1 if errors else 0


def cmd_variables_export(args: argparse.Namespace, ctx: CliContext) -> int:
    """Write every variable as Airflow does (JSON values decoded; with a description,
    ``{"value", "description"}``). Secret values come out as ``***``: the API never
    returns them."""
    with ctx.api_client() as api:
        variables = list(_pages(api, "/api/v2/variables", "variables"))
    doc: dict[str, Any] = {}
    hidden: list[str] = []
    for v in variables:
        value: Any = v.get("value")
        try:
            value = json.loads(value)
        except (TypeError, ValueError):
            pass
        if _has_redacted(v.get("value")):
            hidden.append(str(v["key"]))
        doc[v["key"]] = (
            {"value": value, "description": v["description"]} if v.get("description") else value
        )
    text = json.dumps(doc, indent=4, sort_keys=True) + "\n"
    if args.file == "-":
        sys.stdout.write(text)
    else:
        Path(args.file).write_text(text, encoding="utf-8")
        print(f"{len(doc)} variables successfully exported to {args.file}")
    if hidden:
        print(
            f"note: {len(hidden)} secret value(s) exported as {REDACTED} (the API never "
            "returns them): " + ", ".join(hidden),
            file=sys.stderr,
        )
    return 0


# ---------------------------------------------------------------------------- connections


def parse_conn_uri(uri: str) -> dict[str, Any]:
    """Airflow's connection URI (``Connection(uri=...)``) as API body fields.

    ``postgres://user:pa%2Fss@host:5432/schema?sslmode=require``: the scheme is the type
    (``postgresql`` -> ``postgres``, ``-`` -> ``_``), the path the schema, the query the
    extra (or ``__extra__=<json>`` holds it whole); parts are percent-decoded.
    """
    if uri.count("://") > 2 or "://" not in uri:
        raise CliError(f"invalid connection URI: {uri!r}")
    scheme = urlsplit(uri).scheme
    if not scheme:
        raise CliError(f"invalid connection URI (no type): {uri!r}")
    conn_type = "postgres" if scheme == "postgresql" else scheme.replace("-", "_")
    with_protocol = uri.count("://") == 2
    rest = uri.replace(f"{scheme}://", "" if with_protocol else "//", 1)
    if with_protocol and any(c in rest.split("://", 1)[0] for c in "@:"):
        raise CliError(f"invalid connection URI: {uri!r}")
    parts = urlsplit(rest)
    host = _hostname(parts)
    if with_protocol and host:
        host = f"{parts.scheme}://{host}"
    try:
        port = parts.port
    except ValueError as exc:
        raise CliError(f"invalid port in connection URI: {exc}") from None
    fields: dict[str, Any] = {
        "conn_type": conn_type,
        "host": host or None,
        "schema": unquote(parts.path[1:]) or None,
        "login": unquote(parts.username) if parts.username else None,
        "password": unquote(parts.password) if parts.password else None,
        "port": port,
    }
    if parts.query:
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        fields["extra"] = query[EXTRA_KEY] if EXTRA_KEY in query else json.dumps(query)
    return fields


def _hostname(parts: Any) -> str:
    # Airflow's _parse_netloc_to_hostname: keep the host's case, allow '/' in it.
    netloc = parts.netloc.rsplit("@", 1)[-1]
    if netloc.startswith("["):  # IPv6
        return str(parts.hostname or "")
    return unquote(netloc.split(":", 1)[0])


def connection_body(args: argparse.Namespace) -> dict[str, Any]:
    """The API body for ``connections add`` from ``--conn-uri``, ``--conn-json`` or the
    ``--conn-*`` options (not mixed, as in Airflow)."""
    singles = {
        "conn_type": args.conn_type,
        "host": args.conn_host,
        "login": args.conn_login,
        "password": args.conn_password,
        "schema": args.conn_schema,
        "port": args.conn_port,
        "extra": args.conn_extra,
    }
    given = [k for k, v in singles.items() if v is not None]
    if sum(x is not None for x in (args.conn_uri, args.conn_json)) + bool(given) > 1:
        raise CliError("use one of --conn-uri, --conn-json or the --conn-* options, not several")
    if args.conn_uri is not None:
        fields = parse_conn_uri(args.conn_uri)
    elif args.conn_json is not None:
        try:
            fields = json.loads(args.conn_json)
        except ValueError as exc:
            raise CliError(f"--conn-json is not valid JSON: {exc}") from None
        if not isinstance(fields, dict):
            raise CliError("--conn-json must be a JSON object")
        if isinstance(fields.get("extra"), dict):
            fields["extra"] = json.dumps(fields["extra"])
    else:
        fields = {k: v for k, v in singles.items() if v is not None}
    if not fields.get("conn_type"):
        raise CliError("the connection needs a type: give --conn-type or --conn-uri")
    if args.conn_extra is not None:
        try:
            json.loads(args.conn_extra)
        except ValueError as exc:
            raise CliError(f"--conn-extra is not valid JSON: {exc}") from None
    body = {"connection_id": args.conn_id, **fields}
    if args.conn_description is not None:
        body["description"] = args.conn_description
    return {k: v for k, v in body.items() if v is not None}


def cmd_connections_add(args: argparse.Namespace, ctx: CliContext) -> int:
    body = connection_body(args)
    with ctx.api_client() as api:
        response = api.request("POST", "/api/v2/connections", json=body, accept=(409,))
    if response.status_code == 409:
        raise CliError(f"A connection with `conn_id`={args.conn_id} already exists.")
    print(f"Successfully added `conn_id`={args.conn_id} (type {body['conn_type']})")
    return 0


_CONNECTION_COLUMNS = ("connection_id", "conn_type", "host", "port", "schema", "login", "extra")


def _connection_row(c: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(c.get(col) for col in _CONNECTION_COLUMNS) + (
        REDACTED if c.get("password") else None,
    )


def _shown(c: dict[str, Any]) -> dict[str, Any]:
    # The API already sends ``***``; never print anything else for a password.
    return {**c, "password": REDACTED if c.get("password") else None}


def cmd_connections_get(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        connection = api.get_json(f"/api/v2/connections/{_q(args.conn_id)}")
    if args.output == "json":
        _print_json(_shown(connection))
        return 0
    print_table((*_CONNECTION_COLUMNS, "password"), [_connection_row(connection)])
    return 0


def cmd_connections_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        connections = list(_pages(api, "/api/v2/connections", "connections"))
    if args.conn_id:
        connections = [c for c in connections if c.get("connection_id") == args.conn_id]
    if args.output == "json":
        _print_json([_shown(c) for c in connections])
        return 0
    print_table((*_CONNECTION_COLUMNS, "password"), [_connection_row(c) for c in connections])
    return 0


def cmd_connections_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        response = api.request("DELETE", f"/api/v2/connections/{_q(args.conn_id)}", accept=(404,))
    if response.status_code == 404:
        raise CliError(f"Did not find a connection with `conn_id`={args.conn_id}")
    print(f"Successfully deleted connection with `conn_id`={args.conn_id}")
    return 0


# ---------------------------------------------------------------------------- parsers


def register(commands: Any, help_of: Any) -> None:
    """Add the ``variables`` and ``connections`` command groups to ``commands`` (the
    top-level subparsers); ``help_of(parser)`` makes a group's usage handler."""
    variables = commands.add_parser("variables", help="get, set, list, import, export variables")
    cmds = variables.add_subparsers(dest="variables_command", metavar="COMMAND")
    variables.set_defaults(handler=help_of(variables))
    p = cmds.add_parser("get", help="print a variable's value")
    p.add_argument("key")
    p.add_argument("--default", help="print this when the variable does not exist")
    p.add_argument("-j", "--json", action="store_true", help="the value is JSON: pretty-print it")
    p.set_defaults(handler=cmd_variables_get)
    p = cmds.add_parser("set", help="create or replace a variable")
    p.add_argument("key")
    p.add_argument("value")
    p.add_argument("--description")
    p.add_argument("-j", "--json", action="store_true", help="VALUE is JSON: store it as JSON")
    p.add_argument(
        "--secret", action="store_true", help="hide the value like a sensitive key's (***)"
    )
    p.set_defaults(handler=cmd_variables_set)
    p = cmds.add_parser("list", help="list variables")
    _output_option(p)
    p.set_defaults(handler=cmd_variables_list)
    p = cmds.add_parser("delete", help="delete a variable")
    p.add_argument("key")
    p.set_defaults(handler=cmd_variables_delete)
    p = cmds.add_parser("import", help="import variables from a JSON file ({key: value})")
    p.add_argument("file")
    p.add_argument(
        "--action-on-existing-key",
        choices=("overwrite", "fail", "skip"),
        default="overwrite",
        help="what to do with keys that exist (default: overwrite)",
    )
    p.set_defaults(handler=cmd_variables_import)
    p = cmds.add_parser("export", help="export every variable to a JSON file ('-': stdout)")
    p.add_argument("file")
    p.set_defaults(handler=cmd_variables_export)

    connections = commands.add_parser("connections", help="add, get, list, delete connections")
    cmds = connections.add_subparsers(dest="connections_command", metavar="COMMAND")
    connections.set_defaults(handler=help_of(connections))
    p = cmds.add_parser(
        "add",
        help="add a connection",
        description="Add a connection from --conn-uri (Airflow's URI format), --conn-json, "
        "or the --conn-* options.",
    )
    p.add_argument("conn_id")
    p.add_argument("--conn-uri", help="e.g. postgres://user:pass@host:5432/db?sslmode=require")
    p.add_argument("--conn-json", help='e.g. {"conn_type": "http", "host": "example.com"}')
    p.add_argument("--conn-type")
    p.add_argument("--conn-host")
    p.add_argument("--conn-login")
    p.add_argument("--conn-password")
    p.add_argument("--conn-schema")
    p.add_argument("--conn-port", type=int)
    p.add_argument("--conn-extra", help="a JSON object")
    p.add_argument("--conn-description")
    p.set_defaults(handler=cmd_connections_add)
    p = cmds.add_parser("get", help="show a connection (never its password)")
    p.add_argument("conn_id")
    _output_option(p)
    p.set_defaults(handler=cmd_connections_get)
    p = cmds.add_parser("list", help="list connections (never their passwords)")
    p.add_argument("--conn-id", help="only this connection")
    _output_option(p)
    p.set_defaults(handler=cmd_connections_list)
    p = cmds.add_parser("delete", help="delete a connection")
    p.add_argument("conn_id")
    p.set_defaults(handler=cmd_connections_delete)
