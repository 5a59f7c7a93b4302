"""Assets in the SDK (ADR 0013): schedules and outlets serialized, Airflow's names, and
the runtime's ``outlet_events`` / ``Metadata`` / ``triggering_asset_events``."""

from __future__ import annotations

import textwrap

import pytest
from ledgerflow.common.events import AssetEventReport
from ledgerflow.sdk import DAG, Asset, AssetAlias
from ledgerflow.sdk.assets import AssetAll, AssetAny, AssetOrTimeSchedule, asset_schedule
from ledgerflow.sdk.loader import load_dags
from ledgerflow.sdk.operators import EmptyOperator

from tests.unit.test_runtime_harness import run


def test_asset_defaults_and_operators():
    a = Asset("s3://b/x")
    assert (a.name, a.uri, a.group) == ("s3://b/x", "s3://b/x", "asset")
    b = Asset(name="y", uri="s3://b/y", group="tables", extra={"k": 1})
    assert isinstance(a & b, AssetAll) and isinstance(a | b, AssetAny)
    assert (a & b & Asset("z")).objects == [a, b, Asset("z")]
    with pytest.raises(TypeError):
        Asset()
    with pytest.raises(ValueError):
        Asset(name="")


def test_list_schedule_means_all_and_expressions_nest():
    x, y = Asset("x"), Asset("y")
    s = asset_schedule([x, y])
    assert s is not None and s.timetable.kind == "asset"
    assert s.condition.op == "all" and [c.asset.name for c in s.condition.children] == ["x", "y"]
    nested = asset_schedule((x & y) | AssetAlias("al"))
    assert nested is not None and nested.condition.op == "any"
    assert nested.condition.children[0].op == "all"
    assert nested.condition.children[1].op == "alias"
    assert nested.summary == "((x & y) | alias:al)"
    assert asset_schedule("@daily") is None and asset_schedule(None) is None


def test_asset_or_time_schedule():
    s = asset_schedule(AssetOrTimeSchedule(timetable="0 * * * *", assets=[Asset("x")]))
    assert s is not None
    assert s.timetable.kind == "asset_or_time" and s.timetable.time_kind is not None
    assert s.timetable.expression == "0 * * * *"


def test_dag_serializes_condition_outlets_and_inlets():
    x, y = Asset("x", extra={"owner": "data"}), Asset("y")
    with DAG("consumer", schedule=x & y) as dag:
        EmptyOperator(task_id="t", outlets=[Asset("out"), AssetAlias("al")], inlets=[x])
    ser = dag.serialize()
    assert ser.timetable is not None and ser.timetable.kind == "asset"
    assert ser.asset_condition is not None and ser.asset_condition.op == "all"
    assert ser.asset_condition.children[0].asset.extra == {"owner": "data"}
    task = ser.task("t")
    assert [(r.kind, r.name) for r in task.outlets] == [("asset", "out"), ("alias", "al")]
    assert [r.name for r in task.inlets] == ["x"]
    # A time schedule is untouched.
    with DAG("timed", schedule=None) as plain:
        EmptyOperator(task_id="t")
    assert plain.serialize().asset_condition is None


def test_watchers_with_serialize_are_serialized():
    from ledgerflow.common.dagmodel import WatcherSpec

    class W:
        def serialize(self) -> WatcherSpec:
            return WatcherSpec(name="w", topics=("t",))

    ref = Asset("x", watchers=[W(), object()]).as_asset_ref()
    assert [w.name for w in ref.watchers] == ["w"]
    from ledgerflow.sdk.triggers import AssetWatcher, KafkaMessageTrigger

    real = AssetWatcher("orders_w", KafkaMessageTrigger(topics=["orders"]))
    (spec,) = Asset("orders", watchers=[real]).as_asset_ref().watchers
    assert (spec.name, spec.topics) == ("orders_w", ("orders",))


def test_airflow_names_load_in_a_dag_file():
    source = textwrap.dedent(
        """
        from airflow.sdk import DAG, Asset, AssetAlias, AssetAll, AssetAny, Metadata
        from airflow.datasets import Dataset
        from airflow.operators.empty import EmptyOperator

        with DAG("c", schedule=AssetAny(Dataset("a"), AssetAll(Asset("b"), AssetAlias("l")))):
            EmptyOperator(task_id="t")
        """
    )
    (dag,) = load_dags(source, "c.py")
    cond = dag.serialize().asset_condition
    assert cond is not None and cond.op == "any" and cond.children[1].op == "all"


PRODUCER = """
from airflow.sdk import DAG, Asset, AssetAlias, Metadata, task

x = Asset(name="x", uri="s3://b/x")
with DAG("t"):
    @task(outlets=[x])
    def set_extra(*, outlet_events):
        outlet_events[x].extra["rows"] = 3
        return "ok"

    @task(outlets=[x])
    def yields():
        yield Metadata(x, {"rows": 5})
        return "done"

    @task(outlets=[AssetAlias("al")])
    def via_alias(*, outlet_events):
        outlet_events[AssetAlias("al")].add(Asset(name="z", uri="s3://b/z"), extra={"k": "v"})

    @task
    def consume(*, triggering_asset_events, inlet_events):
        return {
            a.name: [e.extra for e in evs] for a, evs in triggering_asset_events.items()
        } | {"by_name": len(triggering_asset_events["x"])}

    set_extra()
    yields()
    via_alias()
    consume()
"""


def test_outlet_events_extra_and_metadata_are_reported():
    out = run(PRODUCER, "set_extra")
    assert out["status"] == "success" and out["return_value"] == "ok"
    assert out["asset_events"] == [
        {
            "name": "x",
            "uri": "s3://b/x",
            "group": "asset",
            "extra": {"rows": 3},
            "source_aliases": [],
        }
    ]
    out = run(PRODUCER, "yields")
    assert out["return_value"] == "done"
    assert out["asset_events"][0]["extra"] == {"rows": 5}
    out = run(PRODUCER, "via_alias")
    (event,) = out["asset_events"]
    assert (event["name"], event["extra"], event["source_aliases"]) == ("z", {"k": "v"}, ["al"])
    AssetEventReport.model_validate(event)


def test_triggering_asset_events_reach_the_task():
    events = [
        {
            "id": "1",
            "name": "x",
            "uri": "s3://b/x",
            "extra": {"rows": 3},
            "timestamp": "2026-01-01T00:00:00+00:00",
            "source_dag_id": "p",
        },
        {"id": "2", "name": "y", "uri": "y", "extra": {}, "timestamp": "2026-01-01T00:00:01+00:00"},
    ]
    out = run(PRODUCER, "consume", triggering_asset_events=events, run_type="asset_triggered")
    assert out["status"] == "success", out
    assert out["return_value"] == {"x": [{"rows": 3}], "y": [{}], "by_name": 1}
