-- The Postgres projection of the event log. Every row here can be rebuilt from Kafka
-- (`ledgerflow projector --rebuild`); nothing in it is a source of truth. Row values
-- come from events (their times, not now()), so a rebuild yields identical rows.
-- Tables are created in the schema the migration runner puts first on search_path.

-- Raw event store: every envelope the projector has read. The primary key is the
-- event id (the idempotency key), so a redelivered or re-published event is a no-op.
CREATE TABLE events (
    event_id        text PRIMARY KEY,
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    kafka_offset    bigint NOT NULL,
    aggregate_key   text NOT NULL,
    event_type      text NOT NULL,
    event_time      timestamptz NOT NULL,
    sequence        bigint NOT NULL,
    source          text NOT NULL,
    schema_version  integer NOT NULL,
    correlation_id  text,
    causation_id    text,
    traceparent     text,
    data            jsonb NOT NULL
);
CREATE INDEX events_aggregate_time_idx ON events (aggregate_key, event_time);
CREATE INDEX events_time_idx ON events (event_time);
CREATE INDEX events_correlation_idx ON events (correlation_id) WHERE correlation_id IS NOT NULL;

CREATE TABLE dags (
    dag_id             text PRIMARY KEY,
    is_paused          boolean NOT NULL DEFAULT false,
    latest_version_id  text,
    description        text,
    fileloc            text,
    filename           text,
    schedule           text,
    tags               text[] NOT NULL DEFAULT '{}',
    owners             text[] NOT NULL DEFAULT '{}',
    max_active_runs    integer,
    max_active_tasks   integer,
    created_at         timestamptz NOT NULL,
    last_parsed_time   timestamptz,
    updated_at         timestamptz NOT NULL
);

CREATE TABLE dag_versions (
    version_id      text PRIMARY KEY,
    dag_id          text NOT NULL,
    version_number  integer NOT NULL,
    serialized_dag  jsonb NOT NULL,
    source_code     text NOT NULL,
    filename        text NOT NULL,
    submitted_by    text,
    created_at      timestamptz NOT NULL,
    UNIQUE (dag_id, version_number)
);

CREATE TABLE dag_runs (
    dag_id        text NOT NULL,
    run_id        text NOT NULL,
    state         text NOT NULL,
    run_type      text NOT NULL,
    conf          jsonb NOT NULL DEFAULT '{}',
    logical_date  timestamptz,
    queued_at     timestamptz,
    start_date    timestamptz,
    end_date      timestamptz,
    version_id    text,
    triggered_by  text,
    note          text,
    failure_reason text,
    updated_at    timestamptz NOT NULL,
    PRIMARY KEY (dag_id, run_id)
);
CREATE INDEX dag_runs_queued_idx ON dag_runs (dag_id, queued_at);
CREATE INDEX dag_runs_version_idx ON dag_runs (version_id);

-- One row per task of a run. state is NULL until the scheduler decides (Airflow's
-- "no status"). try_number counts from 1 once the task is first queued.
CREATE TABLE task_instances (
    dag_id           text NOT NULL,
    run_id           text NOT NULL,
    task_id          text NOT NULL,
    map_index        integer NOT NULL DEFAULT -1,
    state            text,
    try_number       integer NOT NULL DEFAULT 0,
    max_tries        integer,
    queued_when      timestamptz,
    start_date       timestamptz,
    end_date         timestamptz,
    duration         double precision,
    hostname         text,
    executor_id      text,
    pid              integer,
    operator         text,
    queue            text,
    pool             text,
    priority_weight  integer,
    next_retry_at    timestamptz,
    return_value     jsonb,
    PRIMARY KEY (dag_id, run_id, task_id, map_index)
);

-- One row per attempt (try) of a task instance.
CREATE TABLE task_attempts (
    dag_id        text NOT NULL,
    run_id        text NOT NULL,
    task_id       text NOT NULL,
    map_index     integer NOT NULL,
    try_number    integer NOT NULL,
    state         text,
    queued_when   timestamptz,
    start_date    timestamptz,
    end_date      timestamptz,
    duration      double precision,
    hostname      text,
    executor_id   text,
    pid           integer,
    error         text,
    error_type    text,
    retryable     boolean,
    return_value  jsonb,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number)
);

CREATE TABLE task_logs (
    dag_id      text NOT NULL,
    run_id      text NOT NULL,
    task_id     text NOT NULL,
    map_index   integer NOT NULL,
    try_number  integer NOT NULL,
    chunk       integer NOT NULL,
    lines       jsonb NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number, chunk)
);

-- Where the projector has got to: the next offset to read, per partition. Written in
-- the same transaction as the rows, read on start (Kafka's committed offsets are never
-- used). See docs/adr on offset handling.
CREATE TABLE projector_offsets (
    topic           text NOT NULL,
    kafka_partition integer NOT NULL,
    next_offset     bigint NOT NULL,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, kafka_partition)
);

-- One row, updated every batch, for /health and operators.
CREATE TABLE projector_status (
    id                integer PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    started_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    events_applied    bigint NOT NULL DEFAULT 0,
    dead_lettered     bigint NOT NULL DEFAULT 0,
    last_batch_size   integer NOT NULL DEFAULT 0,
    last_event_time   timestamptz
);

-- Order of task/attempt states within one try, so a late report cannot move a task
-- instance backwards (e.g. a "started" that arrives after "succeeded" for the same try).
CREATE FUNCTION ti_state_rank(state text) RETURNS integer
    LANGUAGE sql IMMUTABLE
    AS $$ SELECT CASE
        WHEN state IS NULL THEN 0
        WHEN state IN ('scheduled', 'queued') THEN 1
        WHEN state = 'running' THEN 2
        ELSE 3
    END $$;
