"""DAGs for the schedule end-to-end test: every ``@INTERVAL@`` seconds from ``@START@``
(a few intervals in the past), catchup on, one quick task. The test writes the ids
(``@IDS@``) and the start date into the file before submitting it."""

from datetime import datetime, timedelta

from ledgerflow.sdk import DAG, task

START = datetime.fromisoformat("@START@")
INTERVAL = timedelta(seconds=float("@INTERVAL@"))

for dag_id in "@IDS@".split(","):
    with DAG(dag_id, schedule=INTERVAL, start_date=START, catchup=True, tags=["e2e"]):

        @task
        def tick():
            return 1

        tick()
