"""Task groups: ``with TaskGroup("g"):`` and ``@task_group``.

As in Airflow, a task created in group ``g`` gets the id ``g.<task_id>`` (unless the
group has ``prefix_group_id=False``), groups nest (``outer.inner.task``), and a group in
a dependency stands for its roots (downstream side) or its leaves (upstream side), so
``start >> group >> end`` links ``start`` to the tasks of the group without upstreams in
it and its last tasks to ``end``. A group is display and id structure only: the
scheduler sees plain tasks with ``task_group_id`` set.
"""

from __future__ import annotations

import copy
import functools
import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar

from ledgerflow.sdk.dependencies import DependencyMixin
from ledgerflow.sdk.exceptions import DuplicateTaskIdFound

if TYPE_CHECKING:
    from ledgerflow.sdk.baseoperator import BaseOperator
    from ledgerflow.sdk.dag_definition import DAG

# Open ``with TaskGroup(...)`` blocks, innermost last.
_group_stack: list[TaskGroup] = []

_GROUP_ID = re.compile(r"^[\w-]+$", re.ASCII)
_SUFFIX = re.compile(r"__\d+$")


def current_task_group(dag: DAG | None) -> TaskGroup | None:
    """The innermost open group of ``dag`` (its root group when none is open)."""
    if dag is None:
        return None
    for group in reversed(_group_stack):
        if group.dag is dag:
            return group
    return dag.task_group


class TaskGroup(DependencyMixin):
    """A named collection of tasks of one DAG.

    ``TaskGroup(group_id, prefix_group_id=True, parent_group=None, dag=None,
    default_args=None, tooltip="", ui_color=..., ui_fgcolor=..., add_suffix_on_collision=False,
    group_display_name="")``. ``default_args`` apply to the group's tasks, over the DAG's.
    """

    def __init__(
        self,
        group_id: str | None,
        *,
        prefix_group_id: bool = True,
        parent_group: TaskGroup | None = None,
        dag: DAG | None = None,
        default_args: dict[str, Any] | None = None,
        tooltip: str = "",
        ui_color: str = "CornflowerBlue",
        ui_fgcolor: str = "#000",
        add_suffix_on_collision: bool = False,
        group_display_name: str = "",
    ) -> None:
        from ledgerflow.sdk import _source
        from ledgerflow.sdk.dag_definition import current_dag

        if group_id is not None and (
            not isinstance(group_id, str) or not _GROUP_ID.match(group_id) or len(group_id) > 200
        ):
            raise ValueError(
                f"invalid group_id {group_id!r}: use letters, digits, '_' or '-' (no dots)"
            )
        self._group_id = group_id
        self.prefix_group_id = prefix_group_id
        self.tooltip = tooltip
        self.ui_color = ui_color
        self.ui_fgcolor = ui_fgcolor
        self.group_display_name = group_display_name
        self.default_args: dict[str, Any] = copy.deepcopy(default_args or {})
        self.children: dict[str, BaseOperator | TaskGroup] = {}
        self.fileloc, self.lineno = _source.user_location()
        if group_id is None:  # the root group of a DAG
            self.parent_group: TaskGroup | None = None
            self.dag: DAG = dag  # type: ignore[assignment]  # the root group always has one
            self.used_group_ids: set[str] = set()
            return
        if parent_group is None:
            dag = dag or current_dag()
            parent_group = current_task_group(dag)
        if parent_group is None:
            raise RuntimeError("TaskGroup can only be used inside a dag")
        if dag is not None and parent_group.dag is not dag:
            raise ValueError("Cannot mix TaskGroups from different DAGs")
        if parent_group.dag is None:
            raise RuntimeError("TaskGroup can only be used inside a dag")
        self.parent_group = parent_group
        self.dag = parent_group.dag
        self.used_group_ids = parent_group.used_group_ids  # one set per DAG
        if self.group_id in self.used_group_ids or self.group_id in self.dag.task_dict:
            if not add_suffix_on_collision:
                raise DuplicateTaskIdFound(
                    f"group_id '{self._group_id}' has already been added to the DAG",
                    lineno=self.lineno,
                    filename=self.fileloc,
                )
            self._group_id = self._unique_group_id(group_id)
        if parent_group.default_args:
            self.default_args = {**parent_group.default_args, **self.default_args}
        self.used_group_ids.add(self.group_id)  # type: ignore[arg-type]
        parent_group.children[self.group_id] = self  # type: ignore[index]
        self.dag.task_groups_in_order.append(self)

    def _unique_group_id(self, group_id: str) -> str:
        base = _SUFFIX.sub("", group_id)
        prefix = self.parent_group.child_id(base) if self.parent_group else base
        pattern = re.compile(rf"^{re.escape(prefix)}__(\d+)$")
        suffixes = [int(m.group(1)) for g in self.used_group_ids if (m := pattern.match(g))]
        return f"{base}__{max(suffixes, default=0) + 1}"

    def __repr__(self) -> str:
        return f"<TaskGroup: {self.group_id}>"

    # -- ids --------------------------------------------------------------------------
    @property
    def group_id(self) -> str | None:
        """The full id (prefixed by the parents' ids when they prefix)."""
        parent = self.parent_group
        if self._group_id and parent is not None and parent.prefix_group_id and parent._group_id:
            return parent.child_id(self._group_id)
        return self._group_id

    @property
    def node_id(self) -> str | None:
        return self.group_id

    @property
    def label(self) -> str | None:
        return self.group_display_name or self._group_id

    @property
    def is_root(self) -> bool:
        return not self._group_id

    def child_id(self, label: str) -> str:
        """``label`` prefixed with this group's id when the group prefixes."""
        if self.prefix_group_id:
            group_id = self.group_id
            if group_id:
                return f"{group_id}.{label}"
        return label

    # -- context manager ----------------------------------------------------------------
    def __enter__(self) -> TaskGroup:
        _group_stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if _group_stack and _group_stack[-1] is self:
            _group_stack.pop()

    # -- members ---------------------------------------------------------------------
    def add(self, task: BaseOperator) -> BaseOperator:
        """Add a task to this group (done by the task itself when it is created)."""
        if task.task_id in self.children:
            raise DuplicateTaskIdFound(
                f"Task id '{task.task_id}' has already been added to the DAG",
                lineno=task.lineno,
                filename=task.fileloc,
            )
        self.children[task.task_id] = task
        task.task_group = self
        return task

    def __iter__(self) -> Iterator[BaseOperator]:
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                yield from child
            else:
                yield child

    def has_task(self, task: BaseOperator) -> bool:
        return any(t is task for t in self)

    def __getitem__(self, label: str) -> BaseOperator | TaskGroup:
        try:
            return self.children[self.child_id(label)]
        except KeyError:
            raise KeyError(f"Task {label!r} not found") from None

    def get_child_by_label(self, label: str) -> BaseOperator | TaskGroup:
        return self[label]

    def get_task_group_dict(self) -> dict[str | None, TaskGroup]:
        """Every group in this one (itself included), by full id."""
        groups: dict[str | None, TaskGroup] = {self.group_id: self}
        for child in self.children.values():
            if isinstance(child, TaskGroup):
                groups.update(child.get_task_group_dict())
        return groups

    # -- dependencies ------------------------------------------------------------------
    def get_roots(self) -> Iterator[BaseOperator]:
        """Tasks of the group with no upstream inside the group."""
        tasks = list(self)
        ids = {t.task_id for t in tasks}
        for task in tasks:
            if ids.isdisjoint(task.upstream_edges):
                yield task

    def get_leaves(self) -> Iterator[BaseOperator]:
        """Tasks of the group with no downstream inside it; a teardown stands aside for
        the work task it tears down (Airflow's rule)."""
        tasks = list(self)
        ids = {t.task_id for t in tasks}

        def has_non_teardown_downstream(task: BaseOperator, exclude: str) -> bool:
            return any(
                d.task_id != exclude and d.task_id in ids and not d.is_teardown
                for d in task.downstream_list
            )

        def first_non_teardown(task: BaseOperator) -> Iterator[BaseOperator]:
            for up in task.upstream_list:
                if up.task_id not in ids:
                    continue
                if up.is_teardown:
                    yield from first_non_teardown(up)
                elif task.is_teardown and up.is_setup:
                    continue
                elif not has_non_teardown_downstream(up, exclude=task.task_id):
                    yield up

        for task in tasks:
            if ids.isdisjoint(task._downstream):
                if not task.is_teardown:
                    yield task
                else:
                    yield from first_non_teardown(task)

    def _dependency_nodes(self, as_downstream: bool) -> list[Any]:
        if as_downstream:
            return list(self.get_roots())
        return list(dict.fromkeys(self.get_leaves()))

    def serialize(self) -> Any:
        from ledgerflow.common.dagmodel import SerializedTaskGroup

        parent = self.parent_group
        return SerializedTaskGroup(
            group_id=self.group_id or "",
            parent_group_id=parent.group_id if parent is not None else None,
            tooltip=self.tooltip or None,
            prefix_group_id=self.prefix_group_id,
        )


P = ParamSpec("P")
R = TypeVar("R")


class TaskGroupFactory(Generic[P, R]):
    """A ``@task_group`` function: each call creates a group (``name``, then
    ``name__1``, ...) and runs the function inside it.

    Returns what the function returns, or the group when it returns nothing, so
    ``start >> my_group() >> end`` works either way.
    """

    def __init__(self, function: Callable[P, R], tg_kwargs: dict[str, Any]) -> None:
        functools.update_wrapper(self, function)
        self.function = function
        self.tg_kwargs = tg_kwargs

    def override(self, **kwargs: Any) -> TaskGroupFactory[P, R]:
        return TaskGroupFactory(self.function, {**self.tg_kwargs, **kwargs})

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> Any:
        tg_kwargs = dict(self.tg_kwargs)
        group_id = tg_kwargs.pop("group_id", None) or self.function.__name__
        tg_kwargs.setdefault("add_suffix_on_collision", True)
        with TaskGroup(group_id, **tg_kwargs) as group:
            if self.function.__doc__ and not group.tooltip:
                group.tooltip = self.function.__doc__
            result = self.function(*args, **kwargs)
        return group if result is None else result

    def partial(self, **kwargs: Any) -> Any:
        raise NotImplementedError(
            "mapped task groups (@task_group ... .partial/.expand) are not supported by "
            "ledgerflow yet; map the tasks inside the group instead"
        )

    expand = partial
    expand_kwargs = partial


def task_group(python_callable: Callable[..., Any] | None = None, **tg_kwargs: Any) -> Any:
    """``@task_group`` or ``@task_group(group_id=..., tooltip=..., ...)``."""
    if callable(python_callable) and not tg_kwargs:
        return TaskGroupFactory(python_callable, {})
    if python_callable is not None and not callable(python_callable):
        tg_kwargs["group_id"] = python_callable  # @task_group("name")
    return lambda function: TaskGroupFactory(function, tg_kwargs)
