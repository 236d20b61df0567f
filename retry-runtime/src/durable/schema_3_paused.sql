-- Migration 2 -> 3 of the SQLite store: the functions an operator paused (`retry-store pause`,
-- the console, `Store::pause`). The claim skips the calls of a function listed here
-- (`function NOT IN (SELECT function FROM paused_functions)`), so every worker of the store
-- stops taking them at its next claim; resuming deletes the row.
CREATE TABLE paused_functions (
    function  TEXT PRIMARY KEY,  -- registered name of the paused function
    paused_at INTEGER NOT NULL,  -- Unix milliseconds
    paused_by TEXT NOT NULL      -- who paused it (an operator's name, `retry-store`, ...)
) WITHOUT ROWID;
