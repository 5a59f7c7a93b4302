"""The ``DAG`` object, the ``@dag`` decorator and the DAG context stack."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar, overload

from ledgerflow.sdk import _source
from ledgerflow.sdk.exceptions import DagAuthoringError, DagCycleError, DuplicateTaskIdFound
from ledgerflow.sdk.params import NOTSET

if TYPE_CHECKING:
    from ledgerflow.common.dagmodel import SerializedDag
    from ledgerflow.sdk.baseoperator import BaseOperator
    from ledgerflow.sdk.taskgroup import TaskGroup

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

    The arguments are Airflow 3's. ``user_defined_macros``, ``user_defined_filters``,
    ``template_searchpath``, ``template_undefined``, ``jinja_environment_kwargs`` and
    ``render_template_as_native_obj`` are used by the task runner's templating; DAG-level
    ``on_success_callback``/``on_failure_callback``, ``access_control``, ``owner_links``
    and ``fail_fast`` are stored.
    """

    def __init__(
        self,
        dag_id: str,
        *,
        description: str | None = None,
        schedule: Any = None,
        start_date: datetime | None = None,
        end_date: datetime | None = None,
        template_searchpath: str | Iterable[str] | None = None,
        template_undefined: Any = None,
        user_defined_macros: dict[str, Any] | None = None,
        user_defined_filters: dict[str, Callable[..., Any]] | None = None,
        default_args: dict[str, Any] | None = None,
        max_active_tasks: int = 16,
        max_active_runs: int = 16,
        max_consecutive_failed_dag_runs: int = 0,
        dagrun_timeout: timedelta | None = None,
        sla_miss_callback: Any = None,
        catchup: bool = False,
        on_success_callback: Any = None,
        on_failure_callback: Any = None,
        doc_md: str | None = None,
        params: dict[str, Any] | None = None,
        access_control: dict[str, Any] | None = None,
        is_paused_upon_creation: bool | None = None,
        jinja_environment_kwargs: dict[str, Any] | None = None,
        render_template_as_native_obj: bool = False,
        tags: Iterable[str] | None = None,
        owner_links: dict[str, str] | None = None,
        auto_register: bool = True,
        fail_fast: bool = False,
        dag_display_name: str | None = None,
        disable_bundle_versioning: bool = False,
    ) -> None:
        from ledgerflow.sdk.params import ParamsDict
        from ledgerflow.sdk.taskgroup import TaskGroup

        _check_id(dag_id, "dag_id")
        self.dag_id = dag_id
        self.description = description
        self.schedule = schedule
        self.default_args: dict[str, Any] = dict(default_args or {})
        self.start_date = start_date or self.default_args.get("start_date")
        self.end_date = end_date or self.default_args.get("end_date")
        if isinstance(template_searchpath, str):
            template_searchpath = [template_searchpath]
        self.template_searchpath: list[str] | None = (
            list(template_searchpath) if template_searchpath is not None else None
        )
        self.template_undefined = template_undefined
        self.user_defined_macros = user_defined_macros
        self.user_defined_filters = user_defined_filters
        self.jinja_environment_kwargs = jinja_environment_kwargs
        self.render_template_as_native_obj = render_template_as_native_obj
        self.tags: list[str] = sorted(set(tags)) if isinstance(tags, set) else list(tags or [])
        self.params = ParamsDict(params)
        if "params" in self.default_args:  # Airflow moves them to the DAG's params
            self.params.update(self.default_args.pop("params") or {})
        self.max_active_runs = max_active_runs
        self.max_active_tasks = max_active_tasks
        self.max_consecutive_failed_dag_runs = max_consecutive_failed_dag_runs
        self.is_paused_upon_creation = is_paused_upon_creation
        self.catchup = catchup
        self.dagrun_timeout = dagrun_timeout
        self.sla_miss_callback = sla_miss_callback
        self.on_success_callback = on_success_callback
        self.on_failure_callback = on_failure_callback
        self.doc_md = doc_md
        self.access_control = access_control
        self.owner_links: dict[str, str] = dict(owner_links or {})
        self.auto_register = auto_register
        self.fail_fast = fail_fast
        self.dag_display_name = dag_display_name or dag_id
        self.disable_bundle_versioning = disable_bundle_versioning
        self.task_dict: dict[str, BaseOperator] = {}
        self.fileloc, self.lineno = _source.user_location()
        self.task_groups_in_order: list[TaskGroup] = []
        self.task_group = TaskGroup(None, dag=self)  # the root group
        if _collector is not None:
            _collector.append(self)

    def __repr__(self) -> str:
        return f"<DAG: {self.dag_id}>"

    @property
    def log(self) -> logging.Logger:
        return logging.getLogger("airflow.models.dag")

    @property
    def timetable_summary(self) -> str | None:
        return _schedule_str(self.schedule)

    @property
    def timetable(self) -> Any:
        """Airflow's ``DAG.timetable``: the timetable object of a time-based schedule
        (``NullTimetable`` for None; None for an asset schedule)."""
        from ledgerflow.sdk.timetables import dag_timezone, timetable_for

        return timetable_for(self.schedule, tz=dag_timezone(self.start_date))

    # -- context manager ------------------------------------------------------------
    def __enter__(self) -> DAG:
        _context_stack.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        if _context_stack and _context_stack[-1] is self:
            _context_stack.pop()

    # -- tasks ----------------------------------------------------------------------
    @property
    def tasks(self) -> list[BaseOperator]:
        return list(self.task_dict.values())

    @property
    def task_ids(self) -> list[str]:
        return list(self.task_dict)

    @property
    def task_group_dict(self) -> dict[str, Any]:
        """Every task group by full id (the root group is not included)."""
        return {g.group_id: g for g in self.task_groups_in_order}  # type: ignore[misc]

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
        if existing is not None or task.task_id in self.task_group.used_group_ids:
            what = "task id" if existing is not None else "task id (a task group's id)"
            raise DuplicateTaskIdFound(
                f"{what} {task.task_id!r} has already been added to the DAG {self.dag_id!r}"
                + (
                    f" (first defined at line {existing.lineno})"
                    if existing and existing.lineno
                    else ""
                ),
                lineno=task.lineno,
                filename=task.fileloc,
            )
        self.task_dict[task.task_id] = task
        task._dag = self
        group = task.task_group if task.task_group is not None else self.task_group
        group.children[task.task_id] = task
        task.task_group = group

    def add_tasks(self, tasks: Iterable[BaseOperator]) -> None:
        for task in tasks:
            self.add_task(task)

    def param(self, name: str, default: Any = NOTSET) -> Any:
        """A reference to the param ``name``, resolved when a task runs."""
        from ledgerflow.sdk.params import DagParam

        return DagParam(self, name, default)

    @property
    def roots(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t.upstream_edges]

    @property
    def leaves(self) -> list[BaseOperator]:
        return [t for t in self.task_dict.values() if not t._downstream]

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
        """Check the whole DAG (duplicate ids are refused as tasks are added): cycles,
        params (a scheduled DAG needs every param to have a valid default, as in Airflow)
        and the trigger rules after setup tasks."""
        self.check_cycle()
        self.time_schedule()
        self.validate_schedule_and_params()
        self.validate_setup_teardown()

    def time_schedule(self) -> Any:
        """The ``TimetableSpec`` of a time-based schedule (None: no schedule, or an asset
        schedule); a bad cron, unknown preset or invalid combination is an authoring
        error at the DAG's line."""
        from ledgerflow.sdk.timetables import dag_timezone, resolve_time_schedule

        try:
            spec = resolve_time_schedule(self.schedule, tz=dag_timezone(self.start_date))
        except ValueError as e:
            raise DagAuthoringError(
                f"DAG {self.dag_id!r}: invalid schedule {self.schedule!r}: {e}",
                lineno=self.lineno,
                filename=self.fileloc,
            ) from None
        if spec is not None and spec.kind == "continuous" and self.max_active_runs != 1:
            raise DagAuthoringError(
                f"DAG {self.dag_id!r}: invalid max_active_runs {self.max_active_runs}: "
                "@continuous requires max_active_runs=1",
                lineno=self.lineno,
                filename=self.fileloc,
            )
        return spec

    def validate_schedule_and_params(self) -> None:
        """A DAG with a schedule needs a valid default for every param (Airflow's rule;
        a DAG run by hand gets its values from the trigger's conf, checked then)."""
        from ledgerflow.sdk.exceptions import ParamValidationError

        if self.schedule is None:
            return
        try:
            self.params.validate()
        except ParamValidationError as e:
            raise DagAuthoringError(
                f"DAG {self.dag_id!r} is not allowed to define a schedule when a param has "
                f"no default value or an invalid one: {e}",
                lineno=self.lineno,
                filename=self.fileloc,
            ) from None

    def validate_setup_teardown(self) -> None:
        for task in self.task_dict.values():
            if not task.is_setup:
                continue
            for down in task.downstream_list:
                if not down.is_teardown and down.trigger_rule != "all_success":
                    raise DagAuthoringError(
                        f"Setup tasks must be followed with trigger rule ALL_SUCCESS: "
                        f"{down.task_id!r} (downstream of setup {task.task_id!r}) has "
                        f"{down.trigger_rule.value!r}",
                        lineno=down.lineno,
                        filename=self.fileloc,
                    )

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

        timeout = self.dagrun_timeout
        serialized = SerializedDag(
            dag_id=self.dag_id,
            fileloc=fileloc or self.fileloc or "<unknown>",
            description=self.description,
            schedule=_schedule_str(self.schedule),
            start_date=_aware(self.start_date),
            end_date=_aware(self.end_date),
            tags=tuple(self.tags),
            owner=self.owner,
            is_paused_upon_creation=bool(self.is_paused_upon_creation),
            params=self.params.defaults(),
            param_schemas=self.params.schemas(),
            task_groups=tuple(g.serialize() for g in self.task_groups_in_order),
            template_searchpath=tuple(self.template_searchpath or ()),
            catchup=self.catchup,
            dagrun_timeout_seconds=(
                timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
            ),
            doc_md=self.doc_md,
            max_active_runs=self.max_active_runs,
            max_active_tasks=self.max_active_tasks,
            timetable=self.time_schedule(),
            max_consecutive_failed_dag_runs=self.max_consecutive_failed_dag_runs,
            lineno=self.lineno,
            tasks=tuple(t.serialize() for t in self.task_dict.values()),
        )
        return _with_asset_schedule(serialized, self.schedule)


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


def _with_asset_schedule(serialized: SerializedDag, schedule: Any) -> SerializedDag:
    """An asset schedule's timetable and condition (ADR 0013); other schedules as is."""
    from ledgerflow.sdk.assets import asset_schedule

    assets = asset_schedule(schedule)
    if assets is None:
        return serialized
    return serialized.model_copy(
        update={"timetable": assets.timetable, "asset_condition": assets.condition}
    )


def _schedule_str(schedule: str | timedelta | None) -> str | None:
    from ledgerflow.sdk.assets import asset_schedule

    assets = asset_schedule(schedule)
    if assets is not None:
        return assets.summary
    if schedule is None or isinstance(schedule, str):
        return schedule
    if isinstance(schedule, timedelta):
        # ISO 8601 duration; the scheduling issue decides how to read it.
        return f"PT{schedule.total_seconds():g}S"
    from ledgerflow.sdk.timetables import Timetable

    if isinstance(schedule, Timetable):
        return schedule.summary
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
    the description to its docstring's first line. As in Airflow, every argument of the
    function becomes a DAG param (its default, or the value passed to the factory), and
    the function receives a :class:`~ledgerflow.sdk.params.DagParam` for each, resolved
    when a task runs. The body runs inside the DAG's context, so operators and ``@task``
    calls in it join the DAG.
    """

    def decorate(func: Callable[..., Any]) -> Callable[..., DAG]:
        @functools.wraps(func)
        def factory(*args: Any, **kwargs: Any) -> DAG:
            import inspect

            bound = inspect.signature(func).bind(*args, **kwargs)
            bound.apply_defaults()
            kw = dict(dag_kwargs)
            dag_id = kw.pop("dag_id", None) or explicit_id or func.__name__
            if func.__doc__ and "description" not in kw:
                kw["description"] = func.__doc__.strip().splitlines()[0]
            with DAG(dag_id, **kw) as the_dag:
                if the_dag.doc_md is None and func.__doc__:
                    the_dag.doc_md = func.__doc__
                # Point at the decorated function rather than at the factory call.
                the_dag.lineno = func.__code__.co_firstlineno
                f_kwargs = {
                    name: the_dag.param(name, value) for name, value in bound.arguments.items()
                }
                func(**f_kwargs)
            return the_dag

        return factory

    explicit_id = func_or_id if isinstance(func_or_id, str) else None
    if callable(func_or_id):
        return decorate(func_or_id)
    return decorate
