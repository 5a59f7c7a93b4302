"""How client commands print results: a table (default), JSON or YAML (``--output``).

YAML is written by a small emitter (the CLI does not depend on PyYAML): block style for
mappings and lists, every scalar as its JSON spelling, which YAML reads back as the same
value (a JSON string is a YAML double-quoted scalar).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any

FORMATS = ("table", "json", "yaml")


def _scalar(value: Any) -> str:
    return json.dumps(value, default=str, ensure_ascii=False)


def _yaml_lines(value: Any, indent: int) -> list[str]:
    pad = " " * indent
    if isinstance(value, dict):
        if not value:
            return [pad + "{}"]
        lines: list[str] = []
        for key, item in value.items():
            head = f"{pad}{_scalar(str(key))}:"
            if isinstance(item, dict | list | tuple) and item:
                lines.append(head)
                lines += _yaml_lines(item, indent + 2)
            else:
                lines.append(f"{head} {_yaml_lines(item, 0)[0]}")
        return lines
    if isinstance(value, list | tuple):
        if not value:
            return [pad + "[]"]
        lines = []
        for item in value:
            nested = _yaml_lines(item, indent + 2)
            if isinstance(item, dict | list | tuple) and item:
                lines.append(f"{pad}- {nested[0].lstrip()}")
                lines += nested[1:]
            else:
                lines.append(f"{pad}- {nested[0].lstrip()}")
        return lines
    return [pad + _scalar(value)]


def to_yaml(value: Any) -> str:
    """``value`` (JSON-like) as a YAML document."""
    return "\n".join(_yaml_lines(value, 0)) + "\n"


def to_json(value: Any) -> str:
    return json.dumps(value, indent=2, default=str, ensure_ascii=False) + "\n"


def emit(
    output: str,
    value: Any,
    table: Callable[[], tuple[Sequence[str], Sequence[Sequence[Any]]]] | None = None,
    *,
    write: Callable[[str], Any] | None = None,
) -> None:
    """Print ``value`` as ``output``; ``table`` gives (headers, rows) for the table
    format (without one, a table prints ``key: value`` lines of a mapping)."""
    out = write or (lambda text: print(text, end=""))
    if output == "json":
        out(to_json(value))
    elif output == "yaml":
        out(to_yaml(value))
    elif table is not None:
        headers, rows = table()
        out(format_table(headers, rows))
    elif isinstance(value, dict):
        out("".join(f"{key + ':':<18}{cell(item)}\n" for key, item in value.items()))
    else:
        out(to_json(value))


def cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | tuple):
        return (
            ",".join(str(v.get("name", v)) if isinstance(v, dict) else str(v) for v in value) or "-"
        )
    if isinstance(value, dict):
        return json.dumps(value, default=str) if value else "-"
    return str(value)


def format_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Left-aligned columns separated by two spaces, like ``docker ps``."""
    cells = [[cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = [list(headers), *cells]
    return "".join(
        "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() + "\n"
        for line in lines
    )
