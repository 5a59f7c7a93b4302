"""``ledgerflow users ...``: accounts and API keys, like Airflow's ``airflow users``.

They call ``/api/v2/users`` and ``/api/v2/apiKeys`` (admin only). Passwords go to the API,
which hashes them (argon2id) before anything is written; an API key is printed once, when
it is created, and cannot be shown again. Like every write, a new user can log in once the
projector has the fact (a moment later).
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from typing import Any
from urllib.parse import quote

from ledgerflow.cli.client_commands import print_table
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError

ROLES = ("viewer", "user", "op", "admin")
PAGE = 100


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _role(text: str) -> str:
    """A role in any case (Airflow writes ``Admin``, ``Op``, ...)."""
    role = text.strip().lower()
    if role not in ROLES:
        raise argparse.ArgumentTypeError(f"must be one of {', '.join(ROLES)}, not {text!r}")
    return role


def _read_password(args: argparse.Namespace) -> str:
    if args.password:
        return str(args.password)
    if not sys.stdin.isatty():
        raise CliError("no --password given and no terminal to ask for one")
    first = getpass.getpass("Password: ")
    if first != getpass.getpass("Repeat for confirmation: "):
        raise CliError("passwords do not match")
    return first


def _collect(ctx: CliContext, path: str, field: str, **params: Any) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    with ctx.api_client() as api:
        while True:
            body = api.get_json(path, params={"limit": PAGE, "offset": len(items), **params})
            page = body.get(field, [])
            items += page
            if not page or len(items) >= int(body.get("total_entries", 0)):
                return items


# ---------------------------------------------------------------------------- users
def cmd_users_create(args: argparse.Namespace, ctx: CliContext) -> int:
    body = {
        "username": args.username,
        "password": _read_password(args),
        "role": args.role,
        "email": args.email,
        "first_name": args.firstname,
        "last_name": args.lastname,
    }
    with ctx.api_client() as api:
        response = api.request("POST", "/api/v2/users", json=body, accept=(409,))
    if response.status_code == 409:
        raise CliError(f"user {args.username!r} already exists")
    print(f"User {args.username} created with role {args.role}")
    return 0


def cmd_users_list(args: argparse.Namespace, ctx: CliContext) -> int:
    users = _collect(ctx, "/api/v2/users", "users")
    if args.output == "json":
        print(json.dumps(users, indent=2))
        return 0
    print_table(
        ("username", "role", "email", "first_name", "last_name", "active"),
        [
            (u["username"], u["role"], u["email"], u["first_name"], u["last_name"], u["active"])
            for u in users
        ],
    )
    return 0


def cmd_users_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        response = api.request("DELETE", f"/api/v2/users/{_q(args.username)}", accept=(404,))
    if response.status_code == 404:
        raise CliError(f"user {args.username!r} does not exist")
    print(f"User {args.username} deleted")
    return 0


# ---------------------------------------------------------------------------- API keys
def cmd_apikey_create(args: argparse.Namespace, ctx: CliContext) -> int:
    body: dict[str, Any] = {"name": args.name, "role": args.role}
    if args.expires_in_days is not None:
        body["expires_in_days"] = args.expires_in_days
    with ctx.api_client() as api:
        response = api.request("POST", "/api/v2/apiKeys", json=body, accept=(409,))
    if response.status_code == 409:
        raise CliError(f"an API key named {args.name!r} already exists (revoke it first)")
    created = response.json()
    print(created["key"])
    expiry = f", expires {created['expires_at']}" if created.get("expires_at") else ""
    print(
        f"API key {created['name']} ({created['key_id']}, role {created['role']}{expiry}): "
        "store it now, it is not shown again",
        file=sys.stderr,
    )
    return 0


def cmd_apikey_list(args: argparse.Namespace, ctx: CliContext) -> int:
    params = {"include_revoked": "true"} if args.all else {}
    keys = _collect(ctx, "/api/v2/apiKeys", "api_keys", **params)
    if args.output == "json":
        print(json.dumps(keys, indent=2))
        return 0
    print_table(
        ("key_id", "name", "role", "created_by", "created_at", "expires_at", "revoked_at"),
        [
            (
                k["key_id"],
                k["name"],
                k["role"],
                k["created_by"],
                k["created_at"],
                k["expires_at"],
                k.get("revoked_at"),
            )
            for k in keys
        ],
    )
    return 0


def cmd_apikey_revoke(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        response = api.request("DELETE", f"/api/v2/apiKeys/{_q(args.key_id)}", accept=(404,))
    if response.status_code == 404:
        raise CliError(f"no active API key {args.key_id!r}")
    print(f"API key {args.key_id} revoked")
    return 0


# ---------------------------------------------------------------------------- parser
def _output_option(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "-o", "--output", choices=("table", "json"), default="table", help="default: table"
    )


def register(commands: Any, help_of: Any) -> None:
    """Add ``users`` and its subcommands to the top-level parser."""
    users = commands.add_parser("users", help="create, list, delete users; manage API keys")
    cmds = users.add_subparsers(dest="users_command", metavar="COMMAND")
    users.set_defaults(handler=help_of(users))

    p = cmds.add_parser("create", help="create a user")
    p.add_argument("-u", "--username", required=True)
    p.add_argument("-r", "--role", required=True, type=_role, help=f"one of {', '.join(ROLES)}")
    p.add_argument("-p", "--password", help="the password (asked for when omitted)")
    p.add_argument("-e", "--email")
    p.add_argument("-f", "--firstname")
    p.add_argument("-l", "--lastname")
    p.set_defaults(handler=cmd_users_create)
    p = cmds.add_parser("list", help="list users")
    _output_option(p)
    p.set_defaults(handler=cmd_users_list)
    p = cmds.add_parser("delete", help="delete a user")
    p.add_argument("-u", "--username", required=True)
    p.set_defaults(handler=cmd_users_delete)

    apikey = cmds.add_parser("apikey", help="API keys for integrations")
    key_cmds = apikey.add_subparsers(dest="apikey_command", metavar="COMMAND")
    apikey.set_defaults(handler=help_of(apikey))
    p = key_cmds.add_parser("create", help="create a key and print it (once)")
    p.add_argument("name")
    p.add_argument("-r", "--role", required=True, type=_role, help=f"one of {', '.join(ROLES)}")
    p.add_argument("--expires-in-days", type=float, metavar="N", help="default: never expires")
    p.set_defaults(handler=cmd_apikey_create)
    p = key_cmds.add_parser("list", help="list API keys (never the keys themselves)")
    p.add_argument("--all", action="store_true", help="include revoked keys")
    _output_option(p)
    p.set_defaults(handler=cmd_apikey_list)
    p = key_cmds.add_parser("revoke", help="revoke an API key")
    p.add_argument("key_id")
    p.set_defaults(handler=cmd_apikey_revoke)
