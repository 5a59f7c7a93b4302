"""Cron expressions and deltas in English words, for the UI (Airflow shows
``cron_descriptor``'s reading; this covers the common shapes and otherwise shows the
expression itself)."""

from __future__ import annotations

import re
from datetime import timedelta


def words_for_delta(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60), ("second", 1)):
        if seconds and seconds % size == 0:
            n = seconds // size
            return f"{n} {unit}" if n == 1 else f"{n} {unit}s"
    return str(delta)


_DAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTHS = (
    "January February March April May June July August September October November December"
).split()


def _field_words(field: str, names: tuple[str, ...] | list[str] | None, offset: int) -> str:
    def name(token: str) -> str:
        if names is None or not token.isdigit():
            return token
        index = int(token) - offset
        return names[index % len(names)] if 0 <= index <= len(names) else token

    parts = []
    for piece in field.split(","):
        if "-" in piece and "/" not in piece:
            lo, hi = piece.split("-", 1)
            parts.append(f"{name(lo)} through {name(hi)}")
        else:
            parts.append(name(piece))
    return ", ".join(parts)


def describe_cron(expression: str) -> str:
    """A short English reading of a five-field cron expression ("At 00:00, only on
    Monday"); the expression itself when it is not a shape this reads."""
    expr = expression.strip()
    fields = expr.split()
    if len(fields) != 5:
        return expr
    minute, hour, dom, month, dow = fields
    simple = re.compile(r"^\d{1,2}$")
    if simple.match(minute) and simple.match(hour):
        words = f"At {int(hour):02d}:{int(minute):02d}"
    elif simple.match(minute) and hour == "*":
        words = f"At {int(minute)} minutes past the hour"
    elif minute == "*" and hour == "*":
        words = "Every minute"
    elif minute.startswith("*/") and hour == "*":
        words = f"Every {minute[2:]} minutes"
    elif simple.match(minute) and hour.startswith("*/"):
        words = f"At {int(minute)} minutes past the hour, every {hour[2:]} hours"
    else:
        return expr
    if dom != "*":
        if dom.startswith("*/"):
            words += f", every {dom[2:]} days"
        else:
            words += f", on day {_field_words(dom, None, 0)} of the month"
    if dow != "*":
        words += f", only on {_field_words(dow, _DAYS, 0)}"
    if month != "*":
        if month.startswith("*/"):
            words += f", every {month[2:]} months"
        else:
            words += f", only in {_field_words(month, _MONTHS, 1)}"
    return words
