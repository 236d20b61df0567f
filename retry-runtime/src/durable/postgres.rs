//! The PostgreSQL backend: a pool of connections shared by every operation, the claim as one
//! `UPDATE` over `FOR UPDATE SKIP LOCKED`, `NOTIFY` on enqueue, and a `LISTEN` connection of
//! its own for workers that want to be woken.
//!
//! Many workers in many processes share one database: claims never wait on each other (a row
//! another worker is claiming is skipped), every write about a claimed call checks its fencing
//! token in the same statement, and the schema is created and migrated under an advisory lock.

use std::collections::HashSet;
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, SystemTime};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::mpsc;
use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{AsyncMessage, Client, Config, Row, Transaction};
use tokio_postgres_rustls::MakeRustlsConnect;

#[path = "postgres_tls.rs"]
mod tls;

#[path = "postgres_finished.rs"]
mod finished;
pub use finished::FINISHED_CHANNEL;

use super::browse;
use super::group_commit::spawn_committers;
use super::heartbeats;
use super::history::{self, HistoryRunner};
use super::limits::{self, FunctionLimit, Known, LimitRunner};
use super::millis::{from_millis, later, saturating_i32, saturating_i64, to_millis};
use super::record::{CallRecord, Claim, NewCall, PausedFunction, StatsRow};
use super::redact::{quotes_a_secret, redact};
use super::rows;
use super::statements::{self, Dialect, Param, Runner, Statement, COLUMNS};
use super::store::{check_new_calls, Backend, BoxFuture, StoreError};
use crate::{Backoff, CorrelationId, Jitter, Policy};

/// The schema version this build writes: the number of migrations.
pub(crate) const SCHEMA_VERSION: u32 = 3;

/// The migrations, in order: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    include_str!("postgres_schema.sql"),
    include_str!("postgres_schema_2_paused.sql"),
    include_str!("postgres_schema_3_history_api.sql"),
];

/// The first key of the advisory lock migrations take ("RTRY"); the second is the hash of the
/// schema the tables go in, so stores in different schemas migrate independently.
const MIGRATION_LOCK: i32 = 0x5254_5259;

/// The channel [`Backend::enqueue`] notifies, with the function's name as the payload.
pub const NOTIFY_CHANNEL: &str = "retry_calls";

/// What [`PostgresBackend::listen`] sends after every (re)connection, since notifications sent
/// while it was not listening are lost: poll every function now. A function name is never empty.
pub const POLL_ALL: &str = "";

/// How many connections the pool opens at most, unless the URL sets `pool_max_size`.
const POOL_SIZE: usize = 16;

/// How long opening a connection may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Wake-ups a listener buffers before it drops more (the worker polls everything anyway).
const LISTEN_BUFFER: usize = 64;

/// The listener's reconnections: forever, 100 ms doubling to 10 s, equal jitter (between half
/// of each wait and the whole).
const RECONNECT: Policy = Policy::new()
    .max_retries(None)
    .backoff(Backoff::Exponential { factor: 2.0 })
    .delay(Duration::from_millis(100))
    .max_delay(Some(Duration::from_secs(10)))
    .jitter(Jitter::Equal);

/// The calls are inserted in one statement; IDs already stored are skipped and reported back
/// by their absence from `RETURNING`, so a duplicate is found without parsing error messages.
pub(crate) const INSERT: &str =
    "INSERT INTO retry_calls (cid, parent, function, args, state, attempts, \
    created_at, next_due_at, fence, last_wait_ns, updated_at, started_at, first_attempt_at, \
    last_attempt_at, last_error, trace_context) \
    SELECT n.cid, n.parent, n.function, n.args, \
      CASE WHEN n.attempts > 0 THEN 'waiting' ELSE 'pending' END, n.attempts, $6, n.due, 0, \
      n.last_wait_ns, $6, n.started_at, n.tried_at, n.tried_at, n.last_error, n.trace_context \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $7::int[], \
      $8::bigint[], $9::bigint[], $10::bigint[], $11::text[], $12::text[]) \
      AS n(cid, parent, function, args, due, attempts, last_wait_ns, started_at, tried_at, \
        last_error, trace_context) \
    ON CONFLICT (cid) DO NOTHING RETURNING cid";

/// Wakes the workers of the calls' functions when the transaction commits (`$1` the channel,
/// `$2` the functions' names, each once); a rolled-back transaction or savepoint discards it.
pub(crate) const NOTIFY: &str = "SELECT pg_notify($1, f) FROM unnest($2::text[]) AS f";

/// The claim: lock up to `$4` claimable calls nobody else is claiming (earliest first), then
/// lease them to the worker with a raised fence, in one statement. Functions with a limit of
/// running attempts are left out: `limits::PG_CLAIM` claims them, under a lock.
///
/// Ordered by `claimable_at` alone, the order of the index `retry_calls_claimable`: the scan
/// stops after `$4` rows. (Ordered by `claimable_at, cid`, which no index holds, every claim
/// read and sorted all the due calls: 25 ms per claim with 20,000 due.) Calls due in the same
/// millisecond are taken in no particular order, as their IDs' random bits already made it.
const CLAIM: &str = "WITH picked AS MATERIALIZED ( \
      SELECT cid FROM retry_calls \
      WHERE state IN ('pending', 'waiting', 'running') AND claimable_at <= $3 \
        AND function = ANY($5) \
        AND function NOT IN (SELECT function FROM retry_paused) \
        AND function NOT IN (SELECT function FROM retry_limits \
          WHERE COALESCE(operator_max, max_running) IS NOT NULL) \
      ORDER BY claimable_at LIMIT $4 FOR UPDATE SKIP LOCKED) \
    UPDATE retry_calls SET state = 'running', worker = $1, lease_until = $2, fence = fence + 1, \
      next_due_at = NULL, updated_at = $3 \
    WHERE cid IN (SELECT cid FROM picked) \
    RETURNING ";

/// A durable store in a PostgreSQL database, shared by any number of workers. Usually reached
/// through [`Store::open`](super::Store::open) with a `postgres://` or `postgresql://` URL
/// (any URL `tokio-postgres` accepts, e.g. `postgres://app:secret@db.internal:5432/jobs`).
///
/// # Connections
///
/// Operations take a connection from a pool (`deadpool-postgres`, at most 16, or
/// `pool_max_size=N` in the URL). A connection the server or the network dropped fails the
/// operation using it with [`StoreError::Backend`] (the caller retries, as with any store
/// error); a connection on which an operation failed so is closed, never handed out again, and
/// the next operation gets a live or a new one. Unix sockets work too
/// (`postgres://app@%2Frun%2Fpostgresql/jobs`).
///
/// The backend runs its connections on a small tokio runtime of its own (one thread), and
/// every operation is handed to it: so a store opened in one runtime can be used from another,
/// from a sync function with no runtime at all (a durable call blocks its thread until the
/// call is committed), or from a runtime's blocking thread.
///
/// # TLS
///
/// With rustls (no system OpenSSL), chosen by libpq's parameters in the URL:
///
/// | `sslmode=`         | encrypted                | the server's certificate         |
/// |--------------------|--------------------------|----------------------------------|
/// | `disable`          | no                       | -                                |
/// | `prefer` (default) | if the server offers TLS | not checked                      |
/// | `require`          | yes                      | **not checked**: encrypts, but a machine in the middle is not detected |
/// | `verify-ca`        | yes                      | signed by `sslrootcert`          |
/// | `verify-full`      | yes                      | signed by `sslrootcert`, and names the URL's host |
///
/// `sslrootcert=PATH` is a PEM file of the certificate authorities to trust (needed by
/// `verify-ca` and `verify-full`; there is no default). For a managed database, use
/// `verify-full` with the provider's CA bundle:
/// `postgres://app:secret@db.example.com/jobs?sslmode=verify-full&sslrootcert=/etc/ssl/db-ca.pem`.
/// A certificate that does not match fails the open with [`StoreError::Backend`], naming the
/// TLS failure (`invalid peer certificate: ...`). Client certificates are not supported.
///
/// # Waking workers
///
/// [`enqueue`](Backend::enqueue) sends `NOTIFY retry_calls, '<function>'` once per transaction
/// and function (sent by PostgreSQL when the transaction commits).
/// [`listen`](PostgresBackend::listen) opens a connection of its own that `LISTEN`s on it.
/// `LISTEN` needs a session: connect the store directly, or through a pooler in session mode;
/// behind `PgBouncer` in transaction mode notifications never arrive, and workers only find new
/// calls when they poll (their timer on [`Backend::next_due`], and a periodic poll).
///
/// # Waking waiters
///
/// A call that finishes (succeeded, dead or cancelled), whoever writes it, sends
/// `NOTIFY retry_finished, '<cid>'` ([`FINISHED_CHANNEL`]) from the trigger of migration 3, in
/// the transaction that finishes it, while some store's waiters listen. The first
/// [`Store::wait`](super::Store::wait) on a store opens one more connection of its own that
/// `LISTEN`s on it for every waiter of the store (kept open, reconnecting as the workers'
/// listener does, until the store's last handle is dropped), and lists it in the table
/// `retry_listeners`; while that table is empty, finishing a call sends no `NOTIFY` (whose
/// commit would otherwise wait for the previous notifying commit's flush: a `NOTIFY` takes a
/// lock of the whole database until its transaction is on disk). It needs a session-mode
/// connection too.
/// # Group commit
///
/// Concurrent [`enqueue`](Backend::enqueue)s of one store share transactions: two committer
/// tasks each take the enqueues waiting (never waiting for more: a lone caller is committed
/// at once, alone) and store all their calls with one `INSERT`; each caller is answered once
/// that transaction committed. If it fails (one caller's call is a duplicate), each caller's
/// calls are stored again in a transaction of their own, so each gets the answer it would
/// have had alone. Successes reported by workers are recorded the same way.
///
/// # Enqueuing in the caller's transaction
///
/// [`PostgresBackend::enqueue_in`] stores calls in a transaction of the caller's, e.g. with
/// the order row that asks for them (the outbox pattern): they exist if and only if the caller
/// commits.
///
/// # The schema
///
/// `retry_schema` (the versions applied) and `retry_calls` (one row per call, finished ones
/// included, times as BIGINT Unix milliseconds), created in the first schema of the
/// connection's `search_path`:
///
/// ```sql
#[doc = include_str!("postgres_schema.sql")]
/// ```
///
/// Migration 2 adds `retry_paused`, the paused functions:
///
/// ```sql
#[doc = include_str!("postgres_schema_2_paused.sql")]
/// ```
///
/// Migration 3 adds the attempt history, the audit, the workers' heartbeats, results,
/// uniqueness keys, trace context and limits:
///
/// ```sql
#[doc = include_str!("postgres_schema_3_history_api.sql")]
/// ```
#[derive(Clone)]
pub struct PostgresBackend {
    /// The runtime every operation runs on.
    io: Arc<Io>,
    pool: Pool,
    config: Config,
    tls: MakeRustlsConnect,
    /// The URL without its password, for messages.
    redacted: String,
    /// Successes waiting to be recorded together (see [`reply_to_acks`]).
    acks: mpsc::UnboundedSender<Ack>,
    /// The finished calls the store's `LISTEN` on [`FINISHED_CHANNEL`] hears, once a waiter
    /// started it (see `postgres_finished.rs`).
    finished: finished::Feed,
    /// Enqueues waiting to be committed together (see [`commit_enqueues`]).
    enqueues: mpsc::UnboundedSender<Enqueue>,
    /// The transactions [`Backend::enqueue`] committed.
    enqueue_commits: Arc<AtomicU64>,
    /// Which functions have a limit of running attempts, as last read.
    limited: Arc<Known>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("url", &self.redacted)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
    }
}

/// The runtime the backend's connections live on: its own, so neither the caller's runtime
/// (or its absence) nor the end of the runtime that opened the store matters.
struct Io(Option<tokio::runtime::Runtime>);

impl Io {
    fn start() -> Result<Self, StoreError> {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("retry-postgres")
            .enable_all()
            .build()
            .map(|rt| Io(Some(rt)))
            .map_err(|e| StoreError::Io(format!("cannot start the PostgreSQL store's thread: {e}")))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.0.as_ref().expect("taken only on drop").handle()
    }

    /// Runs `operation` on this runtime; the returned future may be polled anywhere.
    fn run<T: Send + 'static>(
        &self,
        operation: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> BoxFuture<'static, Result<T, StoreError>> {
        let task = self.handle().spawn(operation);
        Box::pin(async move {
            task.await.unwrap_or_else(|e| {
                Err(StoreError::Backend(format!(
                    "a PostgreSQL store operation failed: {e}"
                )))
            })
        })
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        // Dropping a runtime blocks, which an async caller may not; this does not.
        if let Some(rt) = self.0.take() {
            rt.shutdown_background();
        }
    }
}

impl PostgresBackend {
    /// Connects to the database at `url`, checks the schema, and creates or migrates it (in one
    /// transaction under an advisory lock, so many workers may open the store at once). Without
    /// `create`, a database without the store's tables is [`StoreError::NoSchema`].
    ///
    /// # Errors
    /// [`StoreError::BadUrl`], [`StoreError::NoSchema`], [`StoreError::NotAStore`] (a
    /// `retry_calls` table that is not ours), [`StoreError::NewerSchema`],
    /// [`StoreError::Backend`] (cannot connect, or the database refused a statement).
    pub async fn open(url: &str, create: bool) -> Result<Self, StoreError> {
        let io = Arc::new(Io::start()?);
        let url = url.to_owned();
        let on = Arc::clone(&io);
        io.run(async move { Self::open_on(on, &url, create).await })
            .await
    }

    async fn open_on(io: Arc<Io>, url: &str, create: bool) -> Result<Self, StoreError> {
        let redacted = redact(url);
        let (mut config, parts) = parse_url_parts(url)?;
        let tls = tls::connector(&parts, &redacted)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("retry-runtime");
        }
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                // `is_closed` only: a connection whose server went away is noticed by its
                // connection task and discarded, without a test query per operation.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(parts.pool_max_size.unwrap_or(POOL_SIZE))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("{redacted}: cannot build the pool: {e}")))?;
        let (acks, pending) = mpsc::unbounded_channel();
        let (on, named) = (pool.clone(), redacted.clone());
        spawn_committers(pending, 1, ACK_BATCH, move |batch| {
            let (pool, redacted) = (on.clone(), named.clone());
            async move { reply_to_acks(batch, &pool, &redacted).await }
        });
        let (enqueues, waiting) = mpsc::unbounded_channel();
        let enqueue_commits = Arc::new(AtomicU64::new(0));
        let (on, named, counter) = (pool.clone(), redacted.clone(), enqueue_commits.clone());
        spawn_committers(waiting, ENQUEUE_COMMITTERS, ENQUEUE_BATCH, move |batch| {
            let (pool, redacted, commits) = (on.clone(), named.clone(), counter.clone());
            async move { commit_enqueues(batch, &pool, &redacted, &commits).await }
        });
        let backend = Self {
            io,
            pool,
            config,
            tls,
            redacted,
            acks,
            finished: finished::Feed::default(),
            enqueues,
            enqueue_commits,
            limited: Arc::default(),
        };
        backend.migrate(create).await?;
        Ok(backend)
    }

    /// The URL the store was opened with, without its password.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.redacted
    }

    /// The transactions [`Backend::enqueue`] has committed (for tests of group commit: fewer
    /// than the enqueues when callers were gathered).
    #[doc(hidden)]
    #[must_use]
    pub fn enqueue_commits(&self) -> u64 {
        self.enqueue_commits.load(Ordering::Relaxed)
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.redacted, e))
    }

    /// Checks the schema and applies the missing migrations, under the migration lock.
    async fn migrate(&self, create: bool) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let result = self.migrate_on(&mut client, create).await;
        return_to_pool(client, result)
    }

    async fn migrate_on(&self, client: &mut Object, create: bool) -> Result<(), StoreError> {
        let tx = client.transaction().await.map_err(pg)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock($1, hashtext(coalesce(current_schema(), '')))",
            &[&MIGRATION_LOCK],
        )
        .await
        .map_err(pg)?;
        // A statement after the lock: it sees what an earlier holder committed.
        let row = tx
            .query_one(
                "SELECT to_regclass('retry_schema') IS NOT NULL, \
                 to_regclass('retry_calls') IS NOT NULL, current_schema()",
                &[],
            )
            .await
            .map_err(pg)?;
        let has_versions: bool = row.try_get(0).map_err(pg)?;
        let has_calls: bool = row.try_get(1).map_err(pg)?;
        let schema: Option<String> = row.try_get(2).map_err(pg)?;
        let version = if has_versions {
            let found: Option<i32> = tx
                .query_one("SELECT max(version) FROM retry_schema", &[])
                .await
                .and_then(|r| r.try_get(0))
                .map_err(pg)?;
            u32::try_from(found.unwrap_or(0)).map_err(|_| StoreError::NotAStore {
                path: self.redacted.clone(),
                reason: format!("its schema version {found:?} is not a valid version"),
            })?
        } else if has_calls {
            return Err(StoreError::NotAStore {
                path: self.redacted.clone(),
                reason: "it has a `retry_calls` table but no `retry_schema`: another \
                         program's table"
                    .into(),
            });
        } else {
            0
        };
        if version > SCHEMA_VERSION {
            return Err(StoreError::NewerSchema {
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        if version == 0 && !create {
            return Err(StoreError::NoSchema {
                url: self.redacted.clone(),
            });
        }
        if version < SCHEMA_VERSION && schema.is_none() {
            return Err(StoreError::Backend(format!(
                "{}: no schema of the search_path exists to create the store's tables in",
                self.redacted
            )));
        }
        for (done, migration) in (version..).zip(&MIGRATIONS[version as usize..]) {
            tx.batch_execute(migration).await.map_err(pg)?;
            let applied = i32::try_from(done + 1).unwrap_or(i32::MAX);
            tx.execute(
                "INSERT INTO retry_schema (version) VALUES ($1)",
                &[&applied],
            )
            .await
            .map_err(pg)?;
        }
        tx.commit().await.map_err(pg)
    }

    /// Enqueues `calls` inside the caller's transaction `tx` (the outbox pattern): they are
    /// stored, and workers notified, if and only if the caller commits. All or none: on an
    /// error the calls' changes are rolled back to a savepoint and `tx` stays usable.
    ///
    /// ```no_run
    /// use retry_runtime::durable::{NewCall, PostgresBackend};
    /// # async fn place(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// let tx = client.transaction().await?;
    /// tx.execute("INSERT INTO orders (id) VALUES (42)", &[]).await?;
    /// let mail = NewCall::new("mail::confirm", r#"{"order":42}"#);
    /// PostgresBackend::enqueue_in(&tx, &[mail], std::time::SystemTime::now()).await?;
    /// tx.commit().await?; // the order and its mail, or neither
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Backend::enqueue`]: [`StoreError::Duplicate`], [`StoreError::Invalid`], and
    /// [`StoreError::Backend`] (no store tables in the transaction's `search_path`, or a
    /// transaction that had already failed).
    pub async fn enqueue_in(
        tx: &Transaction<'_>,
        calls: &[NewCall],
        now: SystemTime,
    ) -> Result<(), StoreError> {
        check_new_calls(calls)?;
        if calls.is_empty() {
            return Ok(());
        }
        // Pipelined: the savepoint and the insert go in one round trip.
        let (savepoint, result) = tokio::join!(
            tx.batch_execute("SAVEPOINT retry_enqueue"),
            insert(tx, calls, now)
        );
        savepoint.map_err(pg)?;
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT retry_enqueue"
        } else {
            "ROLLBACK TO SAVEPOINT retry_enqueue; RELEASE SAVEPOINT retry_enqueue"
        };
        tx.batch_execute(end).await.map_err(pg)?;
        result
    }

    /// [`enqueue_in`](Self::enqueue_in) for a call with a [`Unique`](super::Unique) key: stores
    /// it in the caller's transaction unless an equal call holds the key, whose ID it then
    /// returns (see [`Backend::enqueue_unique`]). A key taken by a transaction still open
    /// makes this wait for that transaction's end.
    ///
    /// ```no_run
    /// # async fn f(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
    /// use retry_runtime::durable::{NewCall, PostgresBackend, Unique};
    ///
    /// let tx = client.transaction().await?;
    /// let call = NewCall::new("mail::confirm", r#"{"order":42}"#).unique(Unique::new("42"));
    /// let cid = PostgresBackend::enqueue_unique_in(&tx, call, std::time::SystemTime::now()).await?.cid();
    /// tx.commit().await?;
    /// # let _ = cid;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`Backend::enqueue_unique`], and [`StoreError::Backend`] as [`enqueue_in`](Self::enqueue_in).
    pub async fn enqueue_unique_in(
        tx: &Transaction<'_>,
        call: NewCall,
        now: SystemTime,
    ) -> Result<super::Enqueued, StoreError> {
        super::unique::check(&call)?;
        tx.batch_execute("SAVEPOINT retry_enqueue")
            .await
            .map_err(pg)?;
        let result = super::unique::postgres(tx, &call, now).await;
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT retry_enqueue"
        } else {
            "ROLLBACK TO SAVEPOINT retry_enqueue; RELEASE SAVEPOINT retry_enqueue"
        };
        tx.batch_execute(end).await.map_err(pg)?;
        result
    }

    /// Listens for enqueued calls on a connection of its own (not from the pool): the returned
    /// channel receives the function name of every call enqueued (one per transaction and
    /// function), and [`POLL_ALL`] (`""`) after every (re)connection, to which a worker answers
    /// with a full poll, since notifications sent while it was not listening are lost. The
    /// first [`POLL_ALL`] is already in the channel when this returns.
    ///
    /// When the connection is lost, it reconnects with growing delays (100 ms doubling to 10 s,
    /// with jitter), for as long as the receiver lives; dropping the receiver closes it.
    /// Needs a session-mode connection: see [the type's docs](PostgresBackend#waking-workers).
    ///
    /// # Errors
    /// [`StoreError::Backend`] if the first connection or its `LISTEN` fails.
    pub async fn listen(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        let this = self.clone();
        self.io.run(async move { this.listen_on().await }).await
    }

    async fn listen_on(&self) -> Result<mpsc::Receiver<String>, StoreError> {
        let mut config = self.config.clone();
        // Notice a connection that died silently (no RST) within about a minute.
        config
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let first = Listening::connect(&config, &self.tls).await.map_err(|e| {
            StoreError::Backend(format!(
                "{}: cannot LISTEN: {}",
                self.redacted,
                describe(&e)
            ))
        })?;
        let (out, rx) = mpsc::channel(LISTEN_BUFFER);
        // Cannot fail: the channel is empty and its receiver alive.
        let _ = out.try_send(POLL_ALL.to_owned());
        tokio::spawn(listen_loop(
            config,
            self.tls.clone(),
            self.redacted.clone(),
            first,
            out,
        ));
        Ok(rx)
    }
}

/// A connection that `LISTEN`s on [`NOTIFY_CHANNEL`], with its notifications' payloads.
struct Listening {
    /// Kept alive (dropping the client closes the connection); the finished calls' listener
    /// lists its session with it.
    client: Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Listening {
    async fn connect(
        config: &Config,
        tls: &MakeRustlsConnect,
    ) -> Result<Self, tokio_postgres::Error> {
        Self::connect_to(config, tls, NOTIFY_CHANNEL).await
    }

    /// A connection that `LISTEN`s on `channel`.
    async fn connect_to(
        config: &Config,
        tls: &MakeRustlsConnect,
        channel: &'static str,
    ) -> Result<Self, tokio_postgres::Error> {
        let (client, mut connection) = config.connect(tls.clone()).await?;
        let (sender, payloads) = mpsc::unbounded_channel();
        // The connection task: ends when the connection does, closing `payloads`.
        tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == channel => {
                        if sender.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        client.batch_execute(&format!("LISTEN {channel}")).await?;
        Ok(Self { client, payloads })
    }
}

/// Forwards notifications to `out`, reconnecting when the connection ends, until `out`'s
/// receiver is dropped.
async fn listen_loop(
    config: Config,
    tls: MakeRustlsConnect,
    redacted: String,
    mut current: Listening,
    out: mpsc::Sender<String>,
) {
    loop {
        loop {
            tokio::select! {
                () = out.closed() => return,
                payload = current.payloads.recv() => match payload {
                    // A full channel already holds wake-ups: dropping one loses nothing.
                    Some(function) => {
                        if let Err(mpsc::error::TrySendError::Closed(_)) = out.try_send(function) {
                            return;
                        }
                    }
                    None => break,
                },
            }
        }
        tracing::warn!(store = %redacted, "the LISTEN connection to PostgreSQL was lost; reconnecting");
        let (mut retry, mut wait) = (0_u32, Duration::ZERO);
        current = loop {
            retry = retry.saturating_add(1);
            wait = RECONNECT.jittered(RECONNECT.base_delay(retry), wait);
            tokio::select! {
                () = out.closed() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match Listening::connect(&config, &tls).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(store = %redacted, error = %describe(&e), "cannot LISTEN on PostgreSQL; retrying");
                }
            }
        };
        tracing::info!(store = %redacted, "listening on PostgreSQL again");
        if out.send(POLL_ALL.to_owned()).await.is_err() {
            return;
        }
    }
}

/// Parses a `postgres://` or `postgresql://` URL: as `tokio-postgres` reads it, with libpq's
/// five `sslmode`s, `sslrootcert` and `pool_max_size` besides.
pub(crate) fn parse_url(url: &str) -> Result<Config, StoreError> {
    parse_url_parts(url).map(|(config, _)| config)
}

fn parse_url_parts(url: &str) -> Result<(Config, tls::UrlParts), StoreError> {
    let parts = tls::split_url(url)?;
    let mut config = Config::from_str(&parts.client_url).map_err(|e| {
        let why = describe(&e);
        StoreError::BadUrl {
            url: redact(url),
            reason: if quotes_a_secret(url, &why) {
                "not a PostgreSQL URL (the client's message is not shown: it quotes a part of \
                 the password)"
                    .to_owned()
            } else {
                format!("not a PostgreSQL URL: {why}")
            },
        }
    })?;
    config.ssl_mode(tls::client_mode(parts.ssl));
    Ok((config, parts))
}

/// A `tokio-postgres` error on one line, with the server's message when there is one.
fn describe(e: &tokio_postgres::Error) -> String {
    let text = if let Some(db) = e.as_db_error() {
        format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        )
    } else {
        let mut text = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    };
    text.replace('\n', " ")
}

#[allow(clippy::needless_pass_by_value)] // made for `map_err(pg)`
pub(super) fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

#[allow(clippy::needless_pass_by_value)] // made for `map_err`
fn pool_error(redacted: &str, e: PoolError) -> StoreError {
    let why = match &e {
        PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    };
    StoreError::Backend(format!("cannot connect to PostgreSQL at {redacted}: {why}"))
}

/// The calls' functions, each once, in the order they first appear: one `NOTIFY` each.
pub(crate) fn distinct_functions(calls: &[NewCall]) -> Vec<&str> {
    let mut seen = HashSet::new();
    calls
        .iter()
        .map(|c| c.function.as_str())
        .filter(|f| seen.insert(*f))
        .collect()
}

/// The error of an insert that stored fewer rows than `calls` (`stored`: the IDs it
/// returned): the first call not stored, whose ID was taken.
pub(crate) fn duplicate_of(calls: &[NewCall], stored: &HashSet<String>) -> StoreError {
    let taken = calls
        .iter()
        .find(|c| !stored.contains(&c.cid.to_string()))
        .map_or(calls[0].cid, |c| c.cid);
    StoreError::Duplicate(taken)
}

/// The parameters of [`INSERT`], in its order (`$1` to `$12`), bound by [`insert`] here and
/// by the sqlx enqueue (`sqlx.rs`).
pub(crate) struct Columns {
    pub(crate) cids: Vec<String>,
    pub(crate) parents: Vec<Option<String>>,
    pub(crate) functions: Vec<String>,
    pub(crate) args: Vec<String>,
    pub(crate) dues: Vec<i64>,
    pub(crate) now: i64,
    pub(crate) attempts: Vec<i32>,
    pub(crate) waits: Vec<i64>,
    pub(crate) started: Vec<Option<i64>>,
    pub(crate) tried_at: Vec<Option<i64>>,
    pub(crate) errors: Vec<Option<String>>,
    pub(crate) trace_contexts: Vec<Option<String>>,
}

/// How many parameters [`Columns`] binds; checked against `INSERT` by a test.
#[cfg(all(test, feature = "sqlx"))]
pub(crate) const BOUND: usize = 12;

impl Columns {
    pub(crate) fn new(calls: &[NewCall], now: SystemTime) -> Self {
        let tried = |f: &dyn Fn(&super::Tried) -> Option<i64>| -> Vec<Option<i64>> {
            calls.iter().map(|c| c.tried.as_ref().and_then(f)).collect()
        };
        Self {
            cids: calls.iter().map(|c| c.cid.to_string()).collect(),
            parents: calls
                .iter()
                .map(|c| c.parent.map(|p| p.to_string()))
                .collect(),
            functions: calls.iter().map(|c| c.function.clone()).collect(),
            args: calls.iter().map(|c| c.args.clone()).collect(),
            dues: calls
                .iter()
                .map(|c| to_millis(c.due.unwrap_or(now)))
                .collect(),
            now: to_millis(now),
            attempts: calls
                .iter()
                .map(|c| {
                    c.tried.as_ref().map_or(0, |t| {
                        i32::try_from(t.progress.attempts).unwrap_or(i32::MAX)
                    })
                })
                .collect(),
            waits: tried(&|t| i64::try_from(t.progress.last_wait_ns).ok())
                .into_iter()
                .map(|w| w.unwrap_or(0))
                .collect(),
            started: tried(&|t| t.progress.started_at.map(to_millis)),
            tried_at: tried(&|t| Some(to_millis(t.progress.attempt_started))),
            errors: calls
                .iter()
                .map(|c| c.tried.as_ref().map(|t| t.error.clone()))
                .collect(),
            trace_contexts: calls.iter().map(|c| c.trace_context.clone()).collect(),
        }
    }
}

impl Columns {
    /// The `INSERT`'s parameters with their types, for `query_typed` (one round trip).
    fn typed(&self) -> [(&(dyn ToSql + Sync), Type); 12] {
        [
            (&self.cids, Type::TEXT_ARRAY),
            (&self.parents, Type::TEXT_ARRAY),
            (&self.functions, Type::TEXT_ARRAY),
            (&self.args, Type::TEXT_ARRAY),
            (&self.dues, Type::INT8_ARRAY),
            (&self.now, Type::INT8),
            (&self.attempts, Type::INT4_ARRAY),
            (&self.waits, Type::INT8_ARRAY),
            (&self.started, Type::INT8_ARRAY),
            (&self.tried_at, Type::INT8_ARRAY),
            (&self.errors, Type::TEXT_ARRAY),
            (&self.trace_contexts, Type::TEXT_ARRAY),
        ]
    }
}

/// Inserts checked calls and notifies once per function; the caller rolls back on an error
/// (which discards the notification too).
async fn insert(
    tx: &Transaction<'_>,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), StoreError> {
    let c = Columns::new(calls, now);
    // Typed parameters: one round trip, where a statement prepared on the caller's
    // transaction (which has no statement cache) would take two. The notification is sent in
    // the same round trip (pipelined): if the insert fails, the caller's rollback discards it.
    let distinct = distinct_functions(calls);
    let insert = c.typed();
    let notify: [(&(dyn ToSql + Sync), Type); 2] =
        [(&NOTIFY_CHANNEL, Type::TEXT), (&distinct, Type::TEXT_ARRAY)];
    let (rows, notified) = tokio::join!(
        tx.query_typed(INSERT, &insert),
        tx.query_typed(NOTIFY, &notify)
    );
    let rows = rows.map_err(pg)?;
    notified.map_err(pg)?;
    if rows.len() < calls.len() {
        let stored: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(pg)?;
        return Err(duplicate_of(calls, &stored));
    }
    // The callers' own failed attempts, as the first of their calls' history.
    for call in calls {
        if let Some(t) = &call.tried {
            let attempt = history::tried(call.cid, t, now);
            tx.execute(
                attempt.text(Dialect::Postgres),
                &postgres_params(&attempt.params),
            )
            .await
            .map_err(pg)?;
        }
    }
    Ok(())
}

impl PostgresBackend {
    /// Runs a statement on a pooled connection (prepared once per connection); returns the
    /// number of rows it changed.
    async fn execute_now(&self, statement: Statement) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let result = async {
            let prepared = client
                .prepare_cached(statement.text(Dialect::Postgres))
                .await
                .map_err(pg)?;
            client
                .execute(&prepared, &postgres_params(&statement.params))
                .await
                .map_err(pg)
        }
        .await;
        return_to_pool(client, result)
    }

    /// Runs a query of one shared statement, decoding each row with `decode`.
    async fn decoded<T>(
        &self,
        statement: Statement,
        decode: fn(&Row) -> Result<T, StoreError>,
    ) -> Result<Vec<T>, StoreError> {
        let found = self
            .query(
                statement.text(Dialect::Postgres),
                &postgres_params(&statement.params),
            )
            .await?;
        found.iter().map(decode).collect()
    }

    /// Runs a query on a pooled connection (prepared once per connection).
    async fn query(
        &self,
        text: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let result = async {
            let prepared = client.prepare_cached(text).await.map_err(pg)?;
            client.query(&prepared, params).await.map_err(pg)
        }
        .await;
        return_to_pool(client, result)
    }
}

impl Runner for PostgresBackend {
    fn execute(&self, statement: Statement) -> BoxFuture<'_, Result<u64, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.execute_now(statement).await })
    }

    fn records(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<CallRecord>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, rows::record).await })
    }

    fn counts(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<StatsRow>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, rows::stats_row).await })
    }

    fn paused_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<PausedFunction>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, rows::paused).await })
    }
}

impl HistoryRunner for PostgresBackend {
    fn execute_all(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, StoreError>> {
        let this = self.clone();
        self.io.run(async move {
            let mut client = this.client().await?;
            let result = async {
                // On an error the transaction is dropped, which rolls it back: all or none.
                let tx = client.transaction().await.map_err(pg)?;
                let mut changed = Vec::with_capacity(statements.len());
                for statement in &statements {
                    let prepared = tx
                        .prepare_cached(statement.text(Dialect::Postgres))
                        .await
                        .map_err(pg)?;
                    let n = tx
                        .execute(&prepared, &postgres_params(&statement.params))
                        .await
                        .map_err(pg)?;
                    changed.push(n);
                }
                tx.commit().await.map_err(pg)?;
                Ok(changed)
            }
            .await;
            return_to_pool(client, result)
        })
    }

    fn attempt_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<history::AttemptRecord>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, history::decode).await })
    }

    fn audit_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<super::audit::AuditRecord>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, super::audit::decode).await })
    }
}

impl LimitRunner for PostgresBackend {
    fn limit_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<FunctionLimit>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, limits::limit_row).await })
    }

    fn limits_changed(&self) {
        self.limited.forget();
    }
}

impl PostgresBackend {
    /// The functions with a limit of running attempts, read again when older than
    /// [`limits::LIMITS_REFRESH`].
    async fn limited_functions(&self) -> Result<Arc<HashSet<String>>, StoreError> {
        if let Some(known) = self.limited.fresh() {
            return Ok(known);
        }
        let rows = self.query(limits::PG_LIMITED, &[]).await?;
        let names = rows
            .iter()
            .map(|r| r.try_get::<_, String>(0).map_err(pg))
            .collect::<Result<HashSet<_>, _>>()?;
        Ok(self.limited.store(names))
    }

    /// Claims calls of the limited `functions`: their limits' rows locked first, then a
    /// second statement (a snapshot taken after the lock, so it sees every claim committed
    /// before) counts what runs and claims into the room left, and the commit frees the lock.
    async fn claim_limited(
        &self,
        worker: &str,
        functions: &[String],
        limit: usize,
        lease: Duration,
        now: SystemTime,
    ) -> Result<Vec<Claim>, StoreError> {
        let mut client = self.client().await?;
        let result = async {
            let tx = client.transaction().await.map_err(pg)?;
            let lock = tx.prepare_cached(limits::PG_LOCK).await.map_err(pg)?;
            let locked = tx.query(&lock, &[&functions]).await.map_err(pg)?;
            if locked.is_empty() {
                return tx.commit().await.map_err(pg).map(|()| Vec::new());
            }
            let claim = tx
                .prepare_cached(&format!("{}{COLUMNS}", limits::PG_CLAIM))
                .await
                .map_err(pg)?;
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = tx
                .query(
                    &claim,
                    &[
                        &worker,
                        &later(now, lease),
                        &to_millis(now),
                        &limit,
                        &functions,
                    ],
                )
                .await
                .map_err(pg)?;
            tx.commit().await.map_err(pg)?;
            rows.iter()
                .map(|row| rows::record(row).map(Claim::from))
                .collect()
        }
        .await;
        return_to_pool(client, result)
    }
}

impl browse::BrowseRunner for PostgresBackend {
    fn items(
        &self,
        statement: Statement,
        shape: browse::Shape,
    ) -> BoxFuture<'_, Result<Vec<browse::Item>, StoreError>> {
        Box::pin(self.decoded(statement, browse::decoder(shape)))
    }
}

impl heartbeats::HeartbeatRunner for PostgresBackend {
    fn heartbeat_items(
        &self,
        statement: Statement,
        shape: heartbeats::Shape,
    ) -> BoxFuture<'_, Result<Vec<heartbeats::Item>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.decoded(statement, heartbeats::decoder(shape)).await })
    }

    fn execute_in_turn(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        let this = self.clone();
        self.io.run(async move {
            let mut changed = 0;
            for statement in statements {
                changed += this.execute_now(statement).await?;
            }
            Ok(changed)
        })
    }
}

/// The values of a statement, as `tokio-postgres` binds them.
fn postgres_params(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
    params.iter().map(Param::as_postgres).collect()
}

/// A caller's enqueue waiting for a transaction.
struct Enqueue {
    calls: Vec<NewCall>,
    now: SystemTime,
    reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
}

/// How many transactions of gathered enqueues may be under way at once: while one commits
/// (waiting for its fsync), the next callers gather for the other.
const ENQUEUE_COMMITTERS: usize = 2;

/// Calls' enqueues gathered into one transaction at most.
const ENQUEUE_BATCH: usize = 256;

/// Commits a batch of enqueues in one transaction (one `INSERT` of all their calls, one
/// `NOTIFY` per function), then answers each caller: a call is acknowledged only once the
/// transaction holding it committed. If the insert fails (one caller's call is a duplicate, or
/// the database refused a value), the transaction is rolled back and each caller's calls are
/// enqueued again alone, in the order they came: each gets the answer it would have had
/// without the others. A failed connection, `BEGIN` or `COMMIT` fails the whole batch, as it
/// would have failed each of them alone (after a failed `COMMIT`, whether it committed is not
/// known: it is not tried again).
async fn commit_enqueues(
    mut batch: Vec<Enqueue>,
    pool: &Pool,
    redacted: &str,
    commits: &AtomicU64,
) {
    if batch.len() == 1 {
        let Enqueue { calls, now, reply } = batch.pop().expect("one enqueue");
        let _ = reply.send(enqueue_alone(pool, redacted, &calls, now, commits).await);
        return;
    }
    // One list of every call, each due when its caller's `now` made it due; the rows' creation
    // time is the earliest caller's.
    let earliest = batch.iter().map(|e| e.now).min().expect("a batch");
    let mut all = Vec::with_capacity(batch.iter().map(|e| e.calls.len()).sum());
    let mut callers = Vec::with_capacity(batch.len());
    for Enqueue { calls, now, reply } in batch {
        let start = all.len();
        all.extend(calls.into_iter().map(|mut call| {
            call.due.get_or_insert(now);
            call
        }));
        callers.push((start..all.len(), now, reply));
    }
    // `Err((error, true))`: the insert failed, try each caller alone.
    let inserted = match pool.get().await {
        Err(e) => Err((pool_error(redacted, e), false)),
        Ok(client) => insert_committed(client, &all, earliest).await,
    };
    match inserted {
        Ok(()) => {
            commits.fetch_add(1, Ordering::Relaxed);
            for (_, _, reply) in callers {
                let _ = reply.send(Ok(()));
            }
        }
        Err((err, false)) => {
            for (_, _, reply) in callers {
                let _ = reply.send(Err(err.clone()));
            }
        }
        Err((_, true)) => {
            for (calls, now, reply) in callers {
                let alone = enqueue_alone(pool, redacted, &all[calls], now, commits).await;
                let _ = reply.send(alone);
            }
        }
    }
}

/// One caller's calls in a transaction of their own: all or none.
async fn enqueue_alone(
    pool: &Pool,
    redacted: &str,
    calls: &[NewCall],
    now: SystemTime,
    commits: &AtomicU64,
) -> Result<(), StoreError> {
    let client = pool.get().await.map_err(|e| pool_error(redacted, e))?;
    let result = if let [call] = calls {
        if call.tried.is_none() {
            insert_one_pipelined(client, calls, now).await
        } else {
            insert_committed(client, calls, now)
                .await
                .map_err(|(e, _)| e)
        }
    } else {
        insert_committed(client, calls, now)
            .await
            .map_err(|(e, _)| e)
    };
    if result.is_ok() {
        commits.fetch_add(1, Ordering::Relaxed);
    }
    result
}

/// Stores one call (without a caller's attempt) in one round trip: `BEGIN`, the insert, the
/// `NOTIFY` and `COMMIT` sent together. With a single row, all or none holds without waiting
/// for the insert's answer before committing: a duplicate ID inserts nothing (the commit then
/// only sends a wake-up that finds nothing new), and a failed insert aborts the transaction,
/// which the `COMMIT` then rolls back.
async fn insert_one_pipelined(
    client: Object,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), StoreError> {
    let c = Columns::new(calls, now);
    let distinct = distinct_functions(calls);
    let insert = c.typed();
    let notify: [(&(dyn ToSql + Sync), Type); 2] =
        [(&NOTIFY_CHANNEL, Type::TEXT), (&distinct, Type::TEXT_ARRAY)];
    let (begun, rows, notified, committed) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.query_typed(INSERT, &insert),
        client.query_typed(NOTIFY, &notify),
        client.batch_execute("COMMIT")
    );
    let result = (|| {
        begun.map_err(pg)?;
        let rows = rows.map_err(pg)?;
        notified.map_err(pg)?;
        committed.map_err(pg)?;
        if rows.is_empty() {
            return Err(duplicate_of(calls, &HashSet::new()));
        }
        Ok(())
    })();
    return_to_pool(client, result)
}

/// Inserts `calls` in a transaction of their own on `client` (all or none). `Err((error, true))`: the insert failed, and was
/// rolled back; `Err((error, false))`: the statements, `BEGIN` or `COMMIT` did. After a
/// database or connection error the connection is closed (see [`return_to_pool`]).
async fn insert_committed(
    mut client: Object,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), (StoreError, bool)> {
    let result = async {
        let tx = client.transaction().await.map_err(|e| (pg(e), false))?;
        // On an error the transaction is dropped, which rolls it back.
        insert(&tx, calls, now).await.map_err(|e| (e, true))?;
        tx.commit().await.map_err(|e| (pg(e), false))
    }
    .await;
    let (result, alone) = match result {
        Ok(()) => (Ok(()), false),
        Err((e, alone)) => (Err(e), alone),
    };
    return_to_pool(client, result).map_err(|e| (e, alone))
}

/// A success waiting to be recorded.
struct Ack {
    cid: String,
    fence: i64,
    attempts: i32,
    started: i64,
    now: i64,
    /// The function's `Ok` value as JSON, if kept.
    result: Option<String>,
    reply: tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
}

/// Successes recorded together at most.
const ACK_BATCH: usize = 256;

/// Successes are recorded as they come, all those waiting in one statement (by one committer,
/// see [`spawn_committers`]): under load, many workers' acks share a round trip and a commit
/// (the successes, their attempts and the history's trim: [`succeed_many_text`]).
/// Each is still fenced on its own: a call whose claim is no longer current is left alone and
/// its caller told so.
/// Records a batch of successes and answers each.
async fn reply_to_acks(batch: Vec<Ack>, pool: &Pool, redacted: &str) {
    match complete_many(pool, redacted, &batch).await {
        Ok(done) => {
            for a in batch {
                let recorded = done.contains(&a.cid);
                let _ = a.reply.send(Ok(recorded));
            }
        }
        Err(e) => {
            for a in batch {
                let _ = a.reply.send(Err(e.clone()));
            }
        }
    }
}

async fn complete_many(
    pool: &Pool,
    redacted: &str,
    batch: &[Ack],
) -> Result<HashSet<String>, StoreError> {
    let cids: Vec<&str> = batch.iter().map(|a| a.cid.as_str()).collect();
    let fences: Vec<i64> = batch.iter().map(|a| a.fence).collect();
    let attempts: Vec<i32> = batch.iter().map(|a| a.attempts).collect();
    let started: Vec<i64> = batch.iter().map(|a| a.started).collect();
    let nows: Vec<i64> = batch.iter().map(|a| a.now).collect();
    let results: Vec<Option<&str>> = batch.iter().map(|a| a.result.as_deref()).collect();
    let kept = i32::try_from(history::ATTEMPTS_KEPT).unwrap_or(i32::MAX);
    let client = pool.get().await.map_err(|e| pool_error(redacted, e))?;
    let result = async {
        // The successes, their attempts and the trimmed history in one statement: one round
        // trip and one commit for the whole batch.
        let statement = client
            .prepare_cached(succeed_many_text())
            .await
            .map_err(pg)?;
        let rows = client
            .query(
                &statement,
                &[&cids, &fences, &attempts, &started, &nows, &results, &kept],
            )
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(pg))
            .collect::<Result<_, _>>()
    }
    .await;
    return_to_pool(client, result)
}

/// A batch of successes as one statement (so one round trip, and one transaction): the
/// successes of [`complete_many_text`], each fenced like a single one; then an attempt in the
/// history for each call it changed (numbered after the call's latest, with the worker that
/// held the claim, read beside the fence it matched: a claim that matched still has it), and
/// the history of those calls trimmed to their latest `$7`. Returns the IDs recorded.
fn succeed_many_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let single = complete_many_text();
        let arrays = single
            .split_once(" FROM ")
            .and_then(|(_, rest)| rest.split_once(" AS each"))
            .map(|(arrays, _)| arrays)
            .expect("the batch of successes reads arrays");
        let updated = single
            .replace(
                &format!("FROM {arrays} AS each(v1, v2, v3, v4, v5, v6)"),
                &format!(
                    "FROM (SELECT e.*, o.worker AS v7 FROM {arrays} AS e(v1, v2, v3, v4, v5, v6) \
                     JOIN retry_calls o ON o.cid = e.v1) AS each"
                ),
            )
            .replace(
                " RETURNING cid",
                " RETURNING cid, each.v4 AS started, each.v5 AS ended, each.v7 AS worker",
            );
        format!(
            "WITH done AS ({updated}), \
             attempted AS (INSERT INTO retry_attempts \
               (cid, attempt, started_at, ended_at, worker, outcome, error) \
               SELECT d.cid, COALESCE((SELECT max(a.attempt) FROM retry_attempts a \
                 WHERE a.cid = d.cid), 0) + 1, d.started, d.ended, d.worker, 'succeeded', NULL \
               FROM done d ON CONFLICT (cid, attempt) DO NOTHING RETURNING cid, attempt), \
             trimmed AS (DELETE FROM retry_attempts t USING attempted n \
               WHERE t.cid = n.cid AND t.attempt <= n.attempt - $7) \
             SELECT cid FROM done"
        )
    })
}

/// Records many successes in one statement: the shared success statement
/// ([`statements::COMPLETE`]), each of its six values `$N` taken from the N-th array, so each
/// success is fenced like a single one; returns the IDs of those recorded.
fn complete_many_text() -> &'static str {
    static TEXT: OnceLock<String> = OnceLock::new();
    TEXT.get_or_init(|| {
        let single = statements::COMPLETE.text(Dialect::Postgres);
        let (set, fenced) = single
            .split_once(" WHERE ")
            .expect("the success statement has a WHERE clause");
        let each = |text: &str| {
            (1..=6).rev().fold(text.to_owned(), |t, n| {
                t.replace(&format!("${n}"), &format!("each.v{n}"))
            })
        };
        format!(
            "{} FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], \
             $6::text[]) AS each(v1, v2, v3, v4, v5, v6) WHERE {} RETURNING cid",
            each(set),
            each(fenced)
        )
    })
}

/// Hands a pooled connection back to the pool after an operation. After a database or
/// connection error it is closed instead: a connection the server dropped may not look closed
/// yet, and must not fail a second operation.
fn return_to_pool<T>(client: Object, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(StoreError::Backend(_)) = result {
        drop(Object::take(client));
    }
    result
}

impl Backend for PostgresBackend {
    fn wake_ups(&self) -> BoxFuture<'_, Result<Option<super::store::WakeUps>, StoreError>> {
        Box::pin(async move { self.listen().await.map(Some) })
    }

    fn finishes(&self) -> BoxFuture<'_, Result<Option<super::store::Finishes>, StoreError>> {
        let this = self.clone();
        self.io
            .run(async move { this.finished.subscribe(&this).await.map(Some) })
    }

    /// Enqueues go to the committers, which gather concurrent callers' calls into one
    /// transaction (see "Group commit" in [`PostgresBackend`]'s docs).
    fn enqueue(
        &self,
        calls: Vec<NewCall>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if let Err(err) = check_new_calls(&calls) {
            return Box::pin(async move { Err(err) });
        }
        if calls.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        let (reply, answer) = tokio::sync::oneshot::channel();
        let sent = self.enqueues.send(Enqueue { calls, now, reply }).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            answer.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    fn enqueue_unique(
        &self,
        call: NewCall,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<super::Enqueued, StoreError>> {
        if let Err(err) = super::unique::check(&call) {
            return Box::pin(async move { Err(err) });
        }
        let this = self.clone();
        self.io.run(async move {
            let mut client = this.client().await?;
            let result = async {
                let tx = client.transaction().await.map_err(pg)?;
                let done = super::unique::postgres(&tx, &call, now).await?;
                tx.commit().await.map_err(pg)?;
                Ok(done)
            }
            .await;
            return_to_pool(client, result)
        })
    }

    /// PostgreSQL's claim: rows other workers are claiming are skipped, not waited for.
    /// Limited functions first, in a transaction that locks their limits (claimers of the same
    /// limited function take turns), then the others in one statement.
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        functions: &'a [String],
        limit: usize,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Claim>, StoreError>> {
        if functions.is_empty() || limit == 0 {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let (this, worker, functions) = (self.clone(), worker.to_owned(), functions.to_vec());
        self.io.run(async move {
            let limited = this.limited_functions().await?;
            let mine: Vec<String> = functions
                .iter()
                .filter(|f| limited.contains(*f))
                .cloned()
                .collect();
            let mut claimed = Vec::new();
            if !mine.is_empty() {
                claimed = this
                    .claim_limited(&worker, &mine, limit, lease, now)
                    .await?;
            }
            let left = i64::try_from(limit - claimed.len()).unwrap_or(i64::MAX);
            if left == 0 || mine.len() == functions.len() {
                return Ok(claimed);
            }
            let rows = this
                .query(
                    &format!("{CLAIM}{COLUMNS}"),
                    &[
                        &worker,
                        &later(now, lease),
                        &to_millis(now),
                        &left,
                        &functions,
                    ],
                )
                .await?;
            for row in &rows {
                claimed.push(rows::record(row).map(Claim::from)?);
            }
            Ok(claimed)
        })
    }

    statements::shared_transitions!();
    browse::browse_methods!();
    heartbeats::heartbeat_methods!();
    history::history_methods!();
    limits::limit_methods!();

    /// Successes go to the batch recorder (`record_acks`); without it (its runtime ended)
    /// this one is recorded as a batch of one.
    fn complete(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.complete_with_result(cid, fence, attempts, attempt_started, None, now)
    }

    /// The result goes in the success's own statement, batched as any success.
    fn complete_with_result(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        result: Option<String>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let this = self.clone();
        self.io.run(async move {
            let ack = |reply| Ack {
                cid: cid.to_string(),
                fence: saturating_i64(fence),
                attempts: saturating_i32(attempts),
                started: to_millis(attempt_started),
                now: to_millis(now),
                result: result.clone(),
                reply,
            };
            let (reply, answer) = tokio::sync::oneshot::channel();
            if this.acks.send(ack(reply)).is_ok() {
                if let Ok(recorded) = answer.await {
                    return recorded;
                }
            }
            // The recorder is gone (its runtime ended): record this one as a batch of one.
            let (reply, answer) = tokio::sync::oneshot::channel();
            reply_to_acks(vec![ack(reply)], &this.pool, &this.redacted).await;
            answer.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// PostgreSQL's claimable time is a generated column, `claimable_at`, in the claim's index.
    fn next_due<'a>(
        &'a self,
        functions: &'a [String],
    ) -> BoxFuture<'a, Result<Option<SystemTime>, StoreError>> {
        if functions.is_empty() {
            return Box::pin(async { Ok(None) });
        }
        let (this, functions) = (self.clone(), functions.to_vec());
        self.io.run(async move {
            let rows = this
                .query(
                    &format!(
                        "SELECT min(claimable_at) FROM retry_calls \
                         WHERE state IN ('pending', 'waiting', 'running') AND function = ANY($1) \
                         AND function NOT IN (SELECT function FROM retry_paused) \
                         AND NOT (state IN ('pending', 'waiting') AND function IN ({}))",
                        limits::PG_FULL
                    ),
                    &[&functions],
                )
                .await?;
            let due: Option<i64> = rows
                .first()
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(pg)?
                .flatten();
            Ok(due.map(from_millis))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{complete_many_text, PostgresBackend, RECONNECT};
    use crate::durable::StoreUrl;
    use std::time::Duration;

    /// Every way a password reaches a URL that the client accepts, and some it refuses: no
    /// error about the URL (unparsable, or a server that does not answer), in its text or its
    /// `Debug` form, and no `Debug` of the parsed URL shows any part of the password.
    #[tokio::test]
    async fn no_error_or_debug_form_prints_a_password() {
        for url in [
            "postgres://app:PW1/PW2@127.0.0.1:1/jobs?connect_timeout=5",
            "postgres://app:PW1?PW2@127.0.0.1:1/jobs?connect_timeout=5",
            "postgres://app:PW1@PW2@127.0.0.1:1/jobs?connect_timeout=5",
            "postgres://127.0.0.1:1/jobs?user=app&pass%77ord=PW1&connect_timeout=5",
            "postgres://127.0.0.1:1/jobs?user=app&password=PW1&PW2&connect_timeout=5",
            "postgres://app:PW1/PW2@127.0.0.1:1/jobs?colour=blue",
            "postgresql://127.0.0.1:1/jobs?pass%77ord=PW1&colour=blue",
        ] {
            let mut shown = Vec::new();
            match StoreUrl::parse(url) {
                Ok(parsed) => {
                    shown.push(format!("{parsed:?}"));
                    let err = PostgresBackend::open(url, true).await.unwrap_err();
                    shown.extend([err.to_string(), format!("{err:?}")]);
                }
                Err(err) => shown.extend([err.to_string(), format!("{err:?}")]),
            }
            for text in shown {
                assert!(!text.contains("PW"), "{url}: {text}");
                assert!(text.contains("127.0.0.1"), "{url}: {text}");
            }
        }
    }

    #[test]
    fn the_listener_reconnects_after_100ms_doubling_to_10s_with_equal_jitter() {
        let ms = Duration::from_millis;
        assert_eq!(RECONNECT.base_delay(1), ms(100));
        assert_eq!(RECONNECT.base_delay(2), ms(200));
        assert_eq!(RECONNECT.base_delay(8), ms(10_000), "capped");
        assert_eq!(
            RECONNECT.max_attempts(),
            None,
            "for as long as it is listened to"
        );
        for _ in 0..100 {
            let wait = RECONNECT.jittered(ms(400), ms(200));
            assert!(wait >= ms(200) && wait <= ms(400), "{wait:?}");
        }
    }

    #[test]
    fn a_batch_of_successes_is_the_single_success_fenced_row_by_row() {
        assert_eq!(
            complete_many_text(),
            "UPDATE retry_calls SET state = 'succeeded', attempts = each.v3, \
             started_at = COALESCE(started_at, each.v4), \
             first_attempt_at = COALESCE(first_attempt_at, each.v4), \
             last_attempt_at = each.v4, worker = NULL, lease_until = NULL, next_due_at = NULL, \
             updated_at = each.v5, result = each.v6 \
             FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[], \
             $6::text[]) AS each(v1, v2, v3, v4, v5, v6) \
             WHERE cid = each.v1 AND fence = each.v2 AND state = 'running' RETURNING cid"
        );
    }
}
