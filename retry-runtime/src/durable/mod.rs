//! Durable calls: calls kept in a database until they succeed or are given up, so they
//! survive a crash or a restart of the program that made them. Needs the `sqlite` feature;
//! the `postgres` feature (which enables `sqlite` too) adds PostgreSQL.
//!
//! ```
//! use retry_runtime::durable::{self, CallState, Store, Worker};
//! use retry_runtime::retry;
//! use std::time::Duration;
//!
//! #[derive(Debug, serde::Serialize, serde::Deserialize)]
//! struct Invoice { id: u64, cents: u64 }
//!
//! fn alert(r: &retry_runtime::Report<std::io::Error>) { eprintln!("gave up: {r}"); }
//!
//! #[retry(mode = "durable", max = 10, backoff = "exp", delay = "10ms", on_exhausted = alert)]
//! async fn push_invoice(invoice: Invoice) -> std::io::Result<u64> {
//!     // The call's ID is the natural idempotency key downstream.
//!     let key = retry_runtime::current_cid().expect("inside the call");
//!     let _ = key;
//!     Ok(invoice.id)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), durable::StoreError> {
//! # let dir = tempfile::tempdir().unwrap();
//! # let url = format!("sqlite:{}", dir.path().join("calls.db").display());
//! let store = Store::open(&url).await?;           // "sqlite:calls.db": created or opened
//! durable::set_default_store(store.clone());      // durable calls of this process go here
//! let worker = Worker::builder(store.clone()).concurrency(16).start();
//!
//! let cid = push_invoice(Invoice { id: 7, cents: 1200 }).await?; // committed, not yet run
//! # for _ in 0..500 {
//! #     if store.get(cid).await?.is_some_and(|r| r.state.is_finished()) { break; }
//! #     tokio::time::sleep(Duration::from_millis(10)).await;
//! # }
//! let rec = store.get(cid).await?.expect("stored");
//! assert_eq!(rec.state, CallState::Succeeded);
//! worker.shutdown(Duration::from_secs(5)).await;  // stops claiming, waits, releases leases
//! # Ok(())
//! # }
//! ```
//!
//! - The function's arguments are stored as a JSON object keyed by their names, readable in
//!   the store; they must implement serde's `Serialize` and `DeserializeOwned`.
//! - Every durable function registers itself under its stable name (`module::function`, or
//!   the attribute's `name`) when the program starts. A worker runs only the functions its
//!   program registered, so a stored call can never name arbitrary code, and calls of
//!   functions a worker does not know are left alone (a rolling deployment is safe).
//!   **Renaming a function orphans its stored calls** unless `name = "..."` pins the old
//!   name; [`orphans`] counts them.
//! - Stored arguments that no longer decode (the signature changed) make the call a dead
//!   letter with that reason; nothing is dropped silently.
//! - The hooks (`on_retry`, `on_exhausted`, `on_done`) run in the worker; `fallback` is
//!   refused, since no caller waits for its value.
//!
//! # Typed calls: in your own transaction, now or later
//!
//! Beside each durable function the attribute writes a *companion* of the same name (a type,
//! so it coexists with the function): `push_invoice::call(args)` takes the function's
//! arguments and returns a [`DurableCall`], checked by the compiler (a misspelt name or an
//! argument of the wrong type does not compile), with its ID already chosen. Schedule it with
//! `.at(time)` or `.after(delay)` (stored as the call's `next_due_at`: no worker claims it
//! before), then store it:
//!
//! | method | where | workers learn of it |
//! |---|---|---|
//! | `.enqueue()`, `.enqueue_blocking()` | the default store | at once (and `NOTIFY` on PostgreSQL) |
//! | `.enqueue_on(&store)` | that store | the same |
//! | `.enqueue_in(&tx)` | a `tokio_postgres::Transaction` of yours | `NOTIFY`, sent when you commit |
//! | `.enqueue_in_sqlx(&mut *tx)` | a `sqlx` PostgreSQL transaction (feature `sqlx`) | `NOTIFY`, sent when you commit |
//! | `.enqueue_in_sqlite(&tx)` | a `rusqlite` transaction or connection on the store's own file | at their next poll, or at once after [`Store::wake_workers`] |
//!
//! In a transaction, the call is stored if and only if you commit: the row that asks for it
//! and the call cannot disagree (the outbox pattern). The untyped forms, taking
//! [`NewCall`]s, are `PostgresBackend::enqueue_in`, `PostgresBackend::enqueue_in_sqlx` and
//! [`SqliteBackend::enqueue_in`].
//!
//! ```
//! use retry_runtime::durable::{CallState, DurableFn, Store, StoreError};
//! use retry_runtime::retry;
//! use std::time::Duration;
//!
//! #[derive(serde::Serialize, serde::Deserialize)]
//! struct Invoice { id: u64, cents: u64 }
//!
//! #[retry(mode = "durable", max = 10, backoff = "exp", delay = "1s")]
//! async fn push_invoice(invoice: Invoice) -> Result<(), std::io::Error> {
//!     let _ = invoice;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! # let path = dir.path().join("app.db");
//! // The program's data and its calls in one SQLite file.
//! let store = Store::open(&format!("sqlite:{}", path.display())).await?;
//! let mut db = rusqlite::Connection::open(&path)?;
//! db.busy_timeout(Duration::from_secs(5))?;
//! db.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, call TEXT)")?;
//!
//! let tx = db.transaction()?;
//! let push = push_invoice::call(Invoice { id: 7, cents: 1200 }).after(Duration::from_secs(60));
//! tx.execute("INSERT INTO invoices VALUES (7, ?1)", [push.cid().to_string()])?;
//! let cid = push.enqueue_in_sqlite(&tx)?;
//! tx.commit()?; // the invoice and its push, or neither
//!
//! let rec = store.get(cid).await?.expect("committed");
//! assert_eq!((rec.function.as_str(), rec.state), (push_invoice::NAME, CallState::Pending));
//! // With PostgreSQL: `push_invoice::call(invoice).enqueue_in(&tx).await?`.
//! # Ok(())
//! # }
//! ```
//!
//! # A durable call
//!
//! Enqueuing stores a [`NewCall`]: the function's registered name, its arguments as JSON
//! text, a [`CorrelationId`](crate::CorrelationId) and when it is due. A worker *claims* due
//! calls of the functions it knows, taking a *lease* (a time until which the call is its
//! own) and a *fencing token*; it runs an attempt, renews the lease while the attempt runs,
//! and reports the outcome with the token:
//!
//! | state | meaning | leaves by |
//! |---|---|---|
//! | `pending` | enqueued, not yet attempted | claim (not while its function is paused), cancel |
//! | `running` | claimed; a worker holds the lease | complete, reschedule, bury, release, cancel (counts the interrupted attempt), lease expiry + claim |
//! | `waiting` | an attempt failed; another is due at `next_due_at` | claim (not while its function is paused), cancel |
//! | `succeeded` | done | purge |
//! | `dead` | given up (policy exhausted, or arguments that no longer decode) | requeue, purge |
//! | `cancelled` | cancelled | requeue, purge |
//!
//! Cancelling a running call stops its attempt: an async attempt is dropped at its next
//! `.await`; a sync one cannot be stopped from outside (its thread cannot be killed), so it is
//! abandoned and [`is_cancelled`](crate::is_cancelled) turns true inside it for a body that
//! checks. The worker learns of a cancel through its own [`Store`] (or a clone) at once, of
//! one from another process (`retry-store cancel`) within a second. The record keeps the
//! attempt that was interrupted: `attempts` counts it, since it started and may have done
//! part of its work; a requeue resets the count, as for a dead call.
//!
//! # Pausing a function
//!
//! [`Store::pause`] (also `retry-store pause` and the console's overview) pauses a function
//! across every worker of the store: the function goes in the store's table of paused
//! functions, and every claim skips its calls in SQL (`function NOT IN (SELECT function FROM
//! paused_functions)`), so each worker, in any process, obeys at its next claim. A pause does
//! not change any call's state: its calls stay `pending` or `waiting` (new ones are still
//! enqueued), attempts already running finish and are recorded, and a call whose lease
//! expires while paused stays `running` until it is resumed and re-claimed.
//! [`Store::resume`] removes it: this process's workers claim at once, other processes'
//! within a second (an idle worker whose function is paused looks at least once a second,
//! whatever its poll interval). [`Store::paused`] lists the paused functions, with when and by
//! whom.
//!
//! # Attempt time limits
//!
//! A durable attempt whose function has no `timeout` gets the worker's default limit,
//! [`DEFAULT_ATTEMPT_TIMEOUT`] (15 minutes; [`WorkerBuilder::attempt_timeout`] changes it or
//! turns it off), so a hung call cannot hold a slot and renew its lease forever: it ends as
//! `attempt timed out` and its policy decides what follows. A function's own `timeout`
//! always wins. A sync attempt that runs into the limit is abandoned as above.
//!
//! A worker keeps every free slot busy while calls are due, even when the other slots hold
//! attempts that never end; it stops an attempt strictly before the lease it holds runs out
//! (a tenth of the lease early, measured from when the last successful renewal was sent) when
//! the store could not renew it. Calls due for over a minute under names no worker of the
//! program registered are logged at WARN, once per name.
//!
//! # At least once
//!
//! A worker that dies mid-attempt cannot report; when its lease expires another worker claims
//! the call and runs it again. So a durable call runs **at least once**, and an attempt may run
//! after an earlier one whose outcome was lost. Make durable functions idempotent, with the
//! call's ID as the idempotency key (for instance as the key of the payment request, or in a
//! unique column of the row the function inserts). The fencing token guarantees only that the
//! store records one outcome per claim: a worker whose lease expired and was re-claimed, or
//! whose call was cancelled, gets `false` back and changes nothing.
//!
//! # URLs
//!
//! | URL | store |
//! |---|---|
//! | `sqlite:PATH` | the SQLite file at `PATH`, created if missing, `synchronous = FULL` |
//! | `sqlite://RELATIVE/PATH`, `sqlite:///ABSOLUTE/PATH` | the same, in the common URL forms: after `sqlite://` comes the path as written, so a third `/` starts an absolute one |
//! | `sqlite:PATH?synchronous=normal` | the same, `normal` or `off`: faster commits, which a power loss may undo |
//! | `sqlite::memory:` | a private in-memory store, gone with its last handle |
//! | `postgres://USER[:PASSWORD]@HOST[:PORT]/DATABASE` | a PostgreSQL database shared by many workers (needs retry-runtime's `postgres` cargo feature; also `postgresql://`, and every parameter `tokio-postgres` reads, e.g. `?options=-csearch_path%3Dretry`) |
//! | `postgres://...?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem` | TLS with rustls: `sslmode=disable`, `prefer` (the default: encrypted if the server offers it, certificate not checked), `require` (encrypted, certificate **not** checked), `verify-ca` (signed by the `sslrootcert` PEM file), `verify-full` (and names the host); see the `PostgresBackend` docs |
//! | `postgres://...?pool_max_size=N` | at most `N` pooled connections (default 16) |
//!
//! A new SQLite store is created readable and writable by its owner alone (mode `0600` on
//! Unix, whatever the umask), and so are its `-wal` and `-shm` files: stored arguments are
//! often personal data or tokens. An existing file keeps its mode. The directory must exist;
//! the store does not create it.
//!
//! No message, event or `Debug` form prints a PostgreSQL password, in any form the client
//! accepts (in the user info, even with an unencoded `/`, `?` or `@`, or as a `password`
//! parameter, even percent-encoded): what could be part of one shows as `***`.
//!
//! # PostgreSQL
//!
//! For workers in many processes or on many machines. Three tables, `retry_schema` (the schema
//! versions applied), `retry_calls` (one row per call, finished ones included, times as
//! BIGINT Unix milliseconds) and `retry_paused` (the paused functions, migration 2), created in one transaction under `pg_advisory_xact_lock` by the
//! first program that opens the store; a database with a newer schema version is refused.
//! Workers claim with `FOR UPDATE SKIP LOCKED` (never waiting on each other) through a
//! partial index of the unfinished calls, with the same fencing as SQLite. Enqueuing sends
//! `NOTIFY retry_calls` with the function's name; `PostgresBackend::listen` wakes a worker on
//! it (it needs a session-mode connection: behind `PgBouncer` in transaction mode workers only
//! poll), and `PostgresBackend::enqueue_in` enqueues inside the caller's own transaction. The
//! schema, and more, in the docs of `PostgresBackend`.
//!
//! # The SQLite schema
//!
//! One table, `calls`, one row per call, times as Unix milliseconds; the file is marked with
//! `PRAGMA application_id = 0x52545259` and `PRAGMA user_version` = the schema version (4),
//! so another program's database is never mistaken for a store, and a store written by a newer
//! version is refused rather than damaged. The schema, with a comment on every column:
//!
//! ```sql
#![doc = include_str!("schema.sql")]
//! ```
//!
//! Each later migration adds a file; an older store is migrated in place, in one
//! transaction, when a program or `retry-store` opens it. Migration 2 adds an index:
//!
//! ```sql
#![doc = include_str!("schema_2_state_updated.sql")]
//! ```
//!
//! Migration 3 adds the table of paused functions (see *Pausing a function*):
//!
//! ```sql
#![doc = include_str!("schema_3_paused.sql")]
//! ```
//!
//! Migration 4 adds the attempt history, the audit, the workers' heartbeats, results,
//! uniqueness keys, trace context and limits:
//!
//! ```sql
#![doc = include_str!("schema_4_history_api.sql")]
//! ```
//!
//! # Example
//!
//! A worker's round trip, with explicit times through [`Store::backend`]:
//!
//! ```
//! use retry_runtime::durable::{CallState, NewCall, Store};
//! use std::time::{Duration, UNIX_EPOCH};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite::memory:").await?;
//! let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
//! let call = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
//! store.backend().enqueue(vec![call.clone()], now).await?;
//!
//! let functions = ["mail::send".to_string()];
//! let lease = Duration::from_secs(30);
//! let claims = store.backend().claim("worker-1", &functions, 10, lease, now).await?;
//! assert_eq!(claims.len(), 1);
//! let claim = &claims[0];
//! assert!(store.backend().complete(call.cid, claim.fence, 1, now, now).await?);
//! assert_eq!(store.get(call.cid).await?.unwrap().state, CallState::Succeeded);
//! # Ok(())
//! # }
//! ```

pub(crate) mod args;
pub(crate) mod browse;
#[doc(hidden)]
pub mod conformance;
pub(crate) mod enqueue;
mod millis;
mod open;
mod outbox;
#[cfg(feature = "postgres")]
mod postgres;
mod record;
mod redact;
pub(crate) mod registry;
mod rows;
mod sqlite;
#[cfg(feature = "sqlx")]
mod sqlx;
mod statements;
mod store;
mod typed;
mod worker;

pub use crate::run::durable::{Job, Verdict};
pub use browse::{CallFilter, CallPage, CallQuery, CallSort, Cursor, MinuteCount, QueueLag};
pub use enqueue::{default_store, set_default_store, Outcome, OutcomeFor};
pub use open::StoreUrl;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresBackend, NOTIFY_CHANNEL, POLL_ALL};
pub use record::{
    format_time, CallRecord, CallState, Claim, ListFilter, NewCall, ParseStateError,
    PausedFunction, Progress, Stats, StatsRow, Tried,
};
pub use registry::{clashing, orphans, registered};
pub use sqlite::{SqliteBackend, Synchronous};
pub use store::{Backend, BoxFuture, Store, StoreError, WakeUps};
pub use typed::{DurableCall, DurableFn, Schedule};
pub use worker::{Worker, WorkerBuilder, DEFAULT_ATTEMPT_TIMEOUT};
