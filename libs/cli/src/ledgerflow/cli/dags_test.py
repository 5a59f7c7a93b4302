"""``ledgerflow dags test FILE``: run one DAG locally, in one process, without Kafka.

Like ``airflow dags test``, and built from the same parts as the real system so that a
DAG behaves here as it will there:

- the file is parsed in a subprocess, as the API parses it
  (:func:`ledgerflow.common.dagparse.parse_dag_source_sync`);
- the conf is checked against the DAG's params, as the API checks it;
- the pure core (:func:`ledgerflow.common.core.decide`) drives the run, as the scheduler
  does: a ``TriggerDagRun`` command goes in, and every work item it emits is run
- as the executor runs it: the same runner request (with the template files next to the
  DAG, as ``dags submit`` sends them, and the variables and connections), the same
  ``python -m ledgerflow.sdk.runner`` child with its hard ``execution_timeout``, the same
  XCom size limit and masking of secrets in the log; the outcome goes back to the core as
  the executor's report events (``TaskAttemptStarted``, then ``TaskAttemptSucceeded``,
  ``Skipped``, ``Rescheduled`` or ``Failed``);
- timers the core asks for (retries, reschedules, sensor timeouts) are honoured by
  sleeping until they are due.

Nothing is written anywhere. Variables and connections come from ``AIRFLOW_VAR_<KEY>`` /
``AIRFLOW_CONN_<CONN_ID>`` environment variables first (Airflow's order), then from the
``--variables`` / ``--connections`` JSON files.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import hashlib
import json
import os
import sys
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from ledgerflow.api.commands import manual_run_id
from ledgerflow.api.dag_params import conf_problem
from ledgerflow.cli.client_commands import parse_conf, template_files_near
from ledgerflow.cli.context import CliContext
from ledgerflow.cli.errors import CliError
from ledgerflow.cli.local_config import (
    connections_from_env,
    load_connections,
    load_variables,
    secrets_masker,
    variables_from_env,
)
from ledgerflow.common.core import Tick, decide
from ledgerflow.common.core.state import DagState, Run, empty
from ledgerflow.common.dagmodel import SerializedDag
from ledgerflow.common.dagparse import DagParseError, parse_dag_source_sync
from ledgerflow.common.events import (
    DagRunFailed,
    DagVersionPublished,
    Envelope,
    RunTaskAttempt,
    TaskAttemptFailed,
    TaskAttemptRescheduled,
    TaskAttemptSkipped,
    TaskAttemptStarted,
    TaskAttemptSucceeded,
    TriggerDagRun,
    TriggerRejected,
    deterministic_id,
    make_envelope,
)
from ledgerflow.executor.attempt import bound_xcoms, final_report, runner_payload
from ledgerflow.executor.child import Outcome, TaskProcess

SOURCE = "ledgerflow/dags-test"
EXECUTOR_ID = "dags-test"
DEFAULT_SLOTS = 4
EXIT_FAILED = 1


# --------------------------------------------------------------------------- CLI
def register(dags_cmds: Any) -> None:
    """Add ``dags test`` to the ``dags`` command group."""
    p = dags_cmds.add_parser(
        "test",
        help="run a DAG locally, without Kafka (like `airflow dags test`)",
        description="Run one DAG of FILE in this process with the scheduler's core, each "
        "task in a child process as the executor runs it, and print every task's state "
        "and log. Exit 0 when the run succeeds, 1 when it fails or is rejected. "
        "Variables and connections come from AIRFLOW_VAR_*/AIRFLOW_CONN_* environment "
        "variables, then from --variables/--connections.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--dag-id", help="the DAG to run (needed when FILE defines several)")
    p.add_argument("--conf", metavar="JSON", help="run configuration, a JSON object")
    p.add_argument(
        "--logical-date", metavar="ISO", help="ISO 8601 logical date (default: now, UTC)"
    )
    p.add_argument(
        "--variables", metavar="FILE.json", help='variables, a JSON object {"key": value}'
    )
    p.add_argument(
        "--connections",
        metavar="FILE.json",
        help='connections, a JSON object {"conn_id": {"conn_type", "host", "login", '
        '"password", "port", "schema", "extra"} or "URI"}',
    )
    p.add_argument(
        "--output", choices=("text", "json"), default="text", help="output format (default: text)"
    )
    p.add_argument(
        "--slots",
        type=int,
        default=DEFAULT_SLOTS,
        help=f"task attempts run at once (default: {DEFAULT_SLOTS})",
    )
    p.set_defaults(handler=cmd_dags_test)


def cmd_dags_test(args: argparse.Namespace, ctx: CliContext) -> int:
    """Handler of ``ledgerflow dags test``."""
    path = Path(args.file)
    try:
        content = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CliError(f"{args.file}: cannot read: {exc.strerror or exc}") from exc
    conf = parse_conf(args.conf)
    logical_date = _parse_date(args.logical_date) if args.logical_date else _now()
    environ = dict(ctx.environ)
    variables = {**load_variables(args.variables), **variables_from_env(environ)}
    connections = {**load_connections(args.connections), **connections_from_env(environ)}
    as_json = args.output == "json"
    printer = _TextPrinter(sys.stdout) if not as_json else _TextPrinter(None)
    result = run_dag_file(
        path,
        content,
        dag_id=args.dag_id,
        conf=conf,
        logical_date=logical_date,
        variables=variables,
        connections=connections,
        xcom_max_bytes=ctx.settings.xcom_max_bytes,
        slots=max(1, args.slots),
        on_attempt=printer.attempt,
    )
    if as_json:
        print(json.dumps(result.as_dict(), indent=2, default=str))
    else:
        printer.summary(result)
    return 0 if result.state == "success" else EXIT_FAILED


def _parse_date(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CliError(f"--logical-date is not an ISO 8601 date: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _now() -> datetime:
    return datetime.now(UTC)


# --------------------------------------------------------------------------- results
@dataclass
class AttemptResult:
    """One attempt as it ran: its outcome and its (masked) log lines."""

    task_id: str
    map_index: int
    try_number: int
    status: str
    error: str | None = None
    log: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        return _label(self.task_id, self.map_index)


@dataclass
class LocalRunResult:
    """The outcome of a local run: what ``--output json`` prints."""

    dag_id: str
    run_id: str | None
    logical_date: datetime | None
    state: str
    reason: str | None = None
    task_instances: list[dict[str, Any]] = field(default_factory=list)
    xcoms: list[dict[str, Any]] = field(default_factory=list)
    attempts: list[AttemptResult] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "dag_id": self.dag_id,
            "run_id": self.run_id,
            "logical_date": self.logical_date.isoformat() if self.logical_date else None,
            "state": self.state,
            "reason": self.reason,
            "task_instances": self.task_instances,
            "xcoms": self.xcoms,
            "attempts": [
                {
                    "task_id": a.task_id,
                    "map_index": a.map_index,
                    "try_number": a.try_number,
                    "status": a.status,
                    "error": a.error,
                    "log": a.log,
                }
                for a in self.attempts
            ],
            "tasks": self.tasks,
        }


def _label(task_id: str, map_index: int) -> str:
    return task_id if map_index < 0 else f"{task_id}[{map_index}]"


class _TextPrinter:
    """Human output: each attempt with its log as it ends, then a summary."""

    def __init__(self, out: TextIO | None) -> None:
        self._out = out

    def attempt(self, a: AttemptResult) -> None:
        if self._out is None:
            return
        print(f"--- {a.label} (try {a.try_number}): {a.status}", file=self._out)
        for line in a.log:
            print(f"    {line}", file=self._out)
        self._out.flush()

    def summary(self, r: LocalRunResult) -> None:
        out = self._out or sys.stdout
        if r.task_instances:
            width = max(len(_label(t["task_id"], t["map_index"])) for t in r.task_instances)
            print("", file=out)
            for t in r.task_instances:
                label = _label(t["task_id"], t["map_index"])
                print(
                    f"{label:<{width}}  {t['state'] or '-':<16} try {t['try_number']}",
                    file=out,
                )
        reason = f" ({r.reason})" if r.reason else ""
        print(f"\nrun {r.run_id or '-'} of {r.dag_id}: {r.state}{reason}", file=out)


# --------------------------------------------------------------------------- running
class _Catalog:
    """The core's catalog: the one DAG version of this file."""

    def __init__(self, dag: SerializedDag, version_id: str) -> None:
        self._dag = dag
        self._version_id = version_id

    def get(self, version_id: str) -> SerializedDag | None:
        return self._dag if version_id == self._version_id else None

    def latest_version_id(self, dag_id: str) -> str | None:
        return self._version_id if dag_id == self._dag.dag_id else None


def _pick_dag(dags: list[SerializedDag], dag_id: str | None, filename: str) -> SerializedDag:
    ids = [d.dag_id for d in dags]
    if dag_id is None:
        if len(dags) == 1:
            return dags[0]
        raise CliError(
            f"{filename} defines {len(dags)} DAGs ({', '.join(ids)}): pick one with --dag-id"
        )
    for d in dags:
        if d.dag_id == dag_id:
            return d
    raise CliError(f"{filename} has no DAG {dag_id!r} (it defines: {', '.join(ids) or 'none'})")


def run_dag_file(
    path: Path,
    content: str,
    *,
    dag_id: str | None = None,
    conf: Mapping[str, Any] | None = None,
    logical_date: datetime | None = None,
    variables: Mapping[str, str] | None = None,
    connections: Mapping[str, Mapping[str, Any]] | None = None,
    xcom_max_bytes: int = 256 * 1024,
    slots: int = DEFAULT_SLOTS,
    on_attempt: Callable[[AttemptResult], None] | None = None,
) -> LocalRunResult:
    """Parse ``content`` (the file at ``path``), run one of its DAGs to the end and
    return what happened. Raises :class:`CliError` for a file that does not parse."""
    filename = path.name  # what `dags submit` sends as the file name
    try:
        dags = parse_dag_source_sync(content, filename)
    except DagParseError as exc:
        where = f"{path}:{exc.lineno}" if exc.lineno else str(path)
        raise CliError(f"{where}: {exc.message} [{exc.kind}]") from exc
    dag = _pick_dag(dags, dag_id, str(path))
    conf = dict(conf or {})
    logical_date = logical_date or _now()
    problem = conf_problem(dag, conf)
    if problem is not None:
        return LocalRunResult(
            dag_id=dag.dag_id,
            run_id=None,
            logical_date=logical_date,
            state="rejected",
            reason=problem,
            tasks=_structure(dag),
        )
    digest = hashlib.sha256(content.encode()).hexdigest()[:16]
    version = DagVersionPublished(
        dag_id=dag.dag_id,
        version_id=f"local-{dag.dag_id}-{digest}",
        dag=dag,
        source_code=content,
        filename=filename,
        extra_files=template_files_near(path),
    )
    runner = _LocalRun(
        version,
        conf=conf,
        logical_date=logical_date,
        variables=dict(variables or {}),
        connections={k: dict(v) for k, v in (connections or {}).items()},
        xcom_max_bytes=xcom_max_bytes,
        slots=slots,
        on_attempt=on_attempt,
    )
    return asyncio.run(runner.run())


def _structure(dag: SerializedDag) -> list[dict[str, Any]]:
    return [
        {
            "task_id": t.task_id,
            "upstream_task_ids": sorted(t.upstream_task_ids),
            "trigger_rule": t.trigger_rule,
            "operator": t.operator,
        }
        for t in dag.tasks
    ]


class _LocalRun:
    """The scheduler-and-executor loop for one run, in memory."""

    def __init__(
        self,
        version: DagVersionPublished,
        *,
        conf: dict[str, Any],
        logical_date: datetime,
        variables: dict[str, str],
        connections: dict[str, dict[str, Any]],
        xcom_max_bytes: int,
        slots: int,
        on_attempt: Callable[[AttemptResult], None] | None,
    ) -> None:
        self.version = version
        self.dag = version.dag
        self.catalog = _Catalog(version.dag, version.version_id)
        self.conf = conf
        self.logical_date = logical_date
        self.variables = variables
        self.connections = connections
        self.masker = secrets_masker(variables, connections)
        self.xcom_max_bytes = xcom_max_bytes
        self.slots = slots
        self.on_attempt = on_attempt
        self.state: DagState = empty(self.dag.dag_id)
        self.run_id = manual_run_id(logical_date, _now())
        self.pending: collections.deque[Envelope] = collections.deque()
        self.wake_at: datetime | None = None
        self.inbox: asyncio.Queue[Envelope] = asyncio.Queue()
        self.running: set[asyncio.Task[None]] = set()
        self.attempts: list[AttemptResult] = []
        self.rejected: str | None = None
        self.fail_reason: str | None = None

    # -- the core ----------------------------------------------------------------
    def _decide(self, inbound: Envelope | Tick) -> None:
        decision = decide(self.state, inbound, now=_now(), catalog=self.catalog)
        self.state = decision.state
        for event in decision.events:
            if isinstance(event.data, TriggerRejected):
                self.rejected = event.data.reason
            elif isinstance(event.data, DagRunFailed):
                self.fail_reason = event.data.reason
        self.pending.extend(decision.work)
        self.wake_at = decision.wake_at

    def _run(self) -> Run | None:
        return self.state.runs.get(self.run_id)

    async def run(self) -> LocalRunResult:
        trigger = make_envelope(
            TriggerDagRun(
                dag_id=self.dag.dag_id,
                run_id=self.run_id,
                conf=self.conf,
                logical_date=self.logical_date,
                triggered_by="ledgerflow dags test",
            ),
            id=str(uuid.uuid4()),
            source=SOURCE,
            time=_now(),
            aggregate_key=self.dag.dag_id,
            correlation_id=self.run_id,
        )
        self._decide(trigger)
        stuck = False
        while True:
            run = self._run()
            if run is None:
                break
            finished = run.finished
            if not finished:
                while self.pending and len(self.running) < self.slots:
                    self._launch(self.pending.popleft())
            if finished and not self.running and self.inbox.empty():
                break
            if not self.running and self.inbox.empty() and not self.pending:
                if self.wake_at is None:
                    stuck = True  # nothing runs, nothing is due: the core is waiting forever
                    break
            timeout = None
            if self.wake_at is not None:
                timeout = max(0.0, (self.wake_at - _now()).total_seconds())
            try:
                inbound: Envelope | Tick = await asyncio.wait_for(self.inbox.get(), timeout)
            except TimeoutError:
                inbound = Tick(self.dag.dag_id)
            self._decide(inbound)
        return self._result(stuck)

    # -- the executor ------------------------------------------------------------
    def _launch(self, work: Envelope) -> None:
        item = work.data
        assert isinstance(item, RunTaskAttempt)
        task = asyncio.create_task(self._attempt(work, item))
        self.running.add(task)
        task.add_done_callback(self.running.discard)

    def _report(self, data: Any, item: RunTaskAttempt, *, work: Envelope, time: datetime) -> None:
        kind = data.type
        self.inbox.put_nowait(
            make_envelope(
                data,
                id=deterministic_id(
                    kind, item.dag_id, item.run_id, item.task_id, item.map_index, item.try_number
                ),
                source=SOURCE,
                time=time,
                aggregate_key=item.dag_id,
                sequence=0 if isinstance(data, TaskAttemptStarted) else 1,
                correlation_id=item.run_id,
                causation_id=work.id,
            )
        )

    async def _attempt(self, work: Envelope, item: RunTaskAttempt) -> None:
        lines: list[str] = []

        def on_line(stream: str, line: str) -> None:
            lines.append(self.masker.mask(line))

        request = runner_payload(item, self.version, xcom_max_bytes=self.xcom_max_bytes)
        request["variables"] = dict(self.variables)
        request["connections"] = {k: dict(v) for k, v in self.connections.items()}
        process = TaskProcess(request, on_line=on_line)
        start = _now()
        try:
            pid = await process.start()
        except OSError as exc:
            outcome = Outcome(
                "failed",
                error=f"could not start the task process: {exc}",
                error_type="ProcessStartError",
            )
        else:
            self._report(
                TaskAttemptStarted(
                    dag_id=item.dag_id,
                    run_id=item.run_id,
                    task_id=item.task_id,
                    map_index=item.map_index,
                    try_number=item.try_number,
                    start_date=start,
                    hostname=os.uname().nodename,
                    executor_id=EXECUTOR_ID,
                    pid=pid,
                ),
                item,
                work=work,
                time=start,
            )
            outcome = await process.wait(execution_timeout=item.execution_timeout_seconds)
        end = _now()
        report = final_report(
            bound_xcoms(outcome, self.xcom_max_bytes), item, end_date=end, executor_id=EXECUTOR_ID
        )
        error = None
        if isinstance(report, TaskAttemptFailed):
            error = report.error
            lines.append(f"attempt failed: {report.error}")
        elif isinstance(report, TaskAttemptSkipped):
            lines.append(
                f"attempt skipped: {report.reason}" if report.reason else "attempt skipped"
            )
        elif isinstance(report, TaskAttemptRescheduled):
            lines.append(
                f"attempt rescheduled: to run again at {report.reschedule_date.isoformat()}"
            )
        else:
            assert isinstance(report, TaskAttemptSucceeded)
        status = {
            "TaskAttemptSucceeded": "success",
            "TaskAttemptFailed": "failed",
            "TaskAttemptSkipped": "skipped",
            "TaskAttemptRescheduled": "rescheduled",
        }[report.type]
        result = AttemptResult(
            task_id=item.task_id,
            map_index=item.map_index,
            try_number=item.try_number,
            status=status,
            error=error,
            log=lines,
        )
        self.attempts.append(result)
        if self.on_attempt is not None:
            self.on_attempt(result)
        self._report(report, item, work=work, time=end)

    # -- the result --------------------------------------------------------------
    def _result(self, stuck: bool) -> LocalRunResult:
        run = self._run()
        if run is None:
            return LocalRunResult(
                dag_id=self.dag.dag_id,
                run_id=self.run_id,
                logical_date=self.logical_date,
                state="rejected",
                reason=self.rejected or "the scheduler's core did not create the run",
                attempts=self.attempts,
                tasks=_structure(self.dag),
            )
        instances = []
        xcoms = []
        for (task_id, map_index), ti in sorted(run.tasks.items()):
            instances.append(
                {
                    "task_id": task_id,
                    "map_index": map_index,
                    "state": ti.state,
                    "try_number": ti.try_number,
                }
            )
            if ti.state == "success":
                if ti.return_value is not None:
                    xcoms.append(_xcom(task_id, map_index, "return_value", ti.return_value))
                for key, value in sorted(ti.xcoms.items()):
                    if key != "return_value":
                        xcoms.append(_xcom(task_id, map_index, key, value))
        # Tasks the core never touched are still in state None (a stuck run).
        seen = {t for t, _ in run.tasks}
        for task in self.dag.tasks:
            if task.task_id not in seen:
                instances.append(
                    {"task_id": task.task_id, "map_index": -1, "state": None, "try_number": 0}
                )
        state: str = run.state
        reason = self.fail_reason if state == "failed" else None
        if stuck:
            state = "stuck"
            reason = "nothing is running or due, yet the run has not finished"
        return LocalRunResult(
            dag_id=self.dag.dag_id,
            run_id=self.run_id,
            logical_date=self.logical_date,
            state=state,
            reason=reason,
            task_instances=instances,
            xcoms=xcoms,
            attempts=self.attempts,
            tasks=_structure(self.dag),
        )


def _xcom(task_id: str, map_index: int, key: str, value: Any) -> dict[str, Any]:
    return {"task_id": task_id, "map_index": map_index, "key": key, "value": value}
