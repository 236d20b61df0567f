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
//! | `pending` | enqueued, not yet attempted | claim (not while its function is paused, nor beyond its `max_running`), cancel |
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
//! # Results and waiting
//!
//! A succeeded call keeps its function's `Ok` value as its result ([`CallRecord::result`]),
//! JSON in the store, written in the same statement as the success and purged with the call,
//! when the type implements serde's `Serialize`. Requiring it would break durable functions
//! whose `Ok` type is not serializable, so the expansion picks, by autoref as it does for the
//! arguments, a keeper that serializes when it can and stores `NULL` when it cannot (`()`
//! stores `NULL` too).
//!
//! [`Store::wait`] waits for a call by its ID, in this process or any other, and returns how
//! it ended ([`Finished`]); [`Store::wait_for`] decodes the result as the function's `Ok`
//! type, or says why there is none ([`WaitError`]). A waiter is woken by the store, not by a
//! polling loop: at once by an outcome written through this process's [`Store`] (the
//! workers'), on PostgreSQL by `NOTIFY retry_finished` from whichever process writes it (a
//! trigger of the schema; one `LISTEN` connection per store serves all its waiters, and a
//! waiter re-reads its call every 10 s in case a connection was lost). SQLite has no
//! notifications between processes: there, a call another process finishes is seen by a slow
//! poll, every 500 ms.
//!
//! ```
//! use retry_runtime::durable::{self, Finished, Store, Worker};
//! use retry_runtime::retry;
//! use std::time::Duration;
//!
//! #[retry(mode = "durable", max = 3)]
//! async fn label(order: u64) -> Result<String, std::io::Error> {
//!     Ok(format!("order #{order}"))
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite::memory:").await?;
//! durable::set_default_store(store.clone());
//! let worker = Worker::builder(store.clone()).start();
//!
//! let cid = label(42).await?;
//! let text: String = store.wait_for(cid).await?;
//! assert_eq!(text, "order #42");
//! assert_eq!(store.get(cid).await?.unwrap().result.as_deref(), Some(r#""order #42""#));
//!
//! assert!(matches!(store.wait(cid).await?, Finished::Succeeded { attempts: 1, .. }));
//! worker.shutdown(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
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
//! # Limits across workers
//!
//! `max_running = N` on a durable function: at most `N` of its attempts run at once across
//! every worker of the store, in every process (a downstream API's quota, or a database's
//! connection limit, does not care how many workers there are). The limit lives in the store
//! and the claim enforces it: a claim takes no more calls of the function than `N` minus its
//! calls running now (state `running` under a lease that has not run out). Other functions'
//! calls are claimed beside it as before.
//!
//! ```
//! use retry_runtime::durable::{self, Store, Worker};
//! use retry_runtime::retry;
//! use std::time::Duration;
//!
//! /// The payment provider allows 4 requests at once per account.
//! #[retry(mode = "durable", max_running = 4, max = 10, delay = "1s")]
//! async fn charge(invoice: u64) -> std::io::Result<()> {
//!     let _ = invoice;
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), durable::StoreError> {
//! let store = Store::open("sqlite::memory:").await?;
//! durable::set_default_store(store.clone());
//! // However many workers run, and however many slots each has: at most 4 `charge` at once.
//! let worker = Worker::builder(store.clone()).concurrency(64).start();
//! for invoice in 0..10 {
//!     charge(invoice).await?;
//! }
//! # for _ in 0..500 {
//! #     if store.stats().await?.count_state(durable::CallState::Succeeded) == 10 { break; }
//! #     tokio::time::sleep(Duration::from_millis(10)).await;
//! # }
//! let limits = store.limits().await?; // written by the worker at its start
//! assert_eq!(limits[0].effective(), Some(4));
//! worker.shutdown(Duration::from_secs(5)).await;
//! # Ok(())
//! # }
//! ```
//!
//! - Every worker writes the limits of the functions it runs to the store when it starts,
//!   before its first claim; when workers of different builds disagree, the last one started
//!   wins. A function that drops the key loses its limit at the next worker start.
//! - An operator's limit, [`Store::set_limit`] or `retry-store limit FUNCTION N|none`, **wins
//!   over the attribute's** until it is cleared (`None`, `none`), whatever workers start
//!   meanwhile; cleared, the attribute's applies again (to lift a limit entirely, set a large
//!   one). [`Store::limits`] (and `retry-store limit`) lists both. A limit of 0 is refused:
//!   pause the function instead.
//! - SQLite serialises claims in its single writer (across processes too, each claim being a
//!   write transaction), so counting and claiming there is safe. On PostgreSQL, claims of
//!   limited functions run in a transaction that first locks their rows of `retry_limits`
//!   (`SELECT ... FOR UPDATE`), then counts and claims in a second statement, whose snapshot
//!   sees every claim committed before the lock was granted; two workers never both see room
//!   for the last slot. Unlimited functions keep the one-statement claim that skips locked rows
//!   and waits for no one. A limit set from another process is obeyed at once, and a
//!   PostgreSQL worker claims under it within a second.
//! - A worker that is waiting for room looks again when one of its own attempts ends, or
//!   after its poll interval (a slot freed by another worker is seen then).
//! - The limit counts leases: a worker that lost the store keeps its attempt running until
//!   just before its lease would end (see below), so the count can only be exceeded by an
//!   attempt that outlived its lease, as at-least-once delivery allows anyway.
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
//! # Unique calls
//!
//! A durable function can say what makes two of its calls the same; calling it while an equal
//! call is unfinished (pending, waiting or running) stores nothing and returns the ID of the
//! call already stored (River's and Oban's unique jobs):
//!
//! | attribute | the key |
//! |---|---|
//! | `unique = "args"` | every argument |
//! | `unique = id`, `unique = (id, region)` | the arguments named (a name that is not an argument is a compile error on it) |
//! | `unique_key = format!("{region}/{id}")` | any expression of the arguments whose value is `Display` |
//! | `unique_for = "1h"` (with one of the above) | also an equal call that **succeeded** less than this ago |
//!
//! A dead or cancelled call frees its key at once (so the work can be asked for again), and a
//! requeued call does not take it back. Arguments are compared as JSON with sorted object
//! keys (a `HashMap`'s order does not matter); a key longer than 128 bytes is stored as its
//! SHA-256. `unique` needs `persist = "always"`.
//!
//! ```
//! use retry_runtime::durable::{self, Store};
//! use retry_runtime::retry;
//!
//! #[retry(mode = "durable", unique = (invoice), unique_for = "10m")]
//! async fn send_invoice(invoice: u64, copy_to: Vec<String>) -> std::io::Result<()> {
//!     let _ = (invoice, copy_to);
//!     Ok(())
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), durable::StoreError> {
//! durable::set_default_store(Store::open("sqlite::memory:").await?);
//! let first = send_invoice(7, vec![]).await?;
//! let again = send_invoice(7, vec!["boss@example.com".into()]).await?; // a double click
//! assert_eq!(first, again);
//! assert_ne!(send_invoice(8, vec![]).await?, first);
//! # Ok(())
//! # }
//! ```
//!
//! The store enforces it, not a look-up before the insert: a unique index on `(function,
//! unique_key)` holds the keys of the calls that hold one, and the enqueue is `INSERT ... ON
//! CONFLICT DO NOTHING`, then a read of the holder. Of many enqueuers of one key at once,
//! in one process or many, exactly one stores its call and all get its ID. Without the
//! attribute: [`NewCall::unique`] with a [`Unique`], and [`Store::enqueue_unique`], which
//! says whether it stored the call ([`Enqueued`]).
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
//! # Traces across processes
//!
//! A durable call is one operation that crosses processes and time. With the cargo feature
//! `opentelemetry`, enqueuing stores the W3C trace context of the current span with the call
//! (`traceparent`, then `tracestate` after a newline, in the `trace_context` column and
//! [`CallRecord::trace_context`]), taken from the `tracing` span through
//! `tracing-opentelemetry` (or from the current OpenTelemetry context when no `tracing` span
//! is recorded), and the worker makes each attempt's span a child of it: an attempt that runs
//! an hour later on another machine appears in the trace of the request that enqueued it.
//! Calls built by hand get it from `NewCall::traced`. Without a recorded trace, or without
//! the feature, nothing is stored and attempts start traces of their own; a stored context
//! that does not parse is ignored, never an error. Every attempt span also has the call's
//! `cid`, its `attempt` number and, for a call started inside another, that call's ID as
//! `parent` (the stored [`CallRecord::parent`]).
//!
#![cfg_attr(
    feature = "opentelemetry",
    doc = include_str!("trace_context_example.md")
)]
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
//! ## Enqueuing from SQL: `retry_enqueue`
//!
//! The schema installs a SQL function, `retry_enqueue` (graphile-worker's `add_job` is the
//! model), so any client enqueues a durable call in its own transaction: psql, a trigger,
//! another language's driver. It stores the row the Rust enqueue stores, returns the call's
//! ID (a [`CorrelationId`](crate::CorrelationId) minted as the runtime mints one) and wakes
//! the workers the same way (`NOTIFY retry_calls, '<function>'`, sent at commit):
//!
//! ```sql
//! retry_enqueue(
//!     function   text,                      -- the registered name: `module::function` or `name = "..."`
//!     args       jsonb DEFAULT '{}',        -- a JSON object keyed by parameter name, else an error
//!     run_at     timestamptz DEFAULT NULL,  -- due at this time ...
//!     delay      interval DEFAULT NULL,     -- ... or after this delay (not both); else at once
//!     unique_key text DEFAULT NULL,         -- as `unique_key = ...`: an equal unfinished call's ID is returned
//!     unique_for interval DEFAULT NULL,     -- as `unique_for = ...`
//!     parent     text DEFAULT NULL          -- the enqueuing call's ID, if any
//! ) RETURNS text                            -- the call's ID
//! ```
//!
//! ```sql
//! BEGIN;
//! INSERT INTO orders (id, total) VALUES (42, 1200);
//! SELECT retry_enqueue('billing::send_invoice', '{"invoice": 42, "copy_to": []}');
//! SELECT retry_enqueue('mail::remind', jsonb_build_object('order', 42), delay => '3 days');
//! COMMIT;  -- both calls become visible, and the workers wake, only now
//! ```
//!
//! The arguments are those the attribute stores: one entry per parameter, as serde writes it.
//! A call whose arguments do not decode becomes a dead letter that says why, as any other.
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
pub(crate) mod audit;
pub(crate) mod browse;
#[doc(hidden)]
pub mod conformance;
pub(crate) mod enqueue;
mod group_commit;
pub(crate) mod heartbeats;
pub(crate) mod history;
pub(crate) mod kept;
pub(crate) mod limits;
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
pub(crate) mod trace_context;
mod typed;
pub(crate) mod unique;
mod wait;
mod worker;

pub use crate::run::durable::{Job, Verdict};
pub use audit::{AuditEntry, AuditRecord};
pub use browse::{CallFilter, CallPage, CallQuery, CallSort, Cursor, MinuteCount, QueueLag};
pub use enqueue::{default_store, set_default_store, Outcome, OutcomeFor};
pub use heartbeats::{
    NewWorker, WorkerRecord, WorkerStatus, DEFAULT_HEARTBEAT, GONE_AFTER_MISSED, WORKER_ROWS_KEPT,
};
pub use history::{AttemptOutcome, AttemptRecord, ATTEMPTS_KEPT};
pub use limits::FunctionLimit;
pub use open::StoreUrl;
#[cfg(feature = "postgres")]
pub use postgres::{PostgresBackend, FINISHED_CHANNEL, NOTIFY_CHANNEL, POLL_ALL};
pub use record::{
    format_time, CallRecord, CallState, Claim, ListFilter, NewCall, ParseStateError,
    PausedFunction, Progress, Stats, StatsRow, Tried,
};
pub use registry::{clashing, orphans, registered};
pub use sqlite::{SqliteBackend, Synchronous};
pub use store::{Backend, BoxFuture, Finishes, Store, StoreError, WakeUps};
pub use typed::{DurableCall, DurableFn, Schedule};
pub use unique::{Enqueued, Unique};
pub use wait::{Finished, WaitError};
pub use worker::{Worker, WorkerBuilder, DEFAULT_ATTEMPT_TIMEOUT};
