"""ledgerflow's API service (FastAPI) and the projector that feeds its Postgres projection.

- :mod:`ledgerflow.api.projector`: reads every event topic, writes the projection.
- :mod:`ledgerflow.api.app`: the HTTP API (Airflow REST API v2 shapes), reading the
  projection and publishing commands and DAG versions.
"""
