//! The PostgreSQL backend: a pool of connections shared by every operation, the claim as one
//! `UPDATE` over `FOR UPDATE SKIP LOCKED`, `NOTIFY` on enqueue, and a `LISTEN` connection of
//! its own for workers that want to be woken.
//!
//! Many workers in many processes share one database: claims never wait on each other (a row
//! another worker is claiming is skipped), every write about a claimed call checks its fencing
//! token in the same statement, and the schema is created and migrated under an advisory lock.

use super::millis::{earlier, int, later, ms, time};
use std::collections::HashSet;
use std::str::FromStr;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, PoolError, RecyclingMethod, Runtime,
};
use tokio::sync::mpsc;
use tokio_postgres::{AsyncMessage, Client, Config, NoTls, Row, Transaction};

use super::record::{CallRecord, CallState, Claim, ListFilter, NewCall, Progress, Stats, StatsRow};
use super::store::{Backend, BoxFuture, StoreError};
use crate::CorrelationId;

/// The schema version this build writes: the number of migrations.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The migrations, in order: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [include_str!("postgres_schema.sql")];

/// The first key of the advisory lock migrations take ("RTRY"); the second is the hash of the
/// schema the tables go in, so stores in different schemas migrate independently.
const MIGRATION_LOCK: i32 = 0x5254_5259;

/// The channel [`Backend::enqueue`] notifies, with the function's name as the payload.
pub const NOTIFY_CHANNEL: &str = "retry_calls";

/// What [`PostgresBackend::listen`] sends after every (re)connection, since notifications sent
/// while it was not listening are lost: poll every function now. A function name is never empty.
pub const POLL_ALL: &str = "";

/// How many connections the pool opens at most.
const POOL_SIZE: usize = 16;

/// How long opening a connection may take, unless the URL sets `connect_timeout`.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a free connection of the pool.
const POOL_WAIT: Duration = Duration::from_secs(30);

/// Wake-ups a listener buffers before it drops more (the worker polls everything anyway).
const LISTEN_BUFFER: usize = 64;

/// The listener's reconnection delays: doubling from the first to the last, with jitter.
const RECONNECT_FIRST: Duration = Duration::from_millis(100);
const RECONNECT_MAX: Duration = Duration::from_secs(10);

const COLUMNS: &str = "cid, parent, function, args, state, attempts, created_at, started_at, \
    first_attempt_at, last_attempt_at, next_due_at, last_error, dead_reason, worker, lease_until, \
    fence, last_wait_ns, updated_at";

/// The calls are inserted in one statement; IDs already stored are skipped and reported back
/// by their absence from `RETURNING`, so a duplicate is found without parsing error messages.
const INSERT: &str = "INSERT INTO retry_calls (cid, parent, function, args, state, attempts, \
    created_at, next_due_at, fence, last_wait_ns, updated_at, started_at, first_attempt_at, \
    last_attempt_at, last_error) \
    SELECT n.cid, n.parent, n.function, n.args, \
      CASE WHEN n.attempts > 0 THEN 'waiting' ELSE 'pending' END, n.attempts, $6, n.due, 0, \
      n.last_wait_ns, $6, n.started_at, n.tried_at, n.tried_at, n.last_error \
    FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $7::int[], \
      $8::bigint[], $9::bigint[], $10::bigint[], $11::text[]) \
      AS n(cid, parent, function, args, due, attempts, last_wait_ns, started_at, tried_at, \
        last_error) \
    ON CONFLICT (cid) DO NOTHING RETURNING cid";

/// The claim: lock up to `$4` claimable calls nobody else is claiming (earliest first), then
/// lease them to the worker with a raised fence, in one statement.
const CLAIM: &str = "WITH picked AS MATERIALIZED ( \
      SELECT cid FROM retry_calls \
      WHERE state IN ('pending', 'waiting', 'running') AND claimable_at <= $3 \
        AND function = ANY($5) \
      ORDER BY claimable_at, cid LIMIT $4 FOR UPDATE SKIP LOCKED) \
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
/// Operations take a connection from a pool (`deadpool-postgres`, at most 16). A connection
/// the server or the network dropped fails the operation using it with
/// [`StoreError::Backend`] (the caller retries, as with any store error); a connection on which
/// an operation failed so is closed, never handed out again, and the next operation gets a
/// live or a new one. TLS is not supported: connect over a trusted network or
/// a Unix socket (`postgres://app@%2Frun%2Fpostgresql/jobs`).
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
#[derive(Clone)]
pub struct PostgresBackend {
    pool: Pool,
    config: Config,
    /// The URL without its password, for messages.
    shown: String,
    /// Successes waiting to be recorded together (see [`record_acks`]).
    acks: mpsc::UnboundedSender<Ack>,
}

impl std::fmt::Debug for PostgresBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresBackend")
            .field("url", &self.shown)
            .field("pool", &self.pool.status())
            .finish_non_exhaustive()
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
        let shown = redact(url);
        let mut config = parse_url(url)?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("retry-runtime");
        }
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                // `is_closed` only: a connection whose server went away is noticed by its
                // connection task and discarded, without a test query per operation.
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Backend(format!("{shown}: cannot build the pool: {e}")))?;
        let (acks, pending) = mpsc::unbounded_channel();
        tokio::spawn(record_acks(pool.clone(), shown.clone(), pending));
        let backend = Self {
            pool,
            config,
            shown,
            acks,
        };
        backend.migrate(create).await?;
        Ok(backend)
    }

    /// The URL the store was opened with, without its password.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// A connection from the pool.
    async fn client(&self) -> Result<Object, StoreError> {
        self.pool
            .get()
            .await
            .map_err(|e| pool_error(&self.shown, e))
    }

    /// Checks the schema and applies the missing migrations, under the migration lock.
    async fn migrate(&self, create: bool) -> Result<(), StoreError> {
        let mut client = self.client().await?;
        let result = self.migrate_on(&mut client, create).await;
        settle(client, result)
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
                path: self.shown.clone(),
                reason: format!("its schema version {found:?} is not a valid version"),
            })?
        } else if has_calls {
            return Err(StoreError::NotAStore {
                path: self.shown.clone(),
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
                url: self.shown.clone(),
            });
        }
        if version < SCHEMA_VERSION && schema.is_none() {
            return Err(StoreError::Backend(format!(
                "{}: no schema of the search_path exists to create the store's tables in",
                self.shown
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
        check_calls(calls)?;
        if calls.is_empty() {
            return Ok(());
        }
        tx.batch_execute("SAVEPOINT retry_enqueue")
            .await
            .map_err(pg)?;
        let result = insert(tx, calls, now).await;
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
        let mut config = self.config.clone();
        // Notice a connection that died silently (no RST) within about a minute.
        config
            .keepalives_idle(Duration::from_secs(30))
            .keepalives_interval(Duration::from_secs(10))
            .keepalives_retries(3);
        let first = Listening::connect(&config).await.map_err(|e| {
            StoreError::Backend(format!("{}: cannot LISTEN: {}", self.shown, describe(&e)))
        })?;
        let (out, rx) = mpsc::channel(LISTEN_BUFFER);
        // Cannot fail: the channel is empty and its receiver alive.
        let _ = out.try_send(POLL_ALL.to_owned());
        tokio::spawn(listen_loop(config, self.shown.clone(), first, out));
        Ok(rx)
    }
}

/// A connection that `LISTEN`s on [`NOTIFY_CHANNEL`], with its notifications' payloads.
struct Listening {
    /// Kept alive: dropping the client closes the connection.
    _client: Client,
    payloads: mpsc::UnboundedReceiver<String>,
}

impl Listening {
    async fn connect(config: &Config) -> Result<Self, tokio_postgres::Error> {
        let (client, mut connection) = config.connect(NoTls).await?;
        let (sender, payloads) = mpsc::unbounded_channel();
        // The connection task: ends when the connection does, closing `payloads`.
        tokio::spawn(async move {
            while let Some(message) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(n)) if n.channel() == NOTIFY_CHANNEL => {
                        if sender.send(n.payload().to_owned()).is_err() {
                            break;
                        }
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {NOTIFY_CHANNEL}"))
            .await?;
        Ok(Self {
            _client: client,
            payloads,
        })
    }
}

/// Forwards notifications to `out`, reconnecting when the connection ends, until `out`'s
/// receiver is dropped.
async fn listen_loop(
    config: Config,
    shown: String,
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
        tracing::warn!(store = %shown, "the LISTEN connection to PostgreSQL was lost; reconnecting");
        let mut delay = RECONNECT_FIRST;
        current = loop {
            // Equal jitter: between half the delay and the whole.
            let half = delay / 2;
            let wait = half + half.mul_f64(fastrand::f64());
            tokio::select! {
                () = out.closed() => return,
                () = tokio::time::sleep(wait) => {}
            }
            match Listening::connect(&config).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(store = %shown, error = %describe(&e), "cannot LISTEN on PostgreSQL; retrying");
                    delay = (delay * 2).min(RECONNECT_MAX);
                }
            }
        };
        tracing::info!(store = %shown, "listening on PostgreSQL again");
        if out.send(POLL_ALL.to_owned()).await.is_err() {
            return;
        }
    }
}

/// Parses a `postgres://` or `postgresql://` URL as `tokio-postgres` reads it.
pub(crate) fn parse_url(url: &str) -> Result<Config, StoreError> {
    Config::from_str(url).map_err(|e| StoreError::BadUrl {
        url: redact(url),
        reason: format!("not a PostgreSQL URL: {}", describe(&e)),
    })
}

/// The URL with its password (in the user part or a `password=` parameter) replaced by `***`.
pub(crate) fn redact(url: &str) -> String {
    let mut shown = url.to_owned();
    if let Some(start) = shown.find("://").map(|i| i + 3) {
        let end = shown[start..]
            .find(['/', '?'])
            .map_or(shown.len(), |i| start + i);
        if let Some(at) = shown[start..end].rfind('@').map(|i| start + i) {
            if let Some(colon) = shown[start..at].find(':').map(|i| start + i) {
                shown.replace_range(colon + 1..at, "***");
            }
        }
    }
    if let Some(query) = shown.find('?') {
        let (head, params) = shown.split_at(query + 1);
        let params: Vec<String> = params
            .split('&')
            .map(|p| match p.split_once('=') {
                Some(("password", _)) => "password=***".to_owned(),
                _ => p.to_owned(),
            })
            .collect();
        shown = format!("{head}{}", params.join("&"));
    }
    shown
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
fn pg(e: tokio_postgres::Error) -> StoreError {
    StoreError::Backend(describe(&e))
}

#[allow(clippy::needless_pass_by_value)] // made for `map_err`
fn pool_error(shown: &str, e: PoolError) -> StoreError {
    let why = match &e {
        PoolError::Backend(e) => describe(e),
        other => other.to_string(),
    };
    StoreError::Backend(format!("cannot connect to PostgreSQL at {shown}: {why}"))
}

/// Checks the arguments are JSON and no ID is repeated, before anything is sent.
fn check_calls(calls: &[NewCall]) -> Result<(), StoreError> {
    let mut seen = HashSet::with_capacity(calls.len());
    for call in calls {
        if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&call.args) {
            return Err(StoreError::Invalid(format!(
                "the arguments of call {} are not JSON: {e}",
                call.cid
            )));
        }
        if !seen.insert(call.cid) {
            return Err(StoreError::Duplicate(call.cid));
        }
    }
    Ok(())
}

/// Inserts checked calls and notifies once per function; the caller rolls back on an error.
async fn insert(
    tx: &Transaction<'_>,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), StoreError> {
    let cids: Vec<String> = calls.iter().map(|c| c.cid.to_string()).collect();
    let parents: Vec<Option<String>> = calls
        .iter()
        .map(|c| c.parent.map(|p| p.to_string()))
        .collect();
    let functions: Vec<&str> = calls.iter().map(|c| c.function.as_str()).collect();
    let args: Vec<&str> = calls.iter().map(|c| c.args.as_str()).collect();
    let dues: Vec<i64> = calls.iter().map(|c| ms(c.due.unwrap_or(now))).collect();
    // Calls stored after their caller's own attempt failed (`persist = "on_failure"`).
    let tried = |f: &dyn Fn(&super::Tried) -> Option<i64>| -> Vec<Option<i64>> {
        calls.iter().map(|c| c.tried.as_ref().and_then(f)).collect()
    };
    let attempts: Vec<i32> = calls
        .iter()
        .map(|c| {
            c.tried.as_ref().map_or(0, |t| {
                i32::try_from(t.progress.attempts).unwrap_or(i32::MAX)
            })
        })
        .collect();
    let waits: Vec<i64> = tried(&|t| i64::try_from(t.progress.last_wait_ns).ok())
        .into_iter()
        .map(|w| w.unwrap_or(0))
        .collect();
    let started = tried(&|t| t.progress.started_at.map(ms));
    let tried_at = tried(&|t| Some(ms(t.progress.attempt_started)));
    let errors: Vec<Option<&str>> = calls
        .iter()
        .map(|c| c.tried.as_ref().map(|t| t.error.as_str()))
        .collect();
    let rows = tx
        .query(
            INSERT,
            &[
                &cids,
                &parents,
                &functions,
                &args,
                &dues,
                &ms(now),
                &attempts,
                &waits,
                &started,
                &tried_at,
                &errors,
            ],
        )
        .await
        .map_err(pg)?;
    if rows.len() < calls.len() {
        let stored: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(pg)?;
        let taken = calls
            .iter()
            .find(|c| !stored.contains(&c.cid.to_string()))
            .map_or(calls[0].cid, |c| c.cid);
        return Err(StoreError::Duplicate(taken));
    }
    let mut notified = HashSet::new();
    for function in functions {
        if notified.insert(function) {
            tx.execute("SELECT pg_notify($1, $2)", &[&NOTIFY_CHANNEL, &function])
                .await
                .map_err(pg)?;
        }
    }
    Ok(())
}

fn int4(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Backend(format!("a stored call is malformed: {what}"))
}

fn cid_text(text: &str) -> Result<CorrelationId, StoreError> {
    text.parse()
        .map_err(|_| corrupt(&format!("`{text}` is not a correlation ID")))
}

fn record(row: &Row) -> Result<CallRecord, StoreError> {
    let opt_time = |idx: usize| -> Result<Option<SystemTime>, StoreError> {
        Ok(row.try_get::<_, Option<i64>>(idx).map_err(pg)?.map(time))
    };
    let unsigned = |idx: usize| -> Result<u64, StoreError> {
        let v: i64 = row.try_get(idx).map_err(pg)?;
        u64::try_from(v).map_err(|_| corrupt(&format!("{v} is negative")))
    };
    let cid: String = row.try_get(0).map_err(pg)?;
    let parent: Option<String> = row.try_get(1).map_err(pg)?;
    let state: String = row.try_get(4).map_err(pg)?;
    let attempts: i32 = row.try_get(5).map_err(pg)?;
    Ok(CallRecord {
        cid: cid_text(&cid)?,
        parent: parent.as_deref().map(cid_text).transpose()?,
        function: row.try_get(2).map_err(pg)?,
        args: row.try_get(3).map_err(pg)?,
        state: state.parse().map_err(|e| corrupt(&format!("{e}")))?,
        attempts: u32::try_from(attempts).map_err(|_| corrupt("negative attempts"))?,
        created_at: time(row.try_get(6).map_err(pg)?),
        started_at: opt_time(7)?,
        first_attempt_at: opt_time(8)?,
        last_attempt_at: opt_time(9)?,
        next_due_at: opt_time(10)?,
        last_error: row.try_get(11).map_err(pg)?,
        dead_reason: row.try_get(12).map_err(pg)?,
        worker: row.try_get(13).map_err(pg)?,
        lease_until: opt_time(14)?,
        fence: unsigned(15)?,
        last_wait_ns: unsigned(16)?,
        updated_at: time(row.try_get(17).map_err(pg)?),
    })
}

fn count(n: u64) -> bool {
    n > 0
}

impl PostgresBackend {
    /// Runs one statement on a pooled connection (prepared once per connection); returns the
    /// number of rows it changed.
    async fn execute(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, StoreError> {
        let client = self.client().await?;
        let result = async {
            let statement = client.prepare_cached(sql).await.map_err(pg)?;
            client.execute(&statement, params).await.map_err(pg)
        }
        .await;
        settle(client, result)
    }

    /// Runs one query on a pooled connection (prepared once per connection).
    async fn query(
        &self,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<Vec<Row>, StoreError> {
        let client = self.client().await?;
        let result = async {
            let statement = client.prepare_cached(sql).await.map_err(pg)?;
            client.query(&statement, params).await.map_err(pg)
        }
        .await;
        settle(client, result)
    }
}

/// A success waiting to be recorded.
struct Ack {
    cid: String,
    fence: i64,
    attempts: i32,
    started: i64,
    now: i64,
    reply: tokio::sync::oneshot::Sender<Result<bool, StoreError>>,
}

/// Successes recorded together at most.
const ACK_BATCH: usize = 256;

/// Records successes as they come, all those waiting in one statement: under load, many
/// workers' acks share a round trip and a commit (the SQLite store's writer does the same).
/// Each is still fenced on its own: a call whose claim is no longer current is left alone and
/// its caller told so.
async fn record_acks(pool: Pool, shown: String, mut pending: mpsc::UnboundedReceiver<Ack>) {
    while let Some(first) = pending.recv().await {
        let mut batch = vec![first];
        while batch.len() < ACK_BATCH {
            match pending.try_recv() {
                Ok(a) => batch.push(a),
                Err(_) => break,
            }
        }
        match complete_many(&pool, &shown, &batch).await {
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
}

async fn complete_many(
    pool: &Pool,
    shown: &str,
    batch: &[Ack],
) -> Result<HashSet<String>, StoreError> {
    let cids: Vec<&str> = batch.iter().map(|a| a.cid.as_str()).collect();
    let fences: Vec<i64> = batch.iter().map(|a| a.fence).collect();
    let attempts: Vec<i32> = batch.iter().map(|a| a.attempts).collect();
    let started: Vec<i64> = batch.iter().map(|a| a.started).collect();
    let nows: Vec<i64> = batch.iter().map(|a| a.now).collect();
    let client = pool.get().await.map_err(|e| pool_error(shown, e))?;
    let result = async {
        let statement = client.prepare_cached(COMPLETE_MANY).await.map_err(pg)?;
        let rows = client
            .query(&statement, &[&cids, &fences, &attempts, &started, &nows])
            .await
            .map_err(pg)?;
        rows.iter()
            .map(|r| r.try_get::<_, String>(0).map_err(pg))
            .collect()
    }
    .await;
    settle(client, result)
}

/// Records successes: each fenced like a single `complete`.
const COMPLETE_MANY: &str = "UPDATE retry_calls c SET state = 'succeeded', \
    attempts = a.attempts, started_at = COALESCE(c.started_at, a.started), \
    first_attempt_at = COALESCE(c.first_attempt_at, a.started), last_attempt_at = a.started, \
    worker = NULL, lease_until = NULL, next_due_at = NULL, updated_at = a.now \
    FROM unnest($1::text[], $2::bigint[], $3::int[], $4::bigint[], $5::bigint[]) \
      AS a(cid, fence, attempts, started, now) \
    WHERE c.cid = a.cid AND c.fence = a.fence AND c.state = 'running' \
    RETURNING c.cid";

/// Hands a pooled connection back after an operation. After a database or connection error it
/// is closed instead: a connection the server dropped may not look closed yet, and must not
/// fail a second operation.
fn settle<T>(client: Object, result: Result<T, StoreError>) -> Result<T, StoreError> {
    if let Err(StoreError::Backend(_)) = result {
        drop(Object::take(client));
    }
    result
}

impl Backend for PostgresBackend {
    fn wake_ups(&self) -> BoxFuture<'_, Result<Option<super::store::WakeUps>, StoreError>> {
        Box::pin(async move { self.listen().await.map(Some) })
    }

    fn enqueue(
        &self,
        calls: Vec<NewCall>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        Box::pin(async move {
            check_calls(&calls)?;
            if calls.is_empty() {
                return Ok(());
            }
            let mut client = self.client().await?;
            let result = async {
                let tx = client.transaction().await.map_err(pg)?;
                // On an error the transaction is dropped, which rolls it back: all or none.
                insert(&tx, &calls, now).await?;
                tx.commit().await.map_err(pg)
            }
            .await;
            settle(client, result)
        })
    }

    fn claim<'a>(
        &'a self,
        worker: &'a str,
        functions: &'a [String],
        limit: usize,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Claim>, StoreError>> {
        Box::pin(async move {
            if functions.is_empty() || limit == 0 {
                return Ok(Vec::new());
            }
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let rows = self
                .query(
                    &format!("{CLAIM}{COLUMNS}"),
                    &[&worker, &later(now, lease), &ms(now), &limit, &functions],
                )
                .await?;
            rows.iter()
                .map(|row| {
                    let record = record(row)?;
                    Ok(Claim {
                        fence: record.fence,
                        record,
                    })
                })
                .collect()
        })
    }

    fn renew(
        &self,
        cid: CorrelationId,
        fence: u64,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            self.execute(
                "UPDATE retry_calls SET lease_until = $3 \
                 WHERE cid = $1 AND fence = $2 AND state = 'running'",
                &[&cid.to_string(), &int(fence), &later(now, lease)],
            )
            .await
            .map(count)
        })
    }

    fn complete(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let (reply, answer) = tokio::sync::oneshot::channel();
            let ack = Ack {
                cid: cid.to_string(),
                fence: int(fence),
                attempts: int4(attempts),
                started: ms(attempt_started),
                now: ms(now),
                reply,
            };
            if self.acks.send(ack).is_ok() {
                if let Ok(recorded) = answer.await {
                    return recorded;
                }
            }
            // The recorder is gone (its runtime ended): record this one on its own.
            self.execute(
                "UPDATE retry_calls SET state = 'succeeded', attempts = $3, \
                 started_at = COALESCE(started_at, $4), \
                 first_attempt_at = COALESCE(first_attempt_at, $4), last_attempt_at = $4, \
                 worker = NULL, lease_until = NULL, next_due_at = NULL, updated_at = $5 \
                 WHERE cid = $1 AND fence = $2 AND state = 'running'",
                &[
                    &cid.to_string(),
                    &int(fence),
                    &int4(attempts),
                    &ms(attempt_started),
                    &ms(now),
                ],
            )
            .await
            .map(count)
        })
    }

    fn reschedule(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Progress,
        due: SystemTime,
        error: String,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            self.execute(
                "UPDATE retry_calls SET state = 'waiting', attempts = $3, started_at = $4, \
                 last_wait_ns = $5, first_attempt_at = COALESCE(first_attempt_at, $6), \
                 last_attempt_at = $6, next_due_at = $7, last_error = $8, worker = NULL, \
                 lease_until = NULL, updated_at = $9 \
                 WHERE cid = $1 AND fence = $2 AND state = 'running'",
                &[
                    &cid.to_string(),
                    &int(fence),
                    &int4(progress.attempts),
                    &progress.started_at.map(ms),
                    &int(progress.last_wait_ns),
                    &ms(progress.attempt_started),
                    &ms(due),
                    &error,
                    &ms(now),
                ],
            )
            .await
            .map(count)
        })
    }

    fn bury(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Option<Progress>,
        reason: String,
        error: Option<String>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            let cid = cid.to_string();
            let n = match progress {
                Some(p) => {
                    self.execute(
                        "UPDATE retry_calls SET state = 'dead', attempts = $3, started_at = $4, \
                         last_wait_ns = $5, first_attempt_at = COALESCE(first_attempt_at, $6), \
                         last_attempt_at = $6, dead_reason = $7, \
                         last_error = COALESCE($8, last_error), worker = NULL, \
                         lease_until = NULL, next_due_at = NULL, updated_at = $9 \
                         WHERE cid = $1 AND fence = $2 AND state = 'running'",
                        &[
                            &cid,
                            &int(fence),
                            &int4(p.attempts),
                            &p.started_at.map(ms),
                            &int(p.last_wait_ns),
                            &ms(p.attempt_started),
                            &reason,
                            &error,
                            &ms(now),
                        ],
                    )
                    .await?
                }
                None => {
                    self.execute(
                        "UPDATE retry_calls SET state = 'dead', dead_reason = $3, \
                         last_error = COALESCE($4, last_error), worker = NULL, \
                         lease_until = NULL, next_due_at = NULL, updated_at = $5 \
                         WHERE cid = $1 AND fence = $2 AND state = 'running'",
                        &[&cid, &int(fence), &reason, &error, &ms(now)],
                    )
                    .await?
                }
            };
            Ok(count(n))
        })
    }

    fn release<'a>(
        &'a self,
        worker: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.execute(
                "UPDATE retry_calls SET state = 'waiting', next_due_at = $2, worker = NULL, \
                 lease_until = NULL, fence = fence + 1, updated_at = $2 \
                 WHERE state = 'running' AND worker = $1",
                &[&worker, &ms(now)],
            )
            .await
        })
    }

    fn cancel(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            self.execute(
                "UPDATE retry_calls SET state = 'cancelled', fence = fence + 1, worker = NULL, \
                 lease_until = NULL, next_due_at = NULL, updated_at = $2 \
                 WHERE cid = $1 AND state IN ('pending', 'waiting', 'running')",
                &[&cid.to_string(), &ms(now)],
            )
            .await
            .map(count)
        })
    }

    fn get(&self, cid: CorrelationId) -> BoxFuture<'_, Result<Option<CallRecord>, StoreError>> {
        Box::pin(async move {
            let rows = self
                .query(
                    &format!("SELECT {COLUMNS} FROM retry_calls WHERE cid = $1"),
                    &[&cid.to_string()],
                )
                .await?;
            rows.first().map(record).transpose()
        })
    }

    fn list<'a>(
        &'a self,
        filter: &'a ListFilter,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<CallRecord>, StoreError>> {
        Box::pin(async move {
            let state = filter.state.map(CallState::as_str);
            let before = filter.older_than.map(|d| earlier(now, d));
            // LIMIT NULL is no limit.
            let limit = filter.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
            let rows = self
                .query(
                    &format!(
                        "SELECT {COLUMNS} FROM retry_calls WHERE ($1::text IS NULL OR state = $1) \
                         AND ($2::text IS NULL OR function = $2) \
                         AND ($3::bigint IS NULL OR updated_at <= $3) \
                         ORDER BY updated_at, cid LIMIT $4"
                    ),
                    &[&state, &filter.function, &before, &limit],
                )
                .await?;
            rows.iter().map(record).collect()
        })
    }

    fn requeue(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        Box::pin(async move {
            self.execute(
                "UPDATE retry_calls SET state = 'pending', attempts = 0, started_at = NULL, \
                 last_wait_ns = 0, dead_reason = NULL, next_due_at = $2, updated_at = $2 \
                 WHERE cid = $1 AND state IN ('dead', 'cancelled')",
                &[&cid.to_string(), &ms(now)],
            )
            .await
            .map(count)
        })
    }

    fn requeue_dead<'a>(
        &'a self,
        function: Option<&'a str>,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        Box::pin(async move {
            self.execute(
                "UPDATE retry_calls SET state = 'pending', attempts = 0, started_at = NULL, \
                 last_wait_ns = 0, dead_reason = NULL, next_due_at = $2, updated_at = $2 \
                 WHERE state = 'dead' AND ($1::text IS NULL OR function = $1)",
                &[&function, &ms(now)],
            )
            .await
        })
    }

    fn purge(
        &self,
        state: CallState,
        older_than: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        Box::pin(async move {
            if !state.is_finished() {
                return Err(StoreError::Invalid(format!(
                    "only finished calls (succeeded, dead, cancelled) can be purged, not {state} ones"
                )));
            }
            self.execute(
                "DELETE FROM retry_calls WHERE state = $1 AND updated_at <= $2",
                &[&state.as_str(), &earlier(now, older_than)],
            )
            .await
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Stats, StoreError>> {
        Box::pin(async move {
            let rows = self
                .query(
                    "SELECT function, state, count(*) FROM retry_calls GROUP BY function, state",
                    &[],
                )
                .await?;
            let mut rows = rows
                .iter()
                .map(|row| {
                    let state: String = row.try_get(1).map_err(pg)?;
                    let count: i64 = row.try_get(2).map_err(pg)?;
                    Ok(StatsRow {
                        function: row.try_get(0).map_err(pg)?,
                        state: state.parse().map_err(|e| corrupt(&format!("{e}")))?,
                        count: u64::try_from(count).unwrap_or(0),
                    })
                })
                .collect::<Result<Vec<_>, StoreError>>()?;
            rows.sort_by(|a, b| (&a.function, a.state).cmp(&(&b.function, b.state)));
            Ok(Stats { rows })
        })
    }

    fn next_due<'a>(
        &'a self,
        functions: &'a [String],
    ) -> BoxFuture<'a, Result<Option<SystemTime>, StoreError>> {
        Box::pin(async move {
            if functions.is_empty() {
                return Ok(None);
            }
            let rows = self
                .query(
                    "SELECT min(claimable_at) FROM retry_calls \
                     WHERE state IN ('pending', 'waiting', 'running') AND function = ANY($1)",
                    &[&functions],
                )
                .await?;
            let due: Option<i64> = rows
                .first()
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(pg)?
                .flatten();
            Ok(due.map(time))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::redact;

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/jobs"),
            "postgres://app:***@db:5432/jobs"
        );
        assert_eq!(redact("postgres://app@db/jobs"), "postgres://app@db/jobs");
        assert_eq!(
            redact("postgresql://db/jobs?user=app&password=s3cret&sslmode=disable"),
            "postgresql://db/jobs?user=app&password=***&sslmode=disable"
        );
        assert_eq!(redact("postgres://db/jobs"), "postgres://db/jobs");
    }
}
