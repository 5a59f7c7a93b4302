-- The task model of ADR 0006 in the projection: XComs, rendered template fields,
-- reschedules, mapped tasks and skip reasons. Like 0001, every row comes from events
-- and a rebuild replays into a schema that runs this migration from scratch.

-- Task instances were keyed by (dag_id, run_id, task_id, map_index) from 0001 on;
-- what a task's template fields rendered to in its latest try (Airflow's
-- rendered_task_instance_fields), shown as the task instance's ``rendered_fields``.
ALTER TABLE task_instances ADD COLUMN rendered_fields jsonb NOT NULL DEFAULT '{}';

-- Why an attempt skipped itself (TaskAttemptSkipped.reason); errors stay in ``error``.
ALTER TABLE task_attempts ADD COLUMN reason text;

-- One row per mapped task and run once the scheduler expanded it
-- (TaskInstanceMapExpanded): its task instances are map indexes 0 .. length-1, and
-- the map index -1 placeholder is gone (or skipped when length is 0).
CREATE TABLE task_map (
    dag_id       text NOT NULL,
    run_id       text NOT NULL,
    task_id      text NOT NULL,
    length       integer NOT NULL CHECK (length >= 0),
    expanded_at  timestamptz NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id)
);

-- One row per reschedule of a reschedule-mode sensor (Airflow's task_reschedule):
-- the poke that ended with TaskAttemptRescheduled and when it asked to run again.
CREATE TABLE task_reschedule (
    dag_id           text NOT NULL,
    run_id           text NOT NULL,
    task_id          text NOT NULL,
    map_index        integer NOT NULL,
    try_number       integer NOT NULL,
    start_date       timestamptz,
    end_date         timestamptz NOT NULL,
    duration         double precision,
    reschedule_date  timestamptz NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, try_number)
);

-- XComs of the latest successful try of each task instance: ``return_value`` (when
-- the task returned something) and every key it pushed. ``timestamp`` is the
-- attempt's end date.
CREATE TABLE xcom (
    dag_id     text NOT NULL,
    run_id     text NOT NULL,
    task_id    text NOT NULL,
    map_index  integer NOT NULL,
    key        text NOT NULL,
    value      jsonb,
    timestamp  timestamptz NOT NULL,
    PRIMARY KEY (dag_id, run_id, task_id, map_index, key)
);
CREATE INDEX xcom_run_idx ON xcom (dag_id, run_id);
