"""What each DAG of the Airflow corpus (``examples/airflow``) must produce when run.

The expected states, XComs and log lines are what Airflow 3 produces for the same file
(trigger rules after ``airflow/ti_deps/deps/trigger_rule_dep.py``, run states after
``DagRun._tis_for_dagrun_state``: a run's state comes from its leaves, teardowns
excepted). Both ``ledgerflow dags test`` (tests/unit/test_corpus_dags_test.py) and the
real system (tests/e2e/test_corpus.py) are checked against them.

Task references in the mappings below are strings ``task_id[map_index]:key#try``, where
every part but the task id is optional: ``"add[1]"`` is map index 1 of ``add``,
``"push:rows"`` the XCom ``rows`` of ``push``, ``"flaky#1"`` the first attempt of
``flaky`` (logs default to the last attempt). ``{run_id}`` in an expected value stands
for the run's id.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parents[2] / "examples" / "airflow"
LOGICAL_DATE = "2024-03-15T00:00:00+00:00"
"""Every corpus run uses this logical date, so ``ds`` and friends are known."""

DAGS_TEST = "dags_test"
E2E = "e2e"

_REF = re.compile(
    r"^(?P<task>[^\[\]:#]+)(?:\[(?P<index>-?\d+)\])?(?::(?P<key>[^#]+))?(?:#(?P<try>\d+))?$"
)


@dataclass(frozen=True)
class TaskRef:
    """A parsed ``task_id[map_index]:key#try`` reference."""

    task_id: str
    map_index: int = -1
    key: str = "return_value"
    try_number: int | None = None

    @classmethod
    def parse(cls, text: str) -> TaskRef:
        match = _REF.match(text)
        if match is None:
            raise ValueError(f"bad task reference {text!r}")
        return cls(
            task_id=match["task"],
            map_index=int(match["index"]) if match["index"] is not None else -1,
            key=match["key"] or "return_value",
            try_number=int(match["try"]) if match["try"] else None,
        )


@dataclass(frozen=True)
class Expectation:
    """One DAG run of the corpus and its expected outcome."""

    dag_id: str
    file: str
    run_state: str
    # task id -> final state, or {map_index: state} for a mapped task.
    tasks: Mapping[str, str | Mapping[int, str]]
    conf: Mapping[str, Any] = field(default_factory=dict)
    logical_date: str = LOGICAL_DATE
    tries: Mapping[str, int] = field(default_factory=dict)
    xcoms: Mapping[str, Any] = field(default_factory=dict)
    logs: Mapping[str, Sequence[str]] = field(default_factory=dict)
    logs_absent: Mapping[str, Sequence[str]] = field(default_factory=dict)
    variables: Mapping[str, Any] = field(default_factory=dict)
    connections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # Direct upstream task ids (structure checks, from the parsed DAG).
    upstream: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Task-instance fields as the API shows them (e2e only).
    ti_fields: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # A second run (e2e only), triggered together with the first.
    followup_logical_date: str | None = None
    where: frozenset[str] = frozenset({DAGS_TEST, E2E})
    # Queues other than "default" that need an executor (e2e).
    queues: frozenset[str] = frozenset()

    @property
    def path(self) -> Path:
        return CORPUS_DIR / self.file

    def task_states(self) -> dict[tuple[str, int], str]:
        """Expected state per ``(task_id, map_index)``."""
        out: dict[tuple[str, int], str] = {}
        for task_id, state in self.tasks.items():
            if isinstance(state, str):
                out[(task_id, -1)] = state
            else:
                out.update({(task_id, i): s for i, s in state.items()})
        return out


def resolve(value: Any, *, run_id: str) -> Any:
    """``value`` with ``{run_id}`` replaced in every string it contains."""
    if isinstance(value, str):
        return value.replace("{run_id}", run_id)
    if isinstance(value, list):
        return [resolve(v, run_id=run_id) for v in value]
    if isinstance(value, dict):
        return {k: resolve(v, run_id=run_id) for k, v in value.items()}
    return value


def _all(state: str, *task_ids: str) -> dict[str, str]:
    return dict.fromkeys(task_ids, state)


def _mapped(n: int, state: str = "success") -> dict[int, str]:
    return dict.fromkeys(range(n), state)


RULES = (
    "all_success",
    "all_failed",
    "all_done",
    "all_done_min_one_success",
    "all_skipped",
    "one_success",
    "one_failed",
    "one_done",
    "none_failed",
    "none_failed_min_one_success",
    "none_skipped",
    "always",
)


def _rules(**states: str) -> dict[str, str]:
    assert set(states) == set(RULES), set(RULES) ^ set(states)
    return {f"rule_{rule}": state for rule, state in states.items()}


VARIABLES = {
    "greeting": "hello",
    "pipeline_config": {"region": "eu-west-1", "batch": 500},
    "api_key": "s3cr3t-v4lue-123",
}
CONNECTIONS = {
    "warehouse": {
        "conn_type": "postgres",
        "host": "db.example.com",
        "login": "etl",
        "password": "pa55word-xyz-987",
        "port": 5432,
        "schema": "analytics",
        "extra": {"sslmode": "require"},
    }
}

EXPECTATIONS: tuple[Expectation, ...] = (
    Expectation(
        dag_id="tutorial_taskflow",
        file="tutorial_taskflow.py",
        run_state="success",
        tasks=_all(
            "success", "extract", "transform", "load", "double", "double__1", "double_again"
        ),
        xcoms={
            "extract": {"1001": 301.27, "1002": 433.21, "1003": 502.22},
            "transform": {"total_order_value": 1236.7, "order_count": 3},
            "transform:total_order_value": 1236.7,
            "transform:order_count": 3,
            "load": "3 orders",
            "double": 2,
            "double__1": 4,
            "double_again": 8,
        },
        logs={"load": ["Total order value is: 1236.70 over 3 orders"]},
        upstream={
            "transform": frozenset({"extract"}),
            "load": frozenset({"transform"}),
            "double__1": frozenset({"double"}),
            "double_again": frozenset({"double__1"}),
        },
    ),
    Expectation(
        dag_id="classic_operators",
        file="classic_operators.py",
        run_state="success",
        tasks=_all("success", "start", "say_hello", "where", "env_only", "env_appended", "end"),
        xcoms={
            "say_hello": "Hello, Ada!",
            "where": "/tmp",
            "env_only": "color=blue home=unset",
            "env_appended": "color=red path=set",
        },
        logs={"say_hello": ["Hello, Ada!"]},
        upstream={
            "say_hello": frozenset({"start"}),
            "where": frozenset({"start"}),
            "end": frozenset({"say_hello", "where", "env_only", "env_appended"}),
        },
    ),
    Expectation(
        dag_id="bash_features",
        file="bash_features.py",
        run_state="success",
        tasks={
            "make_greeting": "success",
            "skip_me": "skipped",
            "after_skip": "skipped",
            "custom_skip_code": "skipped",
            "fails": "failed",
            "cleanup": "success",
        },
        tries={"fails": 1},
        xcoms={"make_greeting": "hi Bob", "cleanup": "cleanup done"},
        logs={
            "make_greeting": ["building greeting"],
            "skip_me": ["skipping on purpose"],
            "fails": ["about to fail"],
        },
    ),
    Expectation(
        dag_id="branching",
        file="branching.py",
        conf={"route": "a"},
        run_state="success",
        tasks={
            "branch": "success",
            "path_a": "success",
            "path_b": "skipped",
            "after_b": "skipped",
            "join": "success",
            "pick": "success",
            "left": "success",
            "middle": "success",
            "right": "skipped",
            "join_direct": "success",
        },
        xcoms={"branch": "path_a", "pick": ["left", "middle"]},
        logs={"branch": ["route from conf: a"]},
    ),
    Expectation(
        dag_id="short_circuit",
        file="short_circuit.py",
        run_state="success",
        tasks={
            "cond_true": "success",
            "true_1": "success",
            "cond_false": "success",
            "false_1": "skipped",
            "false_2": "skipped",
            "soft_false": "success",
            "soft_1": "skipped",
            "soft_2": "success",
        },
        xcoms={"cond_true": True, "cond_false": False, "soft_false": 0},
        logs={"soft_false": ["nothing new upstream"]},
    ),
    Expectation(
        dag_id="sensors_poke",
        file="sensors_poke.py",
        run_state="failed",
        tasks={
            "wait_for_ready": "success",
            "wait_for_value": "success",
            "use_value": "success",
            "short_delay": "success",
            "soft_timeout": "skipped",
            "hard_timeout": "failed",
            "after_hard": "upstream_failed",
        },
        tries={"wait_for_ready": 1, "hard_timeout": 1},
        xcoms={"wait_for_value": {"rows": 42}, "use_value": 42},
        logs={"wait_for_ready": ["poke number 3"], "use_value": ["sensor said rows=42"]},
    ),
    Expectation(
        dag_id="sensors_reschedule",
        file="sensors_reschedule.py",
        run_state="success",
        tasks={
            "prepare": "success",
            "write_marker": "success",
            "wait_for_marker": "success",
            "wait_until": "success",
            "done": "success",
            "soft_reschedule": "skipped",
            "after_soft": "skipped",
            "hard_reschedule": "failed",
            "report": "success",
        },
        logs={
            "write_marker": ["marker written"],
            "wait_for_marker": ["found"],
        },
    ),
    Expectation(
        dag_id="ext_producer",
        file="external_task_sensor.py",
        run_state="success",
        tasks={"produce": "success"},
        xcoms={"produce": "extract-ready"},
        logs={"produce": ["produced the daily extract"]},
    ),
    Expectation(
        # Needs ext_producer's run with the same logical date: only the real system has
        # both (like `airflow dags test`, `ledgerflow dags test` runs one DAG).
        dag_id="ext_consumer",
        file="external_task_sensor.py",
        run_state="success",
        tasks={"wait_for_producer": "success", "wait_for_ghost": "skipped", "consume": "success"},
        xcoms={"consume": "consumed"},
        where=frozenset({E2E}),
    ),
    Expectation(
        dag_id="custom_operator",
        file="custom_operator.py",
        run_state="success",
        tasks=_all("success", "report", "inline", "greet"),
        xcoms={
            "report": {
                "table": "sales_20240315",
                "sql": "-- daily report for 2024-03-15 SELECT region, SUM(amount) AS total "
                "FROM sales WHERE day = '2024-03-15' AND env = 'staging' GROUP BY region",
            },
            "inline": {"table": "scratch", "sql": "SELECT 1 FROM sales -- STAGING!"},
            "greet": "Hello STAGING from greet",
        },
        logs={"report": ["Loading sales_20240315 with:"], "greet": ["Hello STAGING from greet"]},
    ),
    Expectation(
        dag_id="template_files",
        file="template_files.py",
        conf={"who": "Ada"},
        run_state="success",
        tasks=_all("success", "via_searchpath", "via_dag_folder"),
        xcoms={"via_searchpath": "done 20240315", "via_dag_folder": "done 20240315"},
        logs={
            "via_searchpath": [
                "Hello Ada on 2024-03-15",
                "script for template_files.via_searchpath",
            ],
            "via_dag_folder": ["script for template_files.via_dag_folder"],
        },
    ),
    Expectation(
        dag_id="templating_macros",
        file="templating_macros.py",
        conf={"name": "Grace"},
        run_state="success",
        tasks=_all(
            "success", "render_context", "python_templates", "context_kwargs", "current_context"
        ),
        xcoms={
            "render_context": "label=daily",
            "python_templates": "2024-03-15|daily|SELECT * FROM events WHERE day = '2024-03-15'",
            "context_kwargs": {
                "ds": "2024-03-15",
                "year": 2024,
                "run_id": "{run_id}",
                "conf_name": "Grace",
            },
            "current_context": "current_context@20240315",
        },
        logs={
            "render_context": [
                "ds=2024-03-15 nodash=20240315 ts=2024-03-15T00:00:00+00:00",
                "start=2024-03-15T00:00:00+00:00 end=2024-03-15T00:00:00+00:00",
                "run_id={run_id} name=Grace",
                "ti=render_context task=render_context dag=templating_macros",
                "week_later=2024-03-22 uk=15/03/2024",
                "year=2030 tomorrow=2024-03-16",
            ],
            "python_templates": ["query: SELECT * FROM events WHERE day = '2024-03-15'"],
        },
    ),
    Expectation(
        dag_id="params_validation",
        file="params_validation.py",
        conf={"count": 5},
        run_state="success",
        tasks=_all("success", "use_params", "echo_params"),
        xcoms={
            "use_params": {"count": 5, "mode": "fast", "tags": ["daily"], "threshold": 0.5},
            "echo_params": "count=5 mode=fast",
        },
        logs={"use_params": ["count=5 mode=fast tags=daily"]},
    ),
    Expectation(
        dag_id="variables_connections",
        file="variables_connections.py",
        run_state="success",
        tasks=_all("success", "read_variables", "read_connection", "templated"),
        variables=VARIABLES,
        connections=CONNECTIONS,
        xcoms={
            "read_variables": {"greeting": "hello", "batch": 500, "missing": "fallback"},
            "read_connection": {
                "type": "postgres",
                "host": "db.example.com",
                "port": 5432,
                "schema": "analytics",
                "sslmode": "require",
            },
            "templated": "hello from eu-west-1 via db.example.com:5432",
        },
        logs={
            "read_variables": ["greeting=hello region=eu-west-1 missing=fallback", "api_key=***"],
            "read_connection": [
                "host=db.example.com port=5432 schema=analytics login=etl",
                "password=***",
            ],
        },
        logs_absent={
            "read_variables": ["s3cr3t-v4lue-123"],
            "read_connection": ["pa55word-xyz-987"],
        },
    ),
    Expectation(
        dag_id="dependencies",
        file="dependencies.py",
        run_state="success",
        tasks=_all(
            "success",
            "start",
            "middle",
            "a1",
            "a2",
            "b1",
            "b2",
            "c1",
            "c2",
            "d1",
            "d2",
            "e",
            "collect",
        ),
        xcoms={
            "a1": "a1",
            "collect": ["a1", "a2", "b1", "b2", "c1", "c2", "d1", "d2", "e"],
        },
        upstream={
            "start": frozenset(),
            "a1": frozenset({"start"}),
            "a2": frozenset({"start"}),
            "b1": frozenset({"a1"}),
            "b2": frozenset({"a2"}),
            "middle": frozenset({"b1", "b2"}),
            "c1": frozenset({"middle"}),
            "c2": frozenset({"middle"}),
            "d1": frozenset({"c1", "c2"}),
            "d2": frozenset({"c1", "c2"}),
            "e": frozenset({"d1", "d2"}),
            "collect": frozenset({"e"}),
        },
    ),
    Expectation(
        dag_id="task_groups",
        file="task_groups.py",
        run_state="success",
        tasks=_all(
            "success",
            "start",
            "extract.from_api",
            "extract.from_db",
            "extract.nested.inner",
            "flat_task",
            "source",
            "other_source",
            "transform.clean",
            "transform.tag",
            "transform__1.clean",
            "transform__1.tag",
            "publish",
        ),
        xcoms={
            "extract.from_api": "api",
            "transform.clean": "PAYLOAD",
            "transform.tag": "[PAYLOAD]",
            "transform__1.tag": "[OTHER]",
            "publish": "[PAYLOAD]+[OTHER]",
        },
        logs={"publish": ["publishing [PAYLOAD] and [OTHER]"]},
        upstream={
            "extract.from_api": frozenset({"start"}),
            "extract.from_db": frozenset({"start"}),
            "extract.nested.inner": frozenset({"extract.from_api", "extract.from_db"}),
            "flat_task": frozenset({"extract.nested.inner"}),
            "transform.clean": frozenset({"source"}),
            "transform.tag": frozenset({"transform.clean"}),
            "transform__1.clean": frozenset({"other_source"}),
            "publish": frozenset({"transform.tag", "transform__1.tag", "flat_task"}),
        },
    ),
    Expectation(
        dag_id="mapping_literals",
        file="mapping_literals.py",
        run_state="success",
        tasks={
            "add": _mapped(3),
            "total": "success",
            "multiply": _mapped(4),
            "describe": _mapped(2),
            "echo": _mapped(2),
            "kw_bash": _mapped(2),
        },
        xcoms={
            "add[0]": 11,
            "add[1]": 12,
            "add[2]": 13,
            "total": 36,
            "multiply[0]": 10,
            "multiply[1]": 100,
            "multiply[2]": 20,
            "multiply[3]": 200,
            "describe[0]": "small:1",
            "describe[1]": "large:100",
            "echo[0]": "one",
            "echo[1]": "two",
            "kw_bash[0]": "X is first",
            "kw_bash[1]": "X is second",
        },
        logs={"total": ["total of [11, 12, 13] is 36"]},
    ),
    Expectation(
        dag_id="mapping_xcom",
        file="mapping_xcom.py",
        run_state="success",
        tasks={
            "list_files": "success",
            "file_size": _mapped(3),
            "double": _mapped(3),
            "summarize": "success",
            "nothing": "success",
            "process": {-1: "skipped"},
            "after_empty": "skipped",
            "make_kwargs": "success",
            "plus": _mapped(2),
            "pull_mapped": "success",
        },
        xcoms={
            "list_files": ["a.csv", "bb.csv", "ccc.csv"],
            "file_size[0]": 50,
            "file_size[1]": 60,
            "file_size[2]": 70,
            "double[0]": 100,
            "double[1]": 120,
            "double[2]": 140,
            "summarize": 360,
            "nothing": [],
            "plus[0]": 3,
            "plus[1]": 7,
            "pull_mapped": {"one": 60, "some": [50, 70]},
        },
        logs={"file_size[1]": ["sizing bb.csv"], "pull_mapped": ["one=60 some=[50, 70]"]},
    ),
    Expectation(
        dag_id="trigger_rules_failure",
        file="trigger_rules_failure.py",
        run_state="failed",
        tasks={
            "ok": "success",
            "boom": "failed",
            "after_all_success": "upstream_failed",
            **_rules(
                all_success="upstream_failed",
                all_failed="skipped",
                all_done="success",
                all_done_min_one_success="success",
                all_skipped="skipped",
                one_success="success",
                one_failed="success",
                one_done="success",
                none_failed="upstream_failed",
                none_failed_min_one_success="upstream_failed",
                none_skipped="success",
                always="success",
            ),
        },
        logs={"boom": ["boom on purpose"]},
    ),
    Expectation(
        dag_id="trigger_rules_skip",
        file="trigger_rules_skip.py",
        run_state="success",
        tasks={
            "ok": "success",
            "skipper": "skipped",
            **_rules(
                all_success="skipped",
                all_failed="skipped",
                all_done="success",
                # Airflow: "for this trigger rule, skipped tasks are not considered done"
                all_done_min_one_success="skipped",
                all_skipped="skipped",
                one_success="success",
                one_failed="skipped",
                one_done="success",
                none_failed="success",
                none_failed_min_one_success="success",
                none_skipped="skipped",
                always="success",
            ),
        },
    ),
    Expectation(
        dag_id="trigger_rules_all_skipped",
        file="trigger_rules_all_skipped.py",
        run_state="success",
        tasks={
            "skip_a": "skipped",
            "skip_b": "skipped",
            **_rules(
                all_success="skipped",
                all_failed="skipped",
                all_done="success",
                all_done_min_one_success="skipped",
                all_skipped="success",
                one_success="skipped",
                one_failed="skipped",
                one_done="skipped",
                none_failed="success",
                none_failed_min_one_success="skipped",
                none_skipped="skipped",
                always="success",
            ),
        },
    ),
    Expectation(
        dag_id="trigger_rules_all_failed",
        file="trigger_rules_all_failed.py",
        run_state="failed",
        tasks={
            "boom": "failed",
            "never": "upstream_failed",
            **_rules(
                all_success="upstream_failed",
                all_failed="success",
                all_done="success",
                all_done_min_one_success="upstream_failed",
                all_skipped="skipped",
                one_success="upstream_failed",
                one_failed="success",
                one_done="success",
                none_failed="upstream_failed",
                none_failed_min_one_success="upstream_failed",
                none_skipped="success",
                always="success",
            ),
        },
    ),
    Expectation(
        dag_id="skip_propagation",
        file="skip_propagation.py",
        run_state="success",
        tasks={
            "numbers": "success",
            "skipper": "skipped",
            "child_1": "skipped",
            "child_2": "skipped",
            "child_3": "skipped",
            "rescue": "success",
            "final": "success",
            "no_skips": "skipped",
            "square": {-1: "skipped"},
        },
        logs={"skipper": ["checking for new data"]},
    ),
    Expectation(
        dag_id="setup_teardown",
        file="setup_teardown.py",
        run_state="failed",
        tasks={
            "create_cluster": "success",
            "run_query": "failed",
            "delete_cluster": "success",
            "publish": "upstream_failed",
        },
        xcoms={"create_cluster": "cluster-1"},
        logs={
            "create_cluster": ["cluster up"],
            "run_query": ["querying cluster-1", "query failed"],
            "delete_cluster": ["deleting cluster-1"],
        },
    ),
    Expectation(
        dag_id="teardown_failure_ignored",
        file="setup_teardown_classic.py",
        run_state="success",
        tasks={"create_bucket": "success", "load": "success", "drop_bucket": "failed"},
        logs={"drop_bucket": ["could not drop"]},
    ),
    Expectation(
        dag_id="teardown_failure_fails_run",
        file="setup_teardown_classic.py",
        run_state="failed",
        tasks={"create_bucket": "success", "load": "success", "drop_bucket": "failed"},
    ),
    Expectation(
        dag_id="setup_failure",
        file="setup_teardown_classic.py",
        run_state="failed",
        tasks={"create": "failed", "work": "upstream_failed", "destroy": "upstream_failed"},
        logs={"create": ["no capacity"]},
    ),
    Expectation(
        dag_id="retries",
        file="retries.py",
        run_state="success",
        tasks={
            "flaky": "success",
            "backoff": "success",
            "fatal": "failed",
            "always_fails": "failed",
            "final": "success",
        },
        tries={"flaky": 3, "backoff": 3, "fatal": 1, "always_fails": 2},
        xcoms={"flaky": "ok on try 3", "backoff": 3},
        logs={
            "flaky#1": ["attempt 1", "transient error on try 1"],
            "flaky#3": ["attempt 3"],
            "backoff#2": ["backoff attempt 2", "service unavailable"],
            "fatal": ["bad input, retrying will not help"],
            "always_fails#2": ["always_fails attempt 2", "still broken"],
        },
    ),
    Expectation(
        dag_id="timeouts",
        file="timeouts.py",
        run_state="failed",
        tasks={"quick": "success", "too_slow": "failed", "bash_slow": "failed"},
        tries={"too_slow": 1, "bash_slow": 2},
        xcoms={"quick": "fast enough"},
        logs={"too_slow": ["starting slow work"], "bash_slow#2": ["sleeping"]},
        logs_absent={"too_slow": ["finished slow work"], "bash_slow": ["woke up"]},
    ),
    Expectation(
        dag_id="callbacks",
        file="callbacks.py",
        run_state="success",
        tasks={"good": "success", "flaky_once": "success", "bad": "failed", "wrap_up": "success"},
        tries={"flaky_once": 2, "bad": 1},
        logs={
            "good": [
                "on_execute: good try 1",
                "working fine",
                "on_success: good",
                "also_on_success: good",
            ],
            "flaky_once#1": [
                "on_execute: flaky_once try 1",
                "on_retry: flaky_once: first try fails",
            ],
            "flaky_once#2": ["on_execute: flaky_once try 2", "on_success: flaky_once"],
            "bad": ["on_execute: bad try 1", "on_failure: bad: boom"],
        },
        logs_absent={"flaky_once#1": ["on_failure"], "bad": ["on_success", "on_retry"]},
    ),
    Expectation(
        dag_id="xcom_push_pull",
        file="xcom_push_pull.py",
        run_state="success",
        tasks={
            "push": "success",
            "bash_push": "success",
            "no_push": "success",
            "pull": "success",
            "too_big": "failed",
            "note_failure": "success",
        },
        xcoms={
            "push": "pushed",
            "push:rows": [1, 2, 3],
            "push:meta": {"source": "api"},
            "bash_push": "bash value",
            "no_push": None,
            "pull": {
                "rows": [1, 2, 3],
                "source": "api",
                "returned": "pushed",
                "both": ["pushed", "bash value"],
                "hidden": None,
                "missing": "n/a",
            },
            "note_failure": "too_big failed as expected",
        },
        logs={"too_big": ["limit"]},
    ),
    Expectation(
        dag_id="pools_priorities",
        file="pools_priorities.py",
        run_state="success",
        tasks={"urgent": "success", "on_etl_queue": "success", "one_at_a_time": _mapped(3)},
        xcoms={
            "on_etl_queue": "ran on the etl queue",
            "one_at_a_time[0]": 10,
            "one_at_a_time[1]": 20,
            "one_at_a_time[2]": 30,
        },
        ti_fields={
            "urgent": {"priority_weight": 10, "pool": "default_pool", "queue": "default"},
            "on_etl_queue": {"priority_weight": 3, "queue": "etl"},
        },
        queues=frozenset({"etl"}),
    ),
    Expectation(
        dag_id="depends_on_past",
        file="depends_on_past.py",
        run_state="success",
        tasks=_all("success", "extract", "transform", "load"),
        logs={"extract": ["extract 2024-03-15"], "load": ["load 2024-03-15"]},
        followup_logical_date="2024-03-16T00:00:00+00:00",
    ),
    Expectation(
        dag_id="legacy_imports",
        file="legacy_imports.py",
        run_state="success",
        variables={"legacy_setting": "configured"},
        tasks={
            "begin": "success",
            "read_setting": "success",
            "ready": "success",
            "branch": "success",
            "nothing": "skipped",
            "process.work": "success",
            "process.maybe": "skipped",
            "finish": "success",
            "summary": "success",
        },
        xcoms={
            "read_setting": "configured",
            "branch": "process.work",
            "summary": "summary: configured",
        },
        logs={"read_setting": ["setting is configured"]},
    ),
    Expectation(
        # A schedule in a time zone (issue 6). `dags test` only: in the real system the
        # schedule would create runs of its own (tests/unit/test_timetables.py covers
        # the intervals, tests/integration/test_api_schedule.py the next-run fields).
        dag_id="timetable_tz",
        file="timetable_tz.py",
        run_state="success",
        tasks={"describe_schedule": "success"},
        xcoms={
            "describe_schedule": {
                "summary": "30 2 * * *",
                "description": "At 02:30",
                "ds": "2024-03-15",
            }
        },
        logs={"describe_schedule": ["schedule 30 2 * * *: At 02:30"]},
        where=frozenset({DAGS_TEST}),
    ),
)

BAD_CONFS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("params_validation", {"count": 50}, "count"),
    ("params_validation", {"mode": "medium"}, "mode"),
)
"""``(dag_id, conf, word the rejection must name)``: conf that breaks a Param schema."""

MISSING_PROVIDER = Path(__file__).resolve().parents[2] / "examples/bad_dags/missing_provider.py"
MISSING_PROVIDER_MODULE = "airflow.providers.snowflake"


def by_dag_id() -> dict[str, Expectation]:
    return {e.dag_id: e for e in EXPECTATIONS}


def for_mode(mode: str) -> tuple[Expectation, ...]:
    return tuple(e for e in EXPECTATIONS if mode in e.where)


def needed_variables() -> dict[str, Any]:
    out: dict[str, Any] = {}
    for e in EXPECTATIONS:
        out.update(e.variables)
    return out


def needed_connections() -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for e in EXPECTATIONS:
        out.update(e.connections)
    return out
