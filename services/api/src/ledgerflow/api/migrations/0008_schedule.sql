-- Scheduled runs (issue 6): a run's data interval and the time it was due (Airflow's
-- dag_run.data_interval_start/_end and run_after), from DagRunQueued.
ALTER TABLE dag_runs ADD COLUMN IF NOT EXISTS data_interval_start timestamptz;
ALTER TABLE dag_runs ADD COLUMN IF NOT EXISTS data_interval_end timestamptz;
ALTER TABLE dag_runs ADD COLUMN IF NOT EXISTS run_after timestamptz;
