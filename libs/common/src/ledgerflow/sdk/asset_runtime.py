"""Assets while a task runs (ADR 0013): Airflow 3's ``outlet_events``,
``triggering_asset_events`` and ``inlet_events`` context keys, ``yield Metadata(...)``,
and the asset events a successful attempt reports.

The runner request may carry ``triggering_asset_events`` (a list of event dicts, from
the run) and ``inlet_events`` (``{asset name: [event dicts]}``, the latest events of
the task's inlets); the outcome carries ``asset_events`` (``[{name, uri, group, extra,
source_aliases}]``).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ledgerflow.sdk.assets import Asset, AssetAlias, Metadata


@dataclass(frozen=True)
class AssetEvent:
    """An asset event as a task sees it (Airflow's ``AssetEvent``)."""

    asset: Asset
    extra: dict[str, Any]
    timestamp: datetime | None
    id: str | None = None
    source_dag_id: str | None = None
    source_task_id: str | None = None
    source_run_id: str | None = None
    source_map_index: int = -1
    source_aliases: list[AssetAlias] = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> AssetEvent:
        ts = d.get("timestamp")
        return cls(
            asset=Asset(
                name=str(d["name"]), uri=str(d.get("uri") or d["name"]), group=d.get("group")
            ),
            extra=dict(d.get("extra") or {}),
            timestamp=datetime.fromisoformat(ts) if isinstance(ts, str) else None,
            id=d.get("id"),
            source_dag_id=d.get("source_dag_id"),
            source_task_id=d.get("source_task_id"),
            source_run_id=d.get("source_run_id"),
            source_map_index=int(d.get("source_map_index", -1)),
            source_aliases=[AssetAlias(a) for a in d.get("source_aliases") or ()],
        )

    @property
    def uri(self) -> str:
        return str(self.asset.uri)


def _name_of(key: Any) -> tuple[str, str]:
    """``("asset"|"alias", name)`` of an Asset, an AssetAlias or a name/URI string."""
    if isinstance(key, AssetAlias):
        return ("alias", key.name)
    if isinstance(key, Asset):
        return ("asset", key.name)
    name = getattr(key, "name", None)
    if isinstance(name, str):  # Airflow's AssetUniqueKey / AssetAliasUniqueKey
        return ("asset", name)
    if isinstance(key, str):
        return ("asset", key)
    raise KeyError(key)


class _EventsByAsset(Mapping[Asset, list[AssetEvent]]):
    def __init__(self, events: list[AssetEvent]) -> None:
        self._events = events
        self._by_name: dict[str, list[AssetEvent]] = {}
        self._assets: dict[str, Asset] = {}
        for e in events:
            self._by_name.setdefault(e.asset.name, []).append(e)
            self._assets.setdefault(e.asset.name, e.asset)

    def __getitem__(self, key: Any) -> list[AssetEvent]:
        kind, name = _name_of(key)
        if kind == "alias":
            return [e for e in self._events if any(a.name == name for a in e.source_aliases)]
        found = self._by_name.get(name)
        if found is None:
            found = [e for e in self._events if e.asset.uri == name]
        return list(found)

    def __iter__(self) -> Iterator[Asset]:
        return iter(self._assets.values())

    def __len__(self) -> int:
        return len(self._assets)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({dict(self.items())!r})"


class TriggeringAssetEvents(_EventsByAsset):
    """``context["triggering_asset_events"]``: the events that triggered an asset run,
    by asset (``[asset]``, ``[alias]`` or ``["name"]``)."""


class InletEventsAccessors(_EventsByAsset):
    """``context["inlet_events"][asset]``: the latest events of an inlet, oldest first
    (``[-1]`` is the newest)."""

    def __getitem__(self, key: Any) -> list[AssetEvent]:
        return super().__getitem__(key) if key is not None else []


class OutletEventAccessor:
    """``outlet_events[asset].extra[...] = ...``; for an alias,
    ``outlet_events[alias].add(Asset(...), extra={...})``."""

    def __init__(self, key: Asset | AssetAlias) -> None:
        self.key = key
        self.extra: dict[str, Any] = {}
        self.asset_alias_events: list[tuple[Asset, dict[str, Any]]] = []

    def add(self, asset: Asset | str, extra: dict[str, Any] | None = None) -> None:
        if not isinstance(self.key, AssetAlias):
            raise TypeError(f"add() is for asset aliases; {self.key!r} is an asset")
        if isinstance(asset, str):
            asset = Asset(asset)
        self.asset_alias_events.append((asset, dict(extra or {})))

    def __repr__(self) -> str:
        return f"OutletEventAccessor(key={self.key!r}, extra={self.extra!r})"


class OutletEventAccessors(Mapping[Any, OutletEventAccessor]):
    """``context["outlet_events"]``: one accessor per asset or alias, made on first use."""

    def __init__(self) -> None:
        self._accessors: dict[tuple[str, str], OutletEventAccessor] = {}
        self._keys: dict[tuple[str, str], Asset | AssetAlias] = {}

    def __getitem__(self, key: Any) -> OutletEventAccessor:
        k = _name_of(key)
        if k not in self._accessors:
            obj = key if isinstance(key, Asset | AssetAlias) else Asset(k[1])
            self._accessors[k] = OutletEventAccessor(obj)
            self._keys[k] = obj
        return self._accessors[k]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._keys.values())

    def __len__(self) -> int:
        return len(self._accessors)

    def get_existing(self, key: Any) -> OutletEventAccessor | None:
        return self._accessors.get(_name_of(key))


def install(context: dict[str, Any], request: Mapping[str, Any]) -> None:
    """Put the asset keys into an attempt's context."""
    raw = request.get("triggering_asset_events") or []
    triggering = [AssetEvent.from_dict(e) for e in raw if isinstance(e, Mapping) and "name" in e]
    inlets_raw = request.get("inlet_events") or {}
    inlet_events: list[AssetEvent] = []
    if isinstance(inlets_raw, Mapping):
        for events in inlets_raw.values():
            inlet_events.extend(
                AssetEvent.from_dict(e) for e in events or () if isinstance(e, Mapping)
            )
    context["triggering_asset_events"] = TriggeringAssetEvents(triggering)
    context["inlet_events"] = InletEventsAccessors(inlet_events)
    context["outlet_events"] = OutletEventAccessors()
    dag_run = context.get("dag_run")
    if dag_run is not None:
        dag_run.consumed_asset_events = list(triggering)


def drain_metadata(result: Any, context: Mapping[str, Any]) -> Any:
    """A task that ``yield``s ``Metadata``: apply each to ``outlet_events`` and return
    the generator's return value (Airflow's executable runner)."""
    if not inspect.isgenerator(result):
        return result
    outlet_events = context["outlet_events"]
    while True:
        try:
            item = next(result)
        except StopIteration as stop:
            return stop.value
        if isinstance(item, Metadata):
            asset = item.asset
            assert isinstance(asset, Asset)
            if item.alias is not None:
                outlet_events[item.alias].add(asset, extra=item.extra)
            else:
                outlet_events[asset].extra.update(item.extra)


def _jsonable(extra: dict[str, Any], what: str) -> dict[str, Any]:
    try:
        return dict(json.loads(json.dumps(extra)))
    except (TypeError, ValueError) as e:
        raise TypeError(f"the extra of the asset event of {what} is not JSON: {e}") from None


def collect(outlets: Any, outlet_events: OutletEventAccessors) -> list[dict[str, Any]]:
    """The asset events of a successful attempt: one per outlet asset, and one per asset
    added through an outlet alias (merged when the same asset comes twice)."""
    events: dict[str, dict[str, Any]] = {}
    for outlet in outlets or ():
        if isinstance(outlet, AssetAlias):
            acc = outlet_events.get_existing(outlet)
            for asset, extra in acc.asset_alias_events if acc is not None else ():
                ev = events.setdefault(
                    asset.name,
                    {
                        "name": asset.name,
                        "uri": asset.uri,
                        "group": asset.group,
                        "extra": {},
                        "source_aliases": [],
                    },
                )
                ev["extra"].update(_jsonable(extra, repr(asset)))
                if outlet.name not in ev["source_aliases"]:
                    ev["source_aliases"].append(outlet.name)
        elif isinstance(outlet, Asset):
            acc = outlet_events.get_existing(outlet)
            extra = _jsonable(acc.extra if acc is not None else {}, repr(outlet))
            ev = events.setdefault(
                outlet.name,
                {
                    "name": outlet.name,
                    "uri": outlet.uri,
                    "group": outlet.group,
                    "extra": {},
                    "source_aliases": [],
                },
            )
            ev["extra"].update(extra)
    return list(events.values())


__all__ = [
    "AssetEvent",
    "InletEventsAccessors",
    "OutletEventAccessor",
    "OutletEventAccessors",
    "TriggeringAssetEvents",
    "collect",
    "drain_metadata",
    "install",
]
