-- The durable store of #[retry] calls on PostgreSQL, schema version 1 (`SCHEMA_VERSION` in
-- postgres.rs). This file is migration 1; a later version adds a file, never edits this one.
--
-- Two tables, created in the first schema of the connection's `search_path` (`public` unless
-- the URL says otherwise, e.g. `?options=-csearch_path%3Dretry`). Every migration runs in one
-- transaction under `pg_advisory_xact_lock`, so many workers may start at once; a database
-- whose `retry_schema` holds a newer version than the code knows is refused, never changed.
--
-- Times are BIGINT Unix milliseconds (UTC), as in the SQLite store: the worker passes its own
-- clock, never the server's. In psql:
--   SELECT cid, function, state, attempts, to_timestamp(next_due_at / 1000.0) AS due
--   FROM retry_calls WHERE state IN ('pending', 'waiting') ORDER BY next_due_at;

-- One row per migration applied; the store's version is the highest.
CREATE TABLE retry_schema (
    version    INTEGER PRIMARY KEY,
    applied_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One row per call, from enqueue until it is purged. Finished calls (succeeded, dead letters,
-- cancelled) stay in the same table, so `get`, `list` and `stats` see them; the claim only
-- reads the partial index `retry_calls_claimable`, which holds unfinished calls alone.
CREATE TABLE retry_calls (
    cid              TEXT PRIMARY KEY,           -- correlation ID, 26 chars of Crockford base32
    parent           TEXT,                       -- the enqueuing call's ID, if any
    function         TEXT NOT NULL,              -- registered name of the function to run
    args             TEXT NOT NULL,              -- arguments as JSON text, kept byte for byte
    state            TEXT NOT NULL               -- finished: the last three
        CHECK (state IN ('pending', 'running', 'waiting', 'succeeded', 'dead', 'cancelled')),
    attempts         INTEGER NOT NULL DEFAULT 0, -- attempts made, as reported by workers
    created_at       BIGINT NOT NULL,            -- enqueued at
    started_at       BIGINT,                     -- the call's start, for its time budget
    first_attempt_at BIGINT,                     -- start of the first attempt
    last_attempt_at  BIGINT,                     -- start of the latest attempt
    next_due_at      BIGINT,                     -- pending/waiting: when it may be claimed
    last_error       TEXT,                       -- error of the latest failed attempt
    dead_reason      TEXT,                       -- dead: why it was given up
    worker           TEXT,                       -- running: the worker holding the lease
    lease_until      BIGINT,                     -- running: lease expiry; then any worker may claim it
    fence            BIGINT NOT NULL DEFAULT 0,  -- fencing token, raised by claim/release/cancel
    last_wait_ns     BIGINT NOT NULL DEFAULT 0,  -- the engine's latest wait, nanoseconds
    updated_at       BIGINT NOT NULL,            -- last change (lease renewals aside)
    -- When any worker may claim the call: the due time of a pending or waiting call, the lease
    -- expiry of a running one, NULL once finished. Maintained by PostgreSQL.
    claimable_at     BIGINT GENERATED ALWAYS AS (
        CASE WHEN state = 'running' THEN lease_until
             WHEN state IN ('pending', 'waiting') THEN next_due_at END
    ) STORED
);

-- The claim and the worker's timer: unfinished calls only, earliest first.
CREATE INDEX retry_calls_claimable ON retry_calls (claimable_at, function)
    WHERE state IN ('pending', 'waiting', 'running');
-- A worker's release at shutdown.
CREATE INDEX retry_calls_worker ON retry_calls (worker) WHERE state = 'running';
-- Operators: list and purge by state and age, stats and filters by function.
CREATE INDEX retry_calls_state_updated ON retry_calls (state, updated_at);
CREATE INDEX retry_calls_function ON retry_calls (function, state);
