"""The Airflow DAG corpus (examples/airflow) and what running each DAG must produce."""
