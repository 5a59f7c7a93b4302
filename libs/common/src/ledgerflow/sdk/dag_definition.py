"""The ``DAG`` object, the ``@dag`` decorator and the DAG context stack."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ledgerflow.sdk import _source
from ledgerflow.sdk.exceptions import DagCycleError, DuplicateTaskIdFound

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import SerializedDag
    from ledgerflow.sdk.baseoperator import BaseOperator

# DAGs entered with ``with DAG(...)`` (or by a running ``@dag`` function), innermost last.
_context_stack: list[DAG] = []
# While the loader executes a DAG file, every DAG created is appended here, so DAGs are
# found even when they are not bound to a module-level name.
_collector: list[DAG] | None = None


def current_dag() -> DAG | None:
    """The innermost DAG whose context is open, if any."""
    return _context_stack[-1] if _context_stack else None


class DAG:
    """A workflow: tasks and the dependencies between them.

    Use it as a context manager; operators created inside join it::

        with DAG("etl", schedule="@daily", start_date=datetime(2024, 1, 1)):
            extract >> load
    """

    def __init__(
        self,
        dag_id: str,
        *,
        description: str | None = None,
        schedule: str | timedelta | None = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        tags: list[str] | tuple[str, ...] | set[str] | None = None,
        default_args: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        max_active_runs: int = 16,
        max_active_tasks: int = 16,
        is_paused_upon_creation: bool = False,
        catchup: bool = False,
        dagrun_timeout: timedelta | None = None,
        doc_md: str | None = None,
    ) -> None:
        _check_id(dag_id, "dag_id")
        self.dag_id = dag_id
        self.description = description
        self.schedule = schedule
        self.default_args: dict[str, Any] = dict(default_args or {})
        self.start_date = start_date or self.default_args.get("start_date")
        self.end_date = end_date or self.default_args.get("end_date")
        self.tags: list[str] = sorted(set(tags)) if isinstance(tags, set) else list(tags or [])
        self.params: dict[str, Any] = dict(params or {})
        self.max_active_runs = max_active_runs
        self.max_active_tasks = max_active_tasks
        self.is_paused_upon_creation = is_paused_upon_creation
        self.catchup = catchup
        self.dagrun_timeout = dagrun_timeout
        self.doc_md = doc_md
        self.task_dict: dict[str, BaseOperator] = {}
        self.fileloc, self.lineno = _source.user_location()
        if _collector is not None:
            _collector.append(self)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    # -- context manager ------------------------------------------------------------
    def __enter__(self) -> DAG:
        _context_stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        _context_stack.pop()

    # -- tasks ----------------------------------------------------------------------
    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    def has_task(self, task_id: str) -> bool:
        return task_id in self.task_dict

    def get_task(self, task_id: str) -> BaseOperator:
        """The task with this id; ``KeyError`` names the DAG when it does not exist."""
        try:
            return self.task_dict[task_id]
        except KeyError:
            raise KeyError(f"task {task_id!r} not found in DAG {self.dag_id!r}") from None

    def add_task(self, task: BaseOperator) -> None:
        """Attach ``task`` to this DAG; a second task with the same id is an error."""
        existing = self.task_dict.get(task.task_id)
        if existing is task:
            return
        if existing is not None:
            raise DuplicateTaskIdFound(
                f"task id {task.task_id!r} has already been added to the DAG {self.dag_id!r}"
                + (f" (first defined at line {existing.lineno})" if existing.lineno else ""),
                lineno=task.lineno,
                filename=task.fileloc,
            )
        self.task_dict[task.task_id] = task
        task.dag = self

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.upstream_task_ids]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.downstream_task_ids]

    # -- validation -------------------------------------------------------------------
    def check_cycle(self) -> None:
        """Raise :class:`DagCycleError` naming the cycle and the edge that closed it."""
        # Kahn's algorithm first: linear, and almost every DAG has no cycle.
        indegree = {tid: 0 for tid in self.task_dict}
        for t in self.task_dict.values():
            for up in t.upstream_task_ids:
                if up in indegree:
                    indegree[t.task_id] += 1
        ready = [tid for tid, n in indegree.items() if n == 0]
        seen = 0
        while ready:
            tid = ready.pop()
            seen += 1
            for down in self.task_dict[tid].downstream_task_ids:
                if down in indegree:
                    indegree[down] -= 1
                    if indegree[down] == 0:
                        ready.append(down)
        if seen == len(indegree):
            return
        # Replay the edges in declaration order; the first one whose downstream already
        # reaches its upstream closed the cycle.
        edges = sorted(
            (edge.seq, up, t.task_id, edge.lineno)
            for t in self.task_dict.values()
            for up, edge in t.upstream_edges.items()
            if up in self.task_dict
        )
        adjacency: dict[str, list[str]] = {}
        for _, up, down, lineno in edges:
            path = _path(adjacency, down, up)
            if path is not None:
                cycle = " -> ".join([*path, down])
                raise DagCycleError(
                    f"cycle in DAG {self.dag_id!r}: {cycle}", lineno=lineno, filename=self.fileloc
                )
            adjacency.setdefault(up, []).append(down)
        raise AssertionError("cycle detected but no closing edge found")  # pragma: no cover

    def validate(self) -> None:
        """Check the whole DAG (duplicate ids are refused as tasks are added)."""
        self.check_cycle()

    def topological_sort(self) -> list[BaseOperator]:
        """Tasks with every upstream before its downstreams (raises on a cycle)."""
        self.check_cycle()
        order: list[BaseOperator] = []
        done: set[str] = set()

        def visit(tid: str) -> None:
            if tid in done:
                return
            done.add(tid)
            for up in self.task_dict[tid].upstream_task_ids:
                if up in self.task_dict:
                    visit(up)
            order.append(self.task_dict[tid])

        for tid in self.task_dict:
            visit(tid)
        return order

    # -- serialization ----------------------------------------------------------------
    @property
    def owner(self) -> str:
        owners = list(dict.fromkeys(t.owner for t in self.task_dict.values()))
        if not owners:
            return str(self.default_args.get("owner", "airflow"))
        return ", ".join(owners)

    def serialize(self, fileloc: str | None = None) -> SerializedDag:
        """The data-only form the scheduler and UI use (imports pydantic on first use)."""
        from ledgerflow.common.dagmodel import SerializedDag

        return SerializedDag(
            dag_id=self.dag_id,
            fileloc=fileloc or self.fileloc or "<unknown>",
            description=self.description,
            schedule=_schedule_str(self.schedule),
            start_date=_aware(self.start_date),
            tags=tuple(self.tags),
            owner=self.owner,
            is_paused_upon_creation=self.is_paused_upon_creation,
            params=self.params,
            max_active_runs=self.max_active_runs,
            max_active_tasks=self.max_active_tasks,
            lineno=self.lineno,
            tasks=tuple(t.serialize() for t in self.task_dict.values()),
        )


def _path(adjacency: dict[str, list[str]], start: str, goal: str) -> list[str] | None:
    """A path ``start -> ... -> goal`` through ``adjacency``, or None (iterative DFS)."""
    if start == goal:
        return [start]
    parents: dict[str, str | None] = {start: None}
    stack = [start]
    while stack:
        node = stack.pop()
        for nxt in adjacency.get(node, ()):
            if nxt in parents:
                continue
            parents[nxt] = node
            if nxt == goal:
                path = [nxt]
                back = parents[nxt]
                while back is not None:
                    path.append(back)
                    back = parents[back]
                return path[::-1]
            stack.append(nxt)
    return None


def _schedule_str(schedule: str | timedelta | None) -> str | None:
    if schedule is None or isinstance(schedule, str):
        return schedule
    if isinstance(schedule, timedelta):
        # ISO 8601 duration; the scheduling issue decides how to read it.
        return f"PT{schedule.total_seconds():g}S"
    raise TypeError(f"unsupported schedule {schedule!r}: use a cron string, a preset or timedelta")


def _aware(value: datetime | None) -> datetime | None:
    """Naive datetimes in DAG files mean UTC (as in Airflow)."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


_ID_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.")


def _check_id(value: object, what: str) -> None:
    """Ids are 1-250 of letters, digits, '_', '-', '.' (Airflow's rule)."""
    if (
        not isinstance(value, str)
        or not value
        or len(value) > 250
        or not _ID_CHARS.issuperset(value)
    ):
        raise ValueError(f"invalid {what} {value!r}: use 1 to 250 letters, digits, '_', '-' or '.'")


F = TypeVar("F", bound=Callable[..., Any])


@overload
def dag(func: Callable[..., Any], /) -> Callable[..., DAG]: ...
@overload
def dag(
    dag_id: str | None = None, /, **dag_kwargs: Any
) -> Callable[[Callable[..., Any]], Callable[..., DAG]]: ...


def dag(func_or_id: Any = None, /, **dag_kwargs: Any) -> Any:
    """Turn a function into a DAG factory: calling it builds the DAG.

    ``@dag`` or ``@dag(schedule=..., ...)``; the dag id defaults to the function's name and
    the description to its docstring's first line. The function body runs inside the
    DAG's context, so operators and ``@task`` calls in it join the DAG.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., DAG]:
        @functools.wraps(func)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            kw = dict(dag_kwargs)
            dag_id = kw.pop("dag_id", None) or explicit_id or func.__name__
            if func.__doc__ and "description" not in kw:
                kw["description"] = func.__doc__.strip().splitlines()[0]
            params = dict(_function_defaults(func))
            params.update(kw.pop("params", None) or {})
            params.update(kwargs)
            the_dag = DAG(dag_id, params=params, **kw)
            if the_dag.doc_md is None and func.__doc__:
                the_dag.doc_md = func.__doc__
            # Point at the decorated function rather than at the factory call.
            the_dag.lineno = func.__code__.co_firstlineno
            with the_dag:
                func(*args, **kwargs)
            return the_dag

        return factory

    explicit_id = func_or_id if isinstance(func_or_id, str) else None
    if callable(func_or_id):
        return decorate(func_or_id)
    return decorate


def _function_defaults(func: Callable[..., Any]) -> Iterator[tuple[str, Any]]:
    """Parameters with defaults become DAG params (as Airflow does for ``@dag``)."""
    code = getattr(func, "__code__", None)
    if code is None:
        return
    names = code.co_varnames[: code.co_argcount]
    defaults = func.__defaults__ or ()
    yield from zip(names[len(names) - len(defaults) :], defaults, strict=True)
    yield from (func.__kwdefaults__ or {}).items()
