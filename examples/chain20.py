"""Twenty no-op Python tasks in a chain: the per-hop latency benchmark (``make bench``)."""

from datetime import datetime

from ledgerflow.sdk import DAG, PythonOperator, chain


def noop() -> None:
    return None


with DAG(
    "bench_chain_20",
    description="20 no-op Python tasks in a chain, for measuring per-hop latency",
    schedule=None,
    start_date=datetime(2024, 1, 1),
    tags=["example", "benchmark"],
):
    chain(*(PythonOperator(task_id=f"t{i:02d}", python_callable=noop) for i in range(1, 21)))
