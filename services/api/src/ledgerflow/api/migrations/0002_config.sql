-- Variables and connections, projected from the config topic (ADR 0006). Secret columns
-- hold Fernet ciphertext exactly as it is in the events; the API decrypts to answer.
-- Like every projection table, both are rebuilt from Kafka by `projector --rebuild`.

CREATE TABLE variables (
    key           text PRIMARY KEY,
    val           text NOT NULL,                 -- Fernet ciphertext of the value
    is_encrypted  boolean NOT NULL DEFAULT true,
    description   text,
    is_secret     boolean NOT NULL DEFAULT false,
    updated_at    timestamptz NOT NULL,          -- the event's time
    updated_by    text
);

CREATE TABLE connections (
    conn_id       text PRIMARY KEY,
    conn_type     text NOT NULL,
    description   text,
    host          text,
    conn_schema   text,                          -- Airflow's "schema"
    login         text,
    password      text,                          -- Fernet ciphertext, or NULL
    port          integer,
    extra         text,                          -- Fernet ciphertext of the JSON, or NULL
    updated_at    timestamptz NOT NULL,
    updated_by    text
);
