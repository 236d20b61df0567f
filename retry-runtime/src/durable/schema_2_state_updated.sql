-- Migration 1 -> 2 of the SQLite store: the index PostgreSQL has had from the start
-- (`retry_calls_state_updated`), with the function so that it covers the console's counts per
-- minute (`durable/browse.rs`) without reading the table. It also serves `purge` (state and
-- last change) and the console's pages of one state by last change.
CREATE INDEX calls_state_updated ON calls (state, updated_at, function);
