-- Assets (ADR 0013): Airflow's asset, asset_alias and asset_event tables, and the DAG
-- references (which DAGs are scheduled on an asset, which tasks produce or read it),
-- rebuilt from DagVersionPublished and AssetEventEmitted.

CREATE TABLE IF NOT EXISTS assets (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    uri         TEXT NOT NULL,
    "group"     TEXT NOT NULL DEFAULT 'asset',
    extra       JSONB NOT NULL DEFAULT '{}'::jsonb,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS assets_uri ON assets (uri);

CREATE TABLE IF NOT EXISTS asset_aliases (
    id          BIGSERIAL PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    "group"     TEXT NOT NULL DEFAULT 'asset'
);

-- Assets an alias has resolved to (events emitted through it).
CREATE TABLE IF NOT EXISTS asset_alias_assets (
    alias_id    BIGINT NOT NULL REFERENCES asset_aliases (id) ON DELETE CASCADE,
    asset_id    BIGINT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    PRIMARY KEY (alias_id, asset_id)
);

-- DAGs scheduled on an asset (directly or through an alias it resolved to).
CREATE TABLE IF NOT EXISTS asset_dag_refs (
    asset_id    BIGINT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    dag_id      TEXT NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (asset_id, dag_id)
);
CREATE INDEX IF NOT EXISTS asset_dag_refs_dag ON asset_dag_refs (dag_id);

-- Tasks producing (outlet) or reading (inlet) an asset.
CREATE TABLE IF NOT EXISTS asset_task_refs (
    asset_id    BIGINT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    dag_id      TEXT NOT NULL,
    task_id     TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('outlet', 'inlet')),
    created_at  TIMESTAMPTZ NOT NULL,
    updated_at  TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (asset_id, dag_id, task_id, kind)
);
CREATE INDEX IF NOT EXISTS asset_task_refs_dag ON asset_task_refs (dag_id);

-- Aliases DAGs are scheduled on (for resolution when an event names the alias).
CREATE TABLE IF NOT EXISTS asset_alias_dag_refs (
    alias_id    BIGINT NOT NULL REFERENCES asset_aliases (id) ON DELETE CASCADE,
    dag_id      TEXT NOT NULL,
    PRIMARY KEY (alias_id, dag_id)
);

CREATE TABLE IF NOT EXISTS asset_events (
    id                BIGSERIAL PRIMARY KEY,
    event_id          TEXT NOT NULL UNIQUE,
    asset_id          BIGINT NOT NULL REFERENCES assets (id) ON DELETE CASCADE,
    extra             JSONB NOT NULL DEFAULT '{}'::jsonb,
    source_dag_id     TEXT,
    source_task_id    TEXT,
    source_run_id     TEXT,
    source_map_index  INTEGER NOT NULL DEFAULT -1,
    source_aliases    TEXT[] NOT NULL DEFAULT '{}',
    created_by        TEXT,
    "timestamp"       TIMESTAMPTZ NOT NULL
);
CREATE INDEX IF NOT EXISTS asset_events_asset ON asset_events (asset_id, "timestamp");
CREATE INDEX IF NOT EXISTS asset_events_source ON asset_events (source_dag_id, source_run_id);

-- Runs an event triggered (Airflow's created_dagruns), from DagRunQueued.
CREATE TABLE IF NOT EXISTS asset_event_dag_runs (
    event_id    TEXT NOT NULL,
    dag_id      TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    PRIMARY KEY (event_id, dag_id, run_id)
);
