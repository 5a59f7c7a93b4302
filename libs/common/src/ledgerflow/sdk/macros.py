"""``{{ macros.* }}`` in templates and ``context["macros"]`` in tasks (Airflow's set).

``macros.ds_add(ds, 5)``, ``macros.ds_format(ds, "%Y-%m-%d", "%d/%m/%Y")``,
``macros.datetime`` and ``macros.timedelta`` (the classes), ``macros.time``,
``macros.uuid`` and ``macros.json`` (the modules), ``macros.random`` (the function
``random.random``, as in Airflow) and ``macros.dateutil`` when python-dateutil is
installed. The modules Airflow exposes are imported on first use, so that a task that
never touches them does not pay for them.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

_LAZY = ("dateutil", "json", "random", "time", "uuid")
__all__ = ["datetime", "datetime_diff_for_humans", "ds_add", "ds_format", "timedelta"]


def ds_add(ds: str, days: int) -> str:
    """Add (or, negative, subtract) days to a ``YYYY-MM-DD`` date.

    >>> ds_add("2015-01-01", 5)
    '2015-01-06'
    >>> ds_add("2015-01-06", -5)
    '2015-01-01'
    """
    if not days:
        return str(ds)
    return (datetime.strptime(str(ds), "%Y-%m-%d") + timedelta(days=days)).strftime("%Y-%m-%d")


def ds_format(ds: str, input_format: str, output_format: str) -> str:
    """Re-format a date string.

    >>> ds_format("2015-01-01", "%Y-%m-%d", "%m-%d-%y")
    '01-01-15'
    """
    return datetime.strptime(str(ds), input_format).strftime(output_format)


def datetime_diff_for_humans(dt: datetime, since: datetime | None = None) -> str:
    """An approximate, readable difference: ``"3 hours ago"``, ``"in 2 days"``.

    Airflow delegates this to pendulum; this is the same idea without the dependency
    (largest whole unit, English only).
    """
    from datetime import UTC

    def aware(value: datetime) -> datetime:
        return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

    reference = aware(since) if since is not None else datetime.now(UTC)
    seconds = (aware(dt) - reference).total_seconds()
    amount = abs(seconds)
    for unit, size in (
        ("year", 365 * 86400),
        ("month", 30 * 86400),
        ("week", 7 * 86400),
        ("day", 86400),
        ("hour", 3600),
        ("minute", 60),
        ("second", 1),
    ):
        if amount >= size or unit == "second":
            count = max(int(amount // size), 1)
            phrase = f"{count} {unit}{'s' if count != 1 else ''}"
            break
    if since is None:
        return f"in {phrase}" if seconds > 0 else f"{phrase} ago"
    return f"{phrase} after" if seconds > 0 else f"{phrase} before"


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


def __getattr__(name: str) -> Any:
    # PEP 562: the modules Airflow puts on ``macros`` are imported when first used.
    import importlib

    module: Any
    if name in ("json", "time", "uuid"):
        module = importlib.import_module(name)
    elif name == "random":
        module = importlib.import_module("random").random  # Airflow exposes the function
    elif name == "dateutil":
        try:
            module = importlib.import_module("dateutil")
            importlib.import_module("dateutil.parser")  # the parts templates use
            importlib.import_module("dateutil.relativedelta")
        except ImportError:
            raise AttributeError(
                "macros.dateutil needs python-dateutil, which is not installed"
            ) from None
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = module
    return module
