-- Migration 1 -> 2 of the PostgreSQL store (`SCHEMA_VERSION` 2 in postgres.rs): the functions
-- an operator paused (`retry-store pause`, the console, `Store::pause`). The claim skips the
-- calls of a function listed here
-- (`function NOT IN (SELECT function FROM retry_paused)`), so every worker of the store stops
-- taking them at its next claim; resuming deletes the row.
CREATE TABLE retry_paused (
    function  TEXT PRIMARY KEY,  -- registered name of the paused function
    paused_at BIGINT NOT NULL,   -- Unix milliseconds
    paused_by TEXT NOT NULL      -- who paused it (an operator's name, `retry-store`, ...)
);
