-- Import errors (Airflow's import_error table): the latest failed parse of each
-- submitted DAG file (DagFileImportFailed), removed when the file parses again
-- (DagFileImported). The id is assigned in projection order.
CREATE TABLE import_errors (
    import_error_id  bigserial PRIMARY KEY,
    filename         text NOT NULL UNIQUE,
    timestamp        timestamptz NOT NULL,
    message          text NOT NULL,
    kind             text NOT NULL,
    lineno           integer,
    stack_trace      text NOT NULL,
    submitted_by     text
);
