-- Pools (issue 4, ADR 0009): one row per pool set on the config topic (PoolSet /
-- PoolDeleted). default_pool exists from the start with Airflow's 128 slots until a
-- PoolSet changes it. Occupancy is not stored: the API counts the task instances in
-- the pool that are queued or running.
CREATE TABLE pools (
    name              text PRIMARY KEY,
    slots             integer NOT NULL,
    description       text,
    include_deferred  boolean NOT NULL DEFAULT false,
    updated_at        timestamptz
);
INSERT INTO pools (name, slots, description) VALUES ('default_pool', 128, 'Default pool');

CREATE INDEX task_instances_pool_state_idx ON task_instances (pool, state)
    WHERE state IN ('queued', 'running', 'scheduled', 'deferred');

-- Slots each task instance takes in its pool (TaskInstanceScheduled.pool_slots).
ALTER TABLE task_instances ADD COLUMN pool_slots integer NOT NULL DEFAULT 1;
