"""A safe filter expression over an external Kafka message (ADR 0014).

A watcher's ``filter="value.kind == 'order' and value.amount > 10"`` decides whether a
message triggers a run. The expression is parsed with :mod:`ast` and walked against a
whitelist; nothing is ever ``eval``-ed, there are no calls, no comprehensions, no
lambdas and no names but the message's fields:

``key`` (str, or None), ``value`` (the parsed JSON, or the text / bytes, per the
watcher's ``value_format``), ``headers`` (dict of str to str), ``topic``, ``partition``,
``offset``, ``timestamp`` (milliseconds since the epoch), plus ``True``, ``False``,
``None``.

Allowed: literals (numbers, strings, bytes, tuples/lists/sets/dicts of literals),
comparisons (``== != < <= > >= in not in is is not``, chained), ``and``/``or``/``not``,
unary minus, arithmetic (``+ - * / // %``) on numbers only, attribute access on dicts
(``value.kind`` is ``value["kind"]``), subscripts (``value["k"]``, ``value.items[0]``)
and ``x if c else y``. Attribute names starting with ``_`` are refused. A missing key
or index is None (``value.x == None`` holds when there is no ``x``); a comparison
between types that do not compare (``None > 10``) is false; evaluation never raises.

Pure: no I/O, standard library only. :func:`compile_filter` validates once (at DAG
parse time and when a watcher starts); :meth:`MessageFilter.matches` evaluates.
"""

from __future__ import annotations

import ast
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

NAMES = ("key", "value", "headers", "topic", "partition", "offset", "timestamp")
MAX_LENGTH = 2000
MAX_NODES = 200
MAX_DEPTH = 30
_MAX_STR = 10_000  # results of + / * on strings and sequences are capped


class FilterError(ValueError):
    """The expression is not a valid filter. ``col`` is 1-based within the expression."""

    def __init__(self, message: str, col: int | None = None) -> None:
        super().__init__(message if col is None else f"{message} (column {col})")
        self.col = col


class _Missing(Exception):
    """A lookup or operation that does not apply to this message: no match."""


_COMPARE: dict[type[ast.cmpop], Callable[[Any, Any], bool]] = {
    ast.Eq: operator.eq,
    ast.NotEq: operator.ne,
    ast.Lt: operator.lt,
    ast.LtE: operator.le,
    ast.Gt: operator.gt,
    ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b,
    ast.NotIn: lambda a, b: a not in b,
    ast.Is: operator.is_,
    ast.IsNot: operator.is_not,
}
_ARITH: dict[type[ast.operator], Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
}
_LITERAL_TYPES = (str, bytes, int, float, bool, type(None))


def _check(node: ast.AST, depth: int = 0) -> None:
    if depth > MAX_DEPTH:
        raise FilterError("the expression is nested too deeply")
    col = getattr(node, "col_offset", None)
    col = col + 1 if isinstance(col, int) else None
    match node:
        case ast.Expression():
            _check(node.body, depth + 1)
        case ast.BoolOp(values=values):
            for v in values:
                _check(v, depth + 1)
        case ast.UnaryOp(op=ast.Not() | ast.USub() | ast.UAdd(), operand=operand):
            _check(operand, depth + 1)
        case ast.BinOp(op=op, left=left, right=right) if type(op) in _ARITH:
            _check(left, depth + 1)
            _check(right, depth + 1)
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            if any(type(o) not in _COMPARE for o in ops):
                raise FilterError("unsupported comparison", col)
            _check(left, depth + 1)
            for c in comparators:
                _check(c, depth + 1)
        case ast.IfExp(test=test, body=body, orelse=orelse):
            for n in (test, body, orelse):
                _check(n, depth + 1)
        case ast.Name(id=name, ctx=ast.Load()):
            if name not in NAMES:
                raise FilterError(
                    f"unknown name {name!r} (a filter can use {', '.join(NAMES)})", col
                )
        case ast.Constant(value=value):
            if not isinstance(value, _LITERAL_TYPES):
                raise FilterError(f"unsupported literal {value!r}", col)
        case ast.Attribute(value=inner, attr=attr, ctx=ast.Load()):
            if attr.startswith("_"):
                raise FilterError(f"attribute {attr!r} is not allowed", col)
            _check(inner, depth + 1)
        case ast.Subscript(value=inner, slice=index, ctx=ast.Load()):
            if isinstance(index, ast.Slice):
                raise FilterError("slices are not supported", col)
            _check(inner, depth + 1)
            _check(index, depth + 1)
        case ast.Tuple(elts=elts, ctx=ast.Load()) | ast.List(elts=elts, ctx=ast.Load()):
            for e in elts:
                _check(e, depth + 1)
        case ast.Set(elts=elts):
            for e in elts:
                _check(e, depth + 1)
        case ast.Dict(keys=keys, values=values):
            for k in keys:
                if k is None:
                    raise FilterError("'**' is not allowed", col)
                _check(k, depth + 1)
            for v in values:
                _check(v, depth + 1)
        case ast.Call():
            raise FilterError("function calls are not allowed", col)
        case _:
            raise FilterError(f"{type(node).__name__} is not allowed in a filter", col)


def _lookup(container: Any, key: Any) -> Any:
    """``container[key]``, or None when it has no such key/index (JSON's "absent")."""
    if isinstance(container, Mapping):
        try:
            return container.get(key)
        except TypeError:  # an unhashable key
            return None
    if isinstance(container, list | tuple) and isinstance(key, int) and not isinstance(key, bool):
        return container[key] if -len(container) <= key < len(container) else None
    return None


def _safe_binop(op: Callable[[Any, Any], Any], a: Any, b: Any) -> Any:
    numeric = (int, float)
    if isinstance(a, numeric) and isinstance(b, numeric):
        if op is operator.mul and isinstance(a, int) and isinstance(b, int):
            if abs(a) > 10**18 or abs(b) > 10**18:
                raise _Missing
        return op(a, b)
    if op is operator.add and type(a) is type(b) and isinstance(a, str | bytes):
        if len(a) + len(b) > _MAX_STR:
            raise _Missing
        return a + b
    raise _Missing  # no sequence repetition (memory), no mixed types


def _eval(node: ast.AST, env: Mapping[str, Any]) -> Any:
    match node:
        case ast.BoolOp(op=ast.And(), values=values):
            result: Any = True
            for v in values:
                result = _eval(v, env)
                if not result:
                    return result
            return result
        case ast.BoolOp(values=values):  # Or
            result = False
            for v in values:
                result = _eval(v, env)
                if result:
                    return result
            return result
        case ast.UnaryOp(op=ast.Not(), operand=operand):
            return not _eval(operand, env)
        case ast.UnaryOp(op=op, operand=operand):
            v = _eval(operand, env)
            if not isinstance(v, int | float) or isinstance(v, bool):
                raise _Missing
            return -v if isinstance(op, ast.USub) else v
        case ast.BinOp(op=op, left=left, right=right):
            return _safe_binop(_ARITH[type(op)], _eval(left, env), _eval(right, env))
        case ast.Compare(left=left, ops=ops, comparators=comparators):
            a = _eval(left, env)
            for cop, c in zip(ops, comparators, strict=True):
                b = _eval(c, env)
                try:
                    ok = _COMPARE[type(cop)](a, b)
                except TypeError:  # e.g. None > 10, 1 in 5: this comparison is false
                    return False
                if not ok:
                    return False
                a = b
            return True
        case ast.IfExp(test=test, body=body, orelse=orelse):
            return _eval(body, env) if _eval(test, env) else _eval(orelse, env)
        case ast.Name(id=name):
            return env.get(name)
        case ast.Constant(value=value):
            return value
        case ast.Attribute(value=inner, attr=attr):
            return _lookup(_eval(inner, env), attr)
        case ast.Subscript(value=inner, slice=index):
            return _lookup(_eval(inner, env), _eval(index, env))
        case ast.Tuple(elts=elts) | ast.List(elts=elts):
            return tuple(_eval(e, env) for e in elts)
        case ast.Set(elts=elts):
            try:
                return frozenset(_eval(e, env) for e in elts)
            except TypeError:
                raise _Missing from None
        case ast.Dict(keys=keys, values=values):
            try:
                return {
                    _eval(k, env): _eval(v, env)
                    for k, v in zip(keys, values, strict=True)
                    if k is not None  # always (``**`` is refused by _check)
                }
            except TypeError:
                raise _Missing from None
    raise _Missing  # unreachable after _check


@dataclass(frozen=True)
class MessageFilter:
    """A validated filter; :meth:`matches` never raises for any message."""

    source: str
    _tree: ast.Expression

    def matches(self, message: Mapping[str, Any]) -> bool:
        try:
            return bool(_eval(self._tree.body, message))
        except (_Missing, ArithmeticError, RecursionError, ValueError, TypeError):
            return False


def compile_filter(source: str) -> MessageFilter:
    """Parse and validate ``source``; :class:`FilterError` says what is wrong."""
    if not isinstance(source, str):
        raise FilterError(f"a filter must be a string, not {type(source).__name__}")
    if not source.strip():
        raise FilterError("a filter must not be empty")
    if len(source) > MAX_LENGTH:
        raise FilterError(f"a filter is limited to {MAX_LENGTH} characters")
    try:
        tree = ast.parse(source.strip(), mode="eval")
    except SyntaxError as e:
        raise FilterError(f"invalid filter syntax: {e.msg}", e.offset) from None
    except (ValueError, RecursionError, MemoryError) as e:
        raise FilterError(f"invalid filter: {type(e).__name__}") from None
    if sum(1 for _ in ast.walk(tree)) > MAX_NODES:
        raise FilterError(f"a filter is limited to {MAX_NODES} syntax nodes")
    _check(tree)
    return MessageFilter(source, tree)


def message_env(
    *,
    key: Any,
    value: Any,
    headers: Mapping[str, Any],
    topic: str,
    partition: int,
    offset: int,
    timestamp: int | None,
) -> dict[str, Any]:
    """The names a filter sees for one message."""
    return {
        "key": key,
        "value": value,
        "headers": dict(headers),
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "timestamp": timestamp,
    }


__all__ = ["NAMES", "FilterError", "MessageFilter", "compile_filter", "message_env"]
