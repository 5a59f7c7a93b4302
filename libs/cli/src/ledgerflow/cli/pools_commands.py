"""``ledgerflow pools set|list|get|delete``, like Airflow's ``airflow pools``. They go
through the REST API (``/api/v2/pools``); a write is answered before the projection has
it, so a ``list`` straight after may not show it for a moment."""

from __future__ import annotations

import argparse
import json
from typing import Any
from urllib.parse import quote

from ledgerflow.cli.client_commands import print_table
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError

COLUMNS = ("pool", "slots", "occupied", "running", "queued", "open", "description")


def _q(segment: str) -> str:
    return quote(segment, safe="")


def _row(p: dict[str, Any]) -> tuple[Any, ...]:
    return (
        p["name"],
        p["slots"],
        p["occupied_slots"],
        p["running_slots"],
        p["queued_slots"],
        p["open_slots"],
        p.get("description") or "",
    )


def cmd_pools_set(args: argparse.Namespace, ctx: CliContext) -> int:
    """Create the pool, or change its slots (and description) if it exists."""
    body: dict[str, Any] = {"name": args.name, "slots": args.slots}
    if args.description is not None:
        body["description"] = args.description
    with ctx.api_client() as api:
        response = api.request("POST", "/api/v2/pools", json=body, accept=(409,))
        if response.status_code == 409:
            patch = {k: v for k, v in body.items() if k != "name"}
            api.request("PATCH", f"/api/v2/pools/{_q(args.name)}", json=patch)
    print(f"Pool {args.name} set to {args.slots} slots")
    return 0


def cmd_pools_list(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        pools = api.get_json("/api/v2/pools", params={"limit": 1000}).get("pools", [])
    if args.output == "json":
        print(json.dumps(pools, indent=2))
        return 0
    print_table(COLUMNS, [_row(p) for p in pools])
    return 0


def cmd_pools_get(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        response = api.request("GET", f"/api/v2/pools/{_q(args.name)}", accept=(404,))
    if response.status_code == 404:
        raise CliError(f"pool {args.name!r} does not exist")
    if args.output == "json":
        print(json.dumps(response.json(), indent=2))
    else:
        print_table(COLUMNS, [_row(response.json())])
    return 0


def cmd_pools_delete(args: argparse.Namespace, ctx: CliContext) -> int:
    with ctx.api_client() as api:
        response = api.request("DELETE", f"/api/v2/pools/{_q(args.name)}", accept=(404,))
    if response.status_code == 404:
        raise CliError(f"pool {args.name!r} does not exist")
    print(f"Pool {args.name} deleted")
    return 0


def _output(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", choices=("table", "json"), default="table")


def register(commands: Any, help_of: Any) -> None:
    """Add the ``pools`` command group to ``commands`` (the top-level subparsers)."""
    pools = commands.add_parser("pools", help="set, list, get, delete pools")
    cmds = pools.add_subparsers(dest="pools_command", metavar="COMMAND")
    pools.set_defaults(handler=help_of(pools))
    p = cmds.add_parser("set", help="create a pool or change its slots")
    p.add_argument("name")
    p.add_argument("slots", type=int, help="number of slots (-1: unlimited)")
    p.add_argument("--description")
    p.set_defaults(handler=cmd_pools_set)
    p = cmds.add_parser("list", help="list pools and their occupancy")
    _output(p)
    p.set_defaults(handler=cmd_pools_list)
    p = cmds.add_parser("get", help="show one pool")
    p.add_argument("name")
    _output(p)
    p.set_defaults(handler=cmd_pools_get)
    p = cmds.add_parser("delete", help="delete a pool (not default_pool)")
    p.add_argument("name")
    p.set_defaults(handler=cmd_pools_delete)
