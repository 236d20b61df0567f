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
-- Partial: only pending and waiting calls have a due time (claims and outcomes set it NULL,
-- and write no entry here); the lists by due time ask for `next_due_at IS NOT NULL`.
CREATE INDEX retry_calls_state_due ON retry_calls (state, next_due_at)
    WHERE next_due_at IS NOT NULL;

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
-- `unique_for`: how long (milliseconds) the key still holds after the call succeeded; NULL:
-- it is freed when the call finishes. `unique_until`: when a succeeded call's key stops
-- holding (Unix milliseconds); NULL while the call is unfinished. An enqueue of the same key
-- frees a key whose time is over, then inserts (see `durable/unique.rs`).
ALTER TABLE retry_calls ADD COLUMN unique_for BIGINT;
ALTER TABLE retry_calls ADD COLUMN unique_until BIGINT;
-- A call that finishes frees its key, or (succeeded, with `unique_for`) keeps it until
-- `unique_until`. Written as a trigger so every statement that finishes a call does it.
CREATE FUNCTION retry_unique_finished() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.state = 'succeeded' AND NEW.unique_for IS NOT NULL THEN
        NEW.unique_until := NEW.updated_at + NEW.unique_for;
    ELSE
        NEW.unique_key := NULL;
        NEW.unique_until := NULL;
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER retry_calls_unique_finished BEFORE UPDATE OF state ON retry_calls
    FOR EACH ROW
    WHEN (NEW.unique_key IS NOT NULL AND NEW.unique_until IS NULL
        AND NEW.state IN ('succeeded', 'dead', 'cancelled'))
    EXECUTE FUNCTION retry_unique_finished();

-- == Enqueue from SQL: retry_enqueue ==

-- A new correlation ID, as `CorrelationId::new` mints it: 48 bits of Unix milliseconds then
-- 80 random bits (from two random UUIDs, skipping their version and variant bits), printed
-- as 26 characters of Crockford base32.
CREATE FUNCTION retry_new_cid(at_ms BIGINT) RETURNS TEXT LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    alphabet CONSTANT TEXT := '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
    a BYTEA := uuid_send(gen_random_uuid());
    b BYTEA := uuid_send(gen_random_uuid());
    bits BIT(130);
    out TEXT := '';
BEGIN
    bits := B'00' || ('x' || lpad(to_hex(at_ms & x'FFFFFFFFFFFF'::BIGINT), 12, '0')
        || encode(substring(a FROM 1 FOR 6), 'hex')
        || encode(substring(b FROM 11 FOR 4), 'hex'))::BIT(128);
    FOR i IN 0..25 LOOP
        out := out || substr(alphabet, substring(bits FROM 5 * i + 1 FOR 5)::INTEGER + 1, 1);
    END LOOP;
    RETURN out;
END $$;

-- Stores a call of `function` with `args` (a JSON object keyed by parameter names, as the
-- attribute stores them) in the caller's transaction, as `Store::enqueue` does: `pending`,
-- due at `run_at`, after `delay`, or at once; with `unique_key` (and `unique_for`) as
-- `Store::enqueue_unique`. Returns the call's ID (an equal unfinished call's, for a key that
-- is taken) and wakes the workers with `NOTIFY retry_calls, '<function>'` at commit.
CREATE FUNCTION retry_enqueue(
    function TEXT,
    args JSONB DEFAULT '{}',
    run_at TIMESTAMPTZ DEFAULT NULL,
    delay INTERVAL DEFAULT NULL,
    unique_key TEXT DEFAULT NULL,
    unique_for INTERVAL DEFAULT NULL,
    parent TEXT DEFAULT NULL
) RETURNS TEXT LANGUAGE plpgsql VOLATILE AS $$
#variable_conflict use_column
DECLARE
    now_ms BIGINT := floor(extract(epoch FROM clock_timestamp()) * 1000);
    due_ms BIGINT;
    for_ms BIGINT;
    new_cid TEXT;
    found_cid TEXT;
BEGIN
    IF retry_enqueue.function IS NULL OR retry_enqueue.function = '' THEN
        RAISE EXCEPTION 'retry_enqueue: `function` must be the registered name of a durable function'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retry_enqueue.args IS NULL OR jsonb_typeof(retry_enqueue.args) <> 'object' THEN
        RAISE EXCEPTION 'retry_enqueue: the arguments of % must be a JSON object keyed by parameter name, like ''{"id": 42}''; got %',
            retry_enqueue.function, coalesce(jsonb_typeof(retry_enqueue.args), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF run_at IS NOT NULL AND delay IS NOT NULL THEN
        RAISE EXCEPTION 'retry_enqueue: give `run_at` or `delay`, not both'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF retry_enqueue.unique_for IS NOT NULL AND retry_enqueue.unique_key IS NULL THEN
        RAISE EXCEPTION 'retry_enqueue: `unique_for` needs a `unique_key`'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    due_ms := CASE
        WHEN run_at IS NOT NULL THEN floor(extract(epoch FROM run_at) * 1000)
        WHEN delay IS NOT NULL THEN now_ms + floor(extract(epoch FROM delay) * 1000)
        ELSE now_ms END;
    for_ms := floor(extract(epoch FROM retry_enqueue.unique_for) * 1000);
    new_cid := retry_new_cid(now_ms);
    -- As `durable/unique.rs`: free a key whose time is over, insert unless the key is taken,
    -- else read who holds it (again if that call let go of it in between).
    FOR round IN 1..5 LOOP
        IF retry_enqueue.unique_key IS NOT NULL THEN
            UPDATE retry_calls SET unique_key = NULL, unique_until = NULL
            WHERE function = retry_enqueue.function AND unique_key = retry_enqueue.unique_key
                AND unique_until <= now_ms;
        END IF;
        INSERT INTO retry_calls (cid, parent, function, args, state, attempts, created_at,
            next_due_at, fence, last_wait_ns, updated_at, unique_key, unique_for)
        VALUES (new_cid, retry_enqueue.parent, retry_enqueue.function, retry_enqueue.args::TEXT,
            'pending', 0, now_ms, due_ms, 0, 0, now_ms, retry_enqueue.unique_key, for_ms)
        ON CONFLICT (function, unique_key) WHERE unique_key IS NOT NULL DO NOTHING
        RETURNING cid INTO found_cid;
        IF found_cid IS NOT NULL THEN
            PERFORM pg_notify('retry_calls', retry_enqueue.function);
            RETURN found_cid;
        END IF;
        SELECT cid INTO found_cid FROM retry_calls
        WHERE function = retry_enqueue.function AND unique_key = retry_enqueue.unique_key;
        IF found_cid IS NOT NULL THEN
            RETURN found_cid;
        END IF;
    END LOOP;
    RAISE EXCEPTION 'retry_enqueue: the unique key % of % kept changing hands; try again',
        retry_enqueue.unique_key, retry_enqueue.function;
END $$;

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
-- `NOTIFY retry_finished, '<cid>'` in the transaction that finishes it, while a session
-- listens for it; waiters `LISTEN`. Each store's `LISTEN` connection for waiters lists its
-- session in `retry_listeners` (and removes the rows of sessions gone); with no row, no
-- notification is sent: a `NOTIFY` makes its transaction's commit take a lock of the whole
-- database, held until the commit is on disk, so that every finishing transaction would
-- otherwise wait for the previous one's flush. Unlogged: after a crash it is empty, and the
-- listeners, which lost their connections too, list themselves again.
CREATE UNLOGGED TABLE retry_listeners (
    pid   INTEGER PRIMARY KEY,  -- the listening session's `pg_backend_pid()`
    since BIGINT NOT NULL       -- Unix milliseconds
);
CREATE OR REPLACE FUNCTION retry_notify_finished() RETURNS trigger LANGUAGE plpgsql
SET search_path FROM CURRENT AS $$
BEGIN
    IF EXISTS (SELECT 1 FROM retry_listeners) THEN
        PERFORM pg_notify('retry_finished', NEW.cid);
    END IF;
    RETURN NULL;
END
$$;
CREATE TRIGGER retry_calls_finished AFTER UPDATE OF state ON retry_calls FOR EACH ROW
    WHEN (NEW.state IN ('succeeded', 'dead', 'cancelled') AND OLD.state <> NEW.state)
    EXECUTE PROCEDURE retry_notify_finished();
