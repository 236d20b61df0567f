-- Migration 2 -> 3 of the PostgreSQL store (`SCHEMA_VERSION` 3 in postgres.rs): what the
-- console keeps (the attempts of each call, the operators' actions, the workers' heartbeats)
-- and what the durable API keeps (results, uniqueness, the enqueuer's trace context, limits
-- across workers). Every new column is NULL for the calls already stored.

-- == The console: attempt history, audit, workers ==

-- The latest attempts of every call (the store keeps the last 20 of a call and deletes older
-- ones when it writes one). Purged with its call.
CREATE TABLE retry_attempts (
    cid        TEXT NOT NULL,     -- the call
    attempt    INTEGER NOT NULL,  -- 1 for the call's first attempt
    started_at BIGINT NOT NULL,   -- the attempt's start, Unix milliseconds
    ended_at   BIGINT NOT NULL,   -- when its outcome was recorded
    worker     TEXT,              -- the worker that ran it (NULL: the caller, before storing)
    outcome    TEXT NOT NULL,     -- 'succeeded', 'failed' (will retry), 'dead' or 'cancelled'
    error      TEXT,              -- the attempt's error, redacted as `last_error` is
    PRIMARY KEY (cid, attempt)
);

-- Every operator action: who, when, what, on what, how many calls it changed.
CREATE TABLE retry_audit (
    id     BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,  -- Unix milliseconds
    actor  TEXT NOT NULL,    -- who (the console's user, `retry-store` and the OS user, ...)
    action TEXT NOT NULL,    -- 'requeue', 'cancel', 'purge', 'pause', 'resume', ...
    target TEXT NOT NULL,    -- a cid, a function, or the filter of a bulk action
    count  BIGINT NOT NULL   -- how many calls (or functions) it changed
);

-- The workers of the store, from the heartbeats they write while they run.
CREATE TABLE retry_workers (
    id           TEXT PRIMARY KEY,   -- the worker's ID, as in `retry_calls.worker`
    host         TEXT NOT NULL,
    pid          INTEGER NOT NULL,
    started_at   BIGINT NOT NULL,
    heartbeat_at BIGINT NOT NULL,    -- the latest heartbeat
    running      INTEGER NOT NULL DEFAULT 0, -- calls it was running at that heartbeat
    stopped_at   BIGINT,             -- set by a worker that shut down cleanly
    heartbeat_ms BIGINT NOT NULL DEFAULT 5000 -- its heartbeat interval: gone after 3 missed
);

-- The correlation tree, and the console's lists of one state by due time.
CREATE INDEX retry_calls_parent ON retry_calls (parent) WHERE parent IS NOT NULL;
CREATE INDEX retry_calls_state_due ON retry_calls (state, next_due_at);

-- == The durable API: results, uniqueness, trace context, limits ==

-- succeeded: the function's `Ok` value as JSON text (NULL before, and for `()`).
ALTER TABLE retry_calls ADD COLUMN result TEXT;
-- The enqueuer's W3C trace context: `traceparent`, then `tracestate` after a newline if any.
ALTER TABLE retry_calls ADD COLUMN trace_context TEXT;
-- While the call holds its uniqueness key: what makes two calls of its function the same.
-- Set NULL when the call leaves the states it is unique among, which frees the key.
ALTER TABLE retry_calls ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX retry_calls_unique ON retry_calls (function, unique_key)
    WHERE unique_key IS NOT NULL;

-- `max_running`: the most attempts of a function that may run at once across every worker.
-- `max_running` is the attribute's, written by the workers that run the function when they
-- start (NULL: none); `operator_max` an operator's (`retry-store limit`), which wins until
-- cleared. A row with both NULL limits nothing. Claims of a limited function lock its row.
CREATE TABLE retry_limits (
    function     TEXT PRIMARY KEY,
    max_running  INTEGER CHECK (max_running > 0),
    operator_max INTEGER CHECK (operator_max > 0),
    set_at       BIGINT NOT NULL
);

-- `Store::wait`: a call that finishes (succeeded, dead or cancelled), whoever writes it, sends
-- `NOTIFY retry_finished, '<cid>'` in the transaction that finishes it; waiters `LISTEN`.
CREATE OR REPLACE FUNCTION retry_notify_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('retry_finished', NEW.cid);
    RETURN NULL;
END
$$;
CREATE TRIGGER retry_calls_finished AFTER UPDATE OF state ON retry_calls FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'dead', 'cancelled') AND OLD.state <> NEW.state)
    EXECUTE PROCEDURE retry_notify_finished();
