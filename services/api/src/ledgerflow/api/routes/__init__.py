"""HTTP routes, one module per resource (Airflow REST API v2 paths)."""
