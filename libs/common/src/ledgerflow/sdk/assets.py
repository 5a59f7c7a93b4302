"""Assets (Airflow 3's ``airflow.sdk.Asset``, Airflow 2's ``Dataset``) and data-aware
schedules (ADR 0013).

- ``Asset(name, uri, group, extra, watchers)``, ``AssetAlias(name, group)``;
- ``a & b`` is ``AssetAll``, ``a | b`` is ``AssetAny``; ``schedule=[a, b]`` means all;
- ``AssetOrTimeSchedule(timetable=..., assets=...)``: runs on the assets or the time;
- ``Metadata(asset, extra, alias=None)``: ``yield`` it from a task to attach ``extra``
  to the asset event of one of its outlets (or to an asset added through an alias).

:func:`asset_schedule` turns a ``schedule=`` into the serialized timetable and
condition; :func:`serialize_refs` turns ``inlets``/``outlets`` into asset references.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import AssetCondition, AssetRef, TimetableSpec

_MAX_LEN = 1500  # Airflow's limit on names and URIs


class BaseAsset:
    """What can appear in an asset schedule: an asset, an alias, or ``&``/``|`` of them."""

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(self, other)

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(self, other)

    def iter_assets(self) -> Iterator[Asset]:
        return iter(())

    def iter_asset_aliases(self) -> Iterator[AssetAlias]:
        return iter(())

    def as_condition(self) -> AssetCondition:  # pragma: no cover - overridden
        raise NotImplementedError


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"an asset's {what} must be a non-empty string, not {value!r}")
    if len(value) > _MAX_LEN:
        raise ValueError(f"an asset's {what} is longer than {_MAX_LEN} characters")
    return value


class Asset(BaseAsset):
    """A piece of data a task produces (``outlets``) or reads (``inlets``), and that DAGs
    can be scheduled on. ``Asset("s3://b/k")`` names it by its URI; a name or a URI
    alone stands for both, as in Airflow."""

    asset_type = "asset"

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str | None = None,
        extra: dict[str, Any] | None = None,
        watchers: Iterable[Any] | None = None,
    ) -> None:
        if name is None and uri is None:
            raise TypeError("Asset() requires either 'name' or 'uri'")
        self.name = _check_text(name if name is not None else uri, "name")
        self.uri = _check_text(uri if uri is not None else name, "uri")
        self.group = group or self.asset_type
        if extra is not None and not isinstance(extra, dict):
            raise TypeError(f"Asset extra must be a dict, not {type(extra).__name__}")
        self.extra = dict(extra or {})
        self.watchers = list(watchers or [])

    def __repr__(self) -> str:
        return f"Asset(name={self.name!r}, uri={self.uri!r}, group={self.group!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and (self.name, self.uri) == (other.name, other.uri)

    def __hash__(self) -> int:
        return hash((self.name, self.uri))

    def iter_assets(self) -> Iterator[Asset]:
        yield self

    def as_asset_ref(self) -> AssetRef:
        from ledgerflow.common.dagmodel import AssetRef

        return AssetRef(
            kind="asset",
            name=self.name,
            uri=self.uri,
            group=self.group,
            extra=_jsonable(self.extra, f"extra of {self!r}"),
            watchers=tuple(w.serialize() for w in self.watchers if hasattr(w, "serialize")),
        )

    def as_condition(self) -> AssetCondition:
        from ledgerflow.common.dagmodel import AssetCondition

        return AssetCondition(op="asset", asset=self.as_asset_ref())


Dataset = Asset


class Model(Asset):
    """Airflow's ``Model`` asset type (group ``model``)."""

    asset_type = "model"


class AssetAlias(BaseAsset):
    """A name the producing task resolves at run time to the assets it adds through
    ``outlet_events[alias].add(Asset(...))``; DAGs scheduled on the alias run on the
    events of those assets."""

    def __init__(self, name: str, group: str = "asset") -> None:
        self.name = _check_text(name, "alias name")
        self.group = group or "asset"

    def __repr__(self) -> str:
        return f"AssetAlias(name={self.name!r}, group={self.group!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetAlias) and self.name == other.name

    def __hash__(self) -> int:
        return hash(("alias", self.name))

    def iter_asset_aliases(self) -> Iterator[AssetAlias]:
        yield self

    def as_asset_ref(self) -> AssetRef:
        from ledgerflow.common.dagmodel import AssetRef

        return AssetRef(kind="alias", name=self.name, uri="", group=self.group)

    def as_condition(self) -> AssetCondition:
        from ledgerflow.common.dagmodel import AssetCondition

        return AssetCondition(op="alias", asset=self.as_asset_ref())


class _AssetBooleanCondition(BaseAsset):
    op = "all"

    def __init__(self, *objects: BaseAsset) -> None:
        for o in objects:
            if not isinstance(o, BaseAsset):
                raise TypeError(f"expected assets or asset aliases, got {o!r}")
        self.objects = list(objects)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(map(repr, self.objects))})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _AssetBooleanCondition) and (
            type(other) is type(self) and self.objects == other.objects
        )

    def __hash__(self) -> int:
        return hash((type(self).__name__, tuple(self.objects)))

    def iter_assets(self) -> Iterator[Asset]:
        for o in self.objects:
            yield from o.iter_assets()

    def iter_asset_aliases(self) -> Iterator[AssetAlias]:
        for o in self.objects:
            yield from o.iter_asset_aliases()

    def as_condition(self) -> AssetCondition:
        from ledgerflow.common.dagmodel import AssetCondition

        return AssetCondition(op=self.op, children=tuple(o.as_condition() for o in self.objects))


class AssetAll(_AssetBooleanCondition):
    """Every one of the assets (``a & b``, ``schedule=[a, b]``)."""

    op = "all"

    def __and__(self, other: BaseAsset) -> AssetAll:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAll(*self.objects, other)


class AssetAny(_AssetBooleanCondition):
    """Any one of the assets (``a | b``)."""

    op = "any"

    def __or__(self, other: BaseAsset) -> AssetAny:
        if not isinstance(other, BaseAsset):
            return NotImplemented
        return AssetAny(*self.objects, other)


@dataclass
class Metadata:
    """``yield Metadata(asset, {"rows": 3})`` from a task: ``extra`` for the asset event
    of that outlet (with ``alias``: an event added through the alias)."""

    asset: Asset | str
    extra: dict[str, Any] = field(default_factory=dict)
    alias: AssetAlias | str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.asset, str):
            self.asset = Asset(self.asset)
        if isinstance(self.alias, str):
            self.alias = AssetAlias(self.alias)


class AssetOrTimeSchedule:
    """Airflow's ``AssetOrTimeSchedule``: a run at each time of ``timetable`` and a run
    whenever ``assets`` hold."""

    def __init__(self, *, timetable: Any, assets: BaseAsset | Iterable[BaseAsset]) -> None:
        self.timetable = timetable
        self.assets = assets if isinstance(assets, BaseAsset) else AssetAll(*assets)

    def __repr__(self) -> str:
        return f"AssetOrTimeSchedule(timetable={self.timetable!r}, assets={self.assets!r})"


# --------------------------------------------------------------------------- serialization
def _jsonable(value: dict[str, Any], what: str) -> dict[str, Any]:
    import json

    try:
        return dict(json.loads(json.dumps(value)))
    except (TypeError, ValueError) as e:
        raise TypeError(f"the {what} must be JSON-serializable: {e}") from None


def serialize_refs(objects: Iterable[Any]) -> tuple[AssetRef, ...]:
    """Assets and aliases among ``inlets``/``outlets`` (other lineage objects ignored)."""
    out: list[AssetRef] = []
    for o in objects:
        if isinstance(o, Asset | AssetAlias):
            out.append(o.as_asset_ref())
        elif isinstance(o, _AssetBooleanCondition):
            out.extend(a.as_asset_ref() for a in o.iter_assets())
    return tuple(out)


def _condition_text(obj: BaseAsset) -> str:
    if isinstance(obj, Asset):
        return obj.name
    if isinstance(obj, AssetAlias):
        return f"alias:{obj.name}"
    assert isinstance(obj, _AssetBooleanCondition)
    sep = " & " if obj.op == "all" else " | "
    return "(" + sep.join(_condition_text(o) for o in obj.objects) + ")"


@dataclass(frozen=True)
class AssetSchedule:
    """What an asset ``schedule=`` serializes to."""

    timetable: TimetableSpec
    condition: AssetCondition
    summary: str


def asset_schedule(schedule: Any) -> AssetSchedule | None:
    """The timetable and condition of an asset schedule (None: not an asset schedule)."""
    from ledgerflow.common.dagmodel import TimetableSpec

    time_part: Any = None
    if isinstance(schedule, AssetOrTimeSchedule):
        time_part, assets = schedule.timetable, schedule.assets
    elif isinstance(schedule, BaseAsset):
        assets = schedule
    elif (
        isinstance(schedule, list | tuple | set | frozenset)
        and schedule
        and all(isinstance(o, BaseAsset) for o in schedule)
    ):
        assets = AssetAll(*schedule)
    else:
        return None
    condition = assets.as_condition()
    text = _condition_text(assets)
    if time_part is None:
        return AssetSchedule(TimetableSpec(kind="asset", description="Asset"), condition, text)
    spec = _time_spec(time_part)
    data = spec.model_dump()
    data.update(kind="asset_or_time", time_kind=spec.kind)
    data["description"] = f"Asset or {spec.description or spec.expression or spec.kind}"
    return AssetSchedule(TimetableSpec(**data), condition, f"{text} or {time_part!r}")


def _time_spec(timetable: Any) -> TimetableSpec:
    """The time part of an ``AssetOrTimeSchedule``, through the timetables module."""
    from ledgerflow.common.dagmodel import TimetableSpec

    if isinstance(timetable, TimetableSpec):
        return timetable
    try:
        from ledgerflow.sdk.timetables import resolve_time_schedule
    except ImportError:
        resolve_time_schedule = None
    if resolve_time_schedule is not None:
        resolved = resolve_time_schedule(timetable)
        if isinstance(resolved, tuple):
            resolved = next((r for r in resolved if isinstance(r, TimetableSpec)), None)
        if isinstance(resolved, TimetableSpec):
            return resolved
    if isinstance(timetable, str):
        return TimetableSpec(kind="cron_trigger", expression=timetable, description=timetable)
    raise TypeError(f"unsupported time schedule in AssetOrTimeSchedule: {timetable!r}")


__all__ = [
    "Asset",
    "AssetAlias",
    "AssetAll",
    "AssetAny",
    "AssetOrTimeSchedule",
    "AssetSchedule",
    "BaseAsset",
    "Dataset",
    "Metadata",
    "Model",
    "asset_schedule",
    "serialize_refs",
]
