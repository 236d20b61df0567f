-- Migration 3 -> 4 of the SQLite store: what the console keeps (the attempts of each call, the
-- operators' actions, the workers' heartbeats) and what the durable API keeps (results,
-- uniqueness, the enqueuer's trace context, limits across workers). Older stores gain it in
-- place when opened; every new column is NULL for the calls already stored.

-- == The console: attempt history, audit, workers ==

-- The latest attempts of every call (the store keeps the last 20 of a call and deletes older
-- ones when it writes one), written with the attempt's outcome, so a call's page shows when
-- each attempt ran, where, for how long and how it ended. Purged with its call.
CREATE TABLE call_attempts (
    cid        TEXT NOT NULL,     -- the call
    attempt    INTEGER NOT NULL,  -- 1 for the call's first attempt
    started_at INTEGER NOT NULL,  -- the attempt's start, Unix milliseconds
    ended_at   INTEGER NOT NULL,  -- when its outcome was recorded
    worker     TEXT,              -- the worker that ran it (NULL: the caller, before storing)
    outcome    TEXT NOT NULL,     -- 'succeeded', 'failed' (will retry), 'dead' or 'cancelled'
    error      TEXT,              -- the attempt's error, redacted as `last_error` is
    PRIMARY KEY (cid, attempt)
) WITHOUT ROWID;

-- Every operator action (console, `retry-store`, `Store` methods given an actor): who, when,
-- what, on what, how many calls it changed.
CREATE TABLE audit (
    id     INTEGER PRIMARY KEY AUTOINCREMENT,
    at     INTEGER NOT NULL,  -- Unix milliseconds
    actor  TEXT NOT NULL,     -- who (the console's user, `retry-store` and the OS user, ...)
    action TEXT NOT NULL,     -- 'requeue', 'cancel', 'purge', 'pause', 'resume', ...
    target TEXT NOT NULL,     -- a cid, a function, or the filter of a bulk action
    count  INTEGER NOT NULL   -- how many calls (or functions) it changed
);

-- The workers of the store, from the heartbeats they write while they run. A worker whose
-- heartbeat is older than a few intervals is gone; its calls come back when their leases end.
CREATE TABLE workers (
    id           TEXT PRIMARY KEY,     -- the worker's ID, as in `calls.worker`
    host         TEXT NOT NULL,        -- host name
    pid          INTEGER NOT NULL,     -- process ID
    started_at   INTEGER NOT NULL,     -- Unix milliseconds
    heartbeat_at INTEGER NOT NULL,     -- the latest heartbeat
    running      INTEGER NOT NULL DEFAULT 0, -- calls it was running at that heartbeat
    stopped_at   INTEGER,              -- set by a worker that shut down cleanly
    heartbeat_ms INTEGER NOT NULL DEFAULT 5000 -- its heartbeat interval: gone after 3 missed
) WITHOUT ROWID;

-- The correlation tree: the calls a call started.
CREATE INDEX calls_parent ON calls (parent) WHERE parent IS NOT NULL;

-- == The durable API: results, uniqueness, trace context, limits ==

-- succeeded: the function's `Ok` value as JSON text (NULL before, and for `()`).
ALTER TABLE calls ADD COLUMN result TEXT;
-- The enqueuer's W3C trace context: `traceparent`, then `tracestate` after a newline if any.
ALTER TABLE calls ADD COLUMN trace_context TEXT;
-- While the call holds its uniqueness key: what makes two calls of its function the same.
-- Set NULL when the call leaves the states it is unique among, which frees the key.
ALTER TABLE calls ADD COLUMN unique_key TEXT;
CREATE UNIQUE INDEX calls_unique ON calls (function, unique_key) WHERE unique_key IS NOT NULL;
-- `unique_for`: how long (milliseconds) the key still holds after the call succeeded; NULL:
-- it is freed when the call finishes. `unique_until`: when a succeeded call's key stops
-- holding (Unix milliseconds); NULL while the call is unfinished. An enqueue of the same key
-- frees a key whose time is over, then inserts (see `durable/unique.rs`).
ALTER TABLE calls ADD COLUMN unique_for INTEGER;
ALTER TABLE calls ADD COLUMN unique_until INTEGER;
-- A call that finishes frees its key, or (succeeded, with `unique_for`) keeps it until
-- `unique_until`. Written as a trigger so every statement that finishes a call does it.
-- The states are compared one by one: SQLite evaluates an `IN` list of more than two values
-- with a temporary b-tree, built again at each run of the trigger.
CREATE TRIGGER calls_unique_finished AFTER UPDATE OF state ON calls
WHEN NEW.unique_key IS NOT NULL AND NEW.unique_until IS NULL
    AND (NEW.state = 'succeeded' OR NEW.state = 'dead' OR NEW.state = 'cancelled')
BEGIN
    UPDATE calls SET
        unique_key = CASE WHEN NEW.state = 'succeeded' AND NEW.unique_for IS NOT NULL
            THEN NEW.unique_key END,
        unique_until = CASE WHEN NEW.state = 'succeeded' AND NEW.unique_for IS NOT NULL
            THEN NEW.updated_at + NEW.unique_for END
    WHERE cid = NEW.cid;
END;

-- `max_running`: the most attempts of a function that may run at once across every worker of
-- the store; the claim reads it. Two sources: the function's attribute, written by every
-- worker that runs it when it starts (NULL: the attribute has none), and an operator's limit
-- (`retry-store limit`, `Store::set_limit`), which wins over the attribute's until cleared.
-- A row with both NULL limits nothing.
CREATE TABLE function_limits (
    function     TEXT PRIMARY KEY,                      -- registered name
    max_running  INTEGER CHECK (max_running > 0),       -- the attribute's `max_running`
    operator_max INTEGER CHECK (operator_max > 0),      -- an operator's limit, which wins
    set_at       INTEGER NOT NULL                       -- Unix milliseconds, the last change
) WITHOUT ROWID;
