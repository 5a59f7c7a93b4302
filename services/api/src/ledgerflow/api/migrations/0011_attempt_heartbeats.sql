-- The last heartbeat of each attempt (ADR 0010). A TaskAttemptHeartbeat from the executor
-- that started the attempt moves it forward; heartbeats are not kept in ``events``
-- (one per running attempt per interval would outgrow every other fact).
ALTER TABLE task_attempts ADD COLUMN IF NOT EXISTS last_heartbeat_at timestamptz;
