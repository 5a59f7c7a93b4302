"""Asset watchers in DAG files (ADR 0014): ledgerflow's and Airflow's spellings
serialize to the same WatcherSpec; apply_function and bad filters are DAG file errors
with the line."""

from __future__ import annotations

import textwrap

import pytest
from ledgerflow.sdk.loader import DagFileError, load_dags
from ledgerflow.sdk.parse import parse


def serialized(src: str):
    (dag,) = load_dags(textwrap.dedent(src), "dags/w.py")
    return dag.serialize(fileloc="dags/w.py")


def watchers_of(s):
    cond = s.asset_condition
    leaves = [cond] if cond.op == "asset" else list(cond.children)
    return [w for leaf in leaves for w in leaf.asset.watchers]


def test_ledgerflow_spelling():
    s = serialized(
        """
        from ledgerflow.sdk import DAG, Asset, AssetWatcher, KafkaMessageTrigger
        from ledgerflow.sdk.operators import EmptyOperator
        trigger = KafkaMessageTrigger(topics=["ext-orders"], filter="value.kind == 'order'")
        with DAG("w", schedule=[Asset("orders", watchers=[AssetWatcher("w1", trigger)])]):
            EmptyOperator(task_id="t")
        """
    )
    (w,) = watchers_of(s)
    assert (w.name, w.topics, w.filter, w.bootstrap_servers) == (
        "w1",
        ("ext-orders",),
        "value.kind == 'order'",
        None,
    )
    assert w.value_format == "json"
    assert s.timetable is not None and s.timetable.kind == "asset"


def test_airflow_spellings():
    s = serialized(
        """
        from airflow.sdk import DAG, Asset, AssetWatcher
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
        from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger
        from airflow.providers.standard.operators.empty import EmptyOperator
        a = Asset("a", watchers=[AssetWatcher(
            "mq", MessageQueueTrigger(queue="kafka://broker:9092/t1,t2", filter="key == 'x'"))])
        b = Asset("b", watchers=[AssetWatcher(
            "await", AwaitMessageTrigger(topics=["t3"], value_format="text"))])
        with DAG("w", schedule=[a, b]):
            EmptyOperator(task_id="t")
        """
    )
    mq, aw = watchers_of(s)
    assert (mq.topics, mq.bootstrap_servers, mq.filter) == (
        ("t1", "t2"),
        "broker:9092",
        "key == 'x'",
    )
    assert (aw.topics, aw.bootstrap_servers, aw.value_format) == (("t3",), None, "text")


@pytest.mark.parametrize(
    ("trigger", "message"),
    [
        (
            "MessageQueueTrigger(queue='kafka://h:1/t', apply_function='mod.fn')",
            "Use filter=",
        ),
        ("AwaitMessageTrigger(topics=['t'], apply_function='mod.fn')", "never imports DAG code"),
        ("AwaitMessageTrigger(topics=['t'], kafka_config_id='other')", "kafka_config_id"),
        ("MessageQueueTrigger(queue='sqs://q')", "kafka://"),
        ("MessageQueueTrigger(queue='kafka://h:1/t', filter='__import__(1)')", "invalid"),
        ("MessageQueueTrigger(queue='kafka://h:1/t', filter='value.__class__')", "not allowed"),
        ("MessageQueueTrigger(queue='kafka://h:1/')", "needs topics"),
        ("AwaitMessageTrigger(topics=['t'], value_format='xml')", "value_format"),
    ],
)
def test_refused_with_file_and_line(trigger: str, message: str):
    src = textwrap.dedent(
        f"""
        from airflow.sdk import DAG, Asset, AssetWatcher
        from airflow.providers.common.messaging.triggers.msg_queue import MessageQueueTrigger
        from airflow.providers.apache.kafka.triggers.await_message import AwaitMessageTrigger

        trigger = {trigger}
        """
    )
    result = parse(src, "dags/bad.py")
    assert result["ok"] is False
    err = result["error"]
    assert err["filename"] == "dags/bad.py" and err["lineno"] == 6, err
    assert message in err["message"], err


def test_watcher_needs_a_supported_trigger():
    with pytest.raises(DagFileError, match="not supported"):
        load_dags(
            "from ledgerflow.sdk import AssetWatcher\nAssetWatcher('w', object())\n", "dags/x.py"
        )
