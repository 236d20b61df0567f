-- The durable store of #[retry] calls, schema version 1 (`SCHEMA_VERSION` in sqlite.rs).
--
-- The file is marked as ours with `PRAGMA application_id = 0x52545259` ("RTRY") and carries
-- its schema version in `PRAGMA user_version`. Migrations only go forward; a store with a
-- newer user_version than the code knows is refused, never changed.
--
-- Times are INTEGER Unix milliseconds (UTC). In the sqlite3 shell:
--   SELECT cid, function, state, attempts,
--          datetime(next_due_at / 1000, 'unixepoch') AS due
--   FROM calls WHERE state IN ('pending', 'waiting') ORDER BY next_due_at;

CREATE TABLE calls (
    cid              TEXT PRIMARY KEY NOT NULL, -- correlation ID, 26 chars of Crockford base32
    parent           TEXT,                      -- the enqueuing call's ID, if any
    function         TEXT NOT NULL,             -- registered name of the function to run
    args             TEXT NOT NULL,             -- arguments as JSON text
    state            TEXT NOT NULL              -- see the CHECK; finished: the last three
        CHECK (state IN ('pending', 'running', 'waiting', 'succeeded', 'dead', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0, -- attempts made, as reported by workers
    created_at       INTEGER NOT NULL,          -- enqueued at
    started_at       INTEGER,                   -- the call's start, for its time budget
    first_attempt_at INTEGER,                   -- start of the first attempt
    last_attempt_at  INTEGER,                   -- start of the latest attempt
    next_due_at      INTEGER,                   -- pending/waiting: when it may be claimed
    last_error       TEXT,                      -- error of the latest failed attempt
    dead_reason      TEXT,                      -- dead: why it was given up
    worker           TEXT,                      -- running: the worker holding the lease
    lease_until      INTEGER,                   -- running: lease expiry; then any worker may claim it
    fence            INTEGER NOT NULL DEFAULT 0, -- fencing token, raised by claim/release/cancel
    last_wait_ns     INTEGER NOT NULL DEFAULT 0, -- the engine's latest wait, nanoseconds
    updated_at       INTEGER NOT NULL           -- last change (lease renewals aside)
);

-- The claim: due pending/waiting calls by due time, expired leases by expiry.
CREATE INDEX calls_due ON calls (state, next_due_at);
CREATE INDEX calls_lease ON calls (state, lease_until);
-- Per-function claims, stats and operator filters.
CREATE INDEX calls_function ON calls (function, state);
