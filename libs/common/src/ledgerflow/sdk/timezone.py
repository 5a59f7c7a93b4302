"""Timezone helpers with Airflow's names (``airflow.sdk.timezone``,
``airflow.utils.timezone``), on the standard library: naive datetimes mean UTC."""

from __future__ import annotations

import datetime as dt
from datetime import UTC, timedelta, tzinfo
from typing import Any

utc = UTC


def utcnow() -> dt.datetime:
    """The current time, aware, in UTC."""
    return dt.datetime.now(UTC)


def datetime(*args: Any, **kwargs: Any) -> dt.datetime:
    """``datetime.datetime(...)`` that is UTC unless ``tzinfo`` is given."""
    if "tzinfo" not in kwargs and len(args) < 8:
        kwargs["tzinfo"] = UTC
    return dt.datetime(*args, **kwargs)


def is_localized(value: dt.datetime) -> bool:
    return value.utcoffset() is not None


def is_naive(value: dt.datetime) -> bool:
    return value.utcoffset() is None


def make_aware(value: dt.datetime | None, timezone: tzinfo | None = None) -> dt.datetime | None:
    """``value`` with ``timezone`` (UTC by default) when it is naive."""
    if value is None:
        return None
    if is_localized(value):
        raise ValueError(f"make_aware expects a naive datetime, got {value}")
    return value.replace(tzinfo=timezone or UTC)


def make_naive(value: dt.datetime, timezone: tzinfo | None = None) -> dt.datetime:
    """``value`` converted to ``timezone`` (UTC by default), without tzinfo."""
    if is_naive(value):
        raise ValueError("make_naive() cannot be applied to a naive datetime")
    return value.astimezone(timezone or UTC).replace(tzinfo=None)


def convert_to_utc(value: dt.datetime | None) -> dt.datetime | None:
    """``value`` in UTC (a naive value is taken as UTC)."""
    if value is None:
        return None
    if is_naive(value):
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def coerce_datetime(value: dt.datetime | None, tz: tzinfo | None = None) -> dt.datetime | None:
    if value is None:
        return None
    return value if is_localized(value) else value.replace(tzinfo=tz or UTC)


def parse(string: str, timezone: tzinfo | None = None, **_: Any) -> dt.datetime:
    """An ISO 8601 string as an aware datetime (naive means ``timezone``, default UTC)."""
    value = dt.datetime.fromisoformat(string.strip())
    return value if is_localized(value) else value.replace(tzinfo=timezone or UTC)


def days_ago(
    n: int, hour: int = 0, minute: int = 0, second: int = 0, microsecond: int = 0
) -> dt.datetime:
    """Midnight (or the given time) UTC, ``n`` days ago (Airflow 2's ``days_ago``)."""
    today = utcnow().replace(hour=hour, minute=minute, second=second, microsecond=microsecond)
    return today - timedelta(days=n)
