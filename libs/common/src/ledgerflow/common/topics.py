"""Topic names and their layout. Pure: names only, no I/O.

See docs/adr/0002-topics-and-partitioning.md. Everything about one DAG is keyed by its
``dag_id`` on the DAG, command and run-log topics, which all have the same partition
count, so partition *p* of each holds the same DAGs and one scheduler owns them together.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Topics:
    """The topic names under one prefix (``LEDGERFLOW_TOPIC_PREFIX``)."""

    prefix: str = "ledgerflow"

    @property
    def dags(self) -> str:
        """DAG versions (``DagVersionPublished``), keyed by dag_id."""
        return f"{self.prefix}.dags"

    @property
    def commands(self) -> str:
        """Commands from the API (``TriggerDagRun``, ``SetDagPaused``), keyed by dag_id."""
        return f"{self.prefix}.commands"

    @property
    def runs(self) -> str:
        """The run log: scheduler facts and executor reports, keyed by dag_id."""
        return f"{self.prefix}.runs"

    @property
    def logs(self) -> str:
        """Task log chunks, keyed by attempt (dag/run/task/map/try)."""
        return f"{self.prefix}.logs"

    @property
    def config(self) -> str:
        """Variables, connections and pools (``VariableSet``, ``ConnectionSet``, ...),
        keyed by ``variable:<key>`` / ``connection:<conn_id>`` / ``pool:<name>``. One
        partition, so every reader sees one order (ADR 0006)."""
        return f"{self.prefix}.config"

    @property
    def control(self) -> str:
        """Control messages to every executor (``CancelTaskAttempt``). One partition; each
        executor reads it without a consumer group from the latest offset at start (a
        cancel sent while an executor restarts is moot: its attempts are zombies)."""
        return f"{self.prefix}.control"

    @property
    def heartbeats(self) -> str:
        """``ServiceHeartbeat`` of every scheduler, executor and projector instance, keyed
        by instance id. One partition, kept one day: "who is alive now", not history."""
        return f"{self.prefix}.heartbeats"

    @property
    def assets(self) -> str:
        """``AssetEventEmitted`` facts, keyed by asset name. One partition, so its
        offsets order every asset event and every scheduler instance (each reads the
        whole topic) sees the same order (ADR 0013). Kept forever."""
        return f"{self.prefix}.assets"

    @property
    def dead_letters(self) -> str:
        """Messages no consumer could read, with the reason in headers."""
        return f"{self.prefix}.dlq"

    def work(self, queue: str) -> str:
        """Work items for one executor queue, keyed by attempt."""
        return f"{self.prefix}.work.{queue}"

    @property
    def event_topics(self) -> tuple[str, ...]:
        """Topics the projector reads (everything but work items and dead letters)."""
        return (self.dags, self.commands, self.runs, self.logs, self.config, self.assets)


def attempt_key(dag_id: str, run_id: str, task_id: str, map_index: int, try_number: int) -> str:
    """Kafka key of a work item or log chunk: spreads attempts over partitions while
    keeping one attempt's messages in order."""
    return f"{dag_id}/{run_id}/{task_id}/{map_index}/{try_number}"
