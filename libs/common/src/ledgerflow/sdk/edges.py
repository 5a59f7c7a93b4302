"""Edge labels: ``a >> Label("yes") >> b`` is ``a >> b`` with a label for the UI.

A label remembers the tasks on both of its sides and links every upstream to every
downstream as each side becomes known, so the order of the ``>>`` calls does not matter.
The label text itself is display only and is not serialized yet.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ledgerflow.sdk.dependencies import DependencyMixin, link

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator


class EdgeModifier(DependencyMixin):
    """A label on the edges that pass through it."""

    def __init__(self, label: str | None = None) -> None:
        self.label = label
        self._upstream: list[BaseOperator] = []
        self._downstream: list[BaseOperator] = []

    def __repr__(self) -> str:
        return f"Label({self.label!r})"

    def _dependency_nodes(self, as_downstream: bool) -> list[Any]:
        return [self]

    def _add_upstream(self, task: BaseOperator, lineno: int | None) -> None:
        if task not in self._upstream:
            self._upstream.append(task)
        for down in self._downstream:
            link(task, down, lineno)

    def _add_downstream(self, task: BaseOperator, lineno: int | None) -> None:
        if task not in self._downstream:
            self._downstream.append(task)
        for up in self._upstream:
            link(up, task, lineno)


def Label(label: str) -> EdgeModifier:  # noqa: N802 - Airflow's name
    """An edge label (``airflow.utils.edgemodifier.Label``)."""
    return EdgeModifier(label)
