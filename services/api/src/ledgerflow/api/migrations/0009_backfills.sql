-- Backfills (Airflow's backfill and backfill_dag_run tables), from the run log's
-- BackfillCreated/Paused/Unpaused/Cancelled/Completed facts. Ids are allocated by the
-- API from backfill_ids (the projector moves the sequence past every id it stores, so
-- a rebuilt projection never hands out an id twice).
CREATE SEQUENCE backfill_ids;

CREATE TABLE backfills (
    id                   integer PRIMARY KEY,
    dag_id               text NOT NULL,
    from_date            timestamptz NOT NULL,
    to_date              timestamptz NOT NULL,
    dag_run_conf         jsonb NOT NULL DEFAULT '{}',
    is_paused            boolean NOT NULL DEFAULT false,
    reprocess_behavior   text NOT NULL,
    max_active_runs      integer NOT NULL,
    run_backwards        boolean NOT NULL DEFAULT false,
    cancelled            boolean NOT NULL DEFAULT false,
    triggering_user_name text,
    created_at           timestamptz NOT NULL,
    completed_at         timestamptz,
    updated_at           timestamptz NOT NULL
);
CREATE INDEX backfills_dag_idx ON backfills (dag_id, id);

-- One row per logical date of a backfill, in run order: the run it creates or re-runs,
-- or why it is skipped (exception_reason: 'already exists', 'in flight').
CREATE TABLE backfill_dag_runs (
    backfill_id       integer NOT NULL,
    sort_ordinal      integer NOT NULL,
    dag_id            text NOT NULL,
    logical_date      timestamptz NOT NULL,
    action            text NOT NULL,
    run_id            text,
    exception_reason  text,
    PRIMARY KEY (backfill_id, sort_ordinal)
);
CREATE INDEX backfill_dag_runs_run_idx ON backfill_dag_runs (dag_id, run_id);
