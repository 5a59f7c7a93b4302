-- Read-your-writes (`wait_for=<position>`): a position on the commands topic waits for
-- the command's first consequence, so the command at a position must be found without
-- scanning the raw event store. Commands are few, hence a partial index.
CREATE INDEX events_command_position_idx ON events (topic, kafka_partition, kafka_offset)
    WHERE topic LIKE '%.commands';
