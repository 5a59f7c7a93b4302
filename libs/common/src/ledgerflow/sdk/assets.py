"""A minimal ``Asset`` (Airflow 2's ``Dataset``), so DAG files that declare
``outlets=[Asset(...)]`` load. Asset-driven scheduling is not implemented: a DAG whose
``schedule`` is an asset is refused when it is serialized."""

from __future__ import annotations

from typing import Any


class Asset:
    """A piece of data a task produces or consumes, by name and/or URI."""

    def __init__(
        self,
        name: str | None = None,
        uri: str | None = None,
        *,
        group: str = "asset",
        extra: dict[str, Any] | None = None,
        watchers: list[Any] | None = None,
    ) -> None:
        if name is None and uri is None:
            raise TypeError("Asset() requires either 'name' or 'uri'")
        self.name = name if name is not None else uri
        self.uri = uri if uri is not None else name
        self.group = group
        self.extra = dict(extra or {})
        self.watchers = list(watchers or [])

    def __repr__(self) -> str:
        return f"Asset(name={self.name!r}, uri={self.uri!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Asset) and (self.name, self.uri) == (other.name, other.uri)

    def __hash__(self) -> int:
        return hash((self.name, self.uri))


Dataset = Asset


class AssetAlias:
    """A name that resolves to assets at run time (stored only)."""

    def __init__(self, name: str, group: str = "asset") -> None:
        self.name = name
        self.group = group

    def __repr__(self) -> str:
        return f"AssetAlias(name={self.name!r})"
