//! The SQLite backend: one writer thread with group commit, one reader connection, WAL.
//!
//! Every write is a job sent to the writer thread, which owns the write connection. The
//! writer takes every job queued, runs them all in one `BEGIN IMMEDIATE` transaction (each in
//! its own savepoint, so one failing job does not undo the others), commits once, and only
//! then answers each caller: one fsync for many calls. Reads run on a separate connection on
//! tokio's blocking pool, so WAL readers never wait for the writer.

use super::millis::{earlier, int, later, ms, time};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::types::{Type, Value};
use rusqlite::{
    params, params_from_iter, Connection, ErrorCode, OpenFlags, OptionalExtension, Row,
};
use tokio::sync::oneshot;

use super::record::{CallRecord, CallState, Claim, ListFilter, NewCall, Progress, Stats, StatsRow};
use super::store::{Backend, BoxFuture, StoreError};
use crate::CorrelationId;

/// The schema version this build writes: the number of migrations.
pub(crate) const SCHEMA_VERSION: u32 = 1;

/// The migrations, in order: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [include_str!("schema.sql")];

/// `PRAGMA application_id` of a retry store: "RTRY" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x5254_5259;

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most jobs the writer puts in one transaction.
const MAX_BATCH: usize = 1024;

/// How hard SQLite works to make a commit survive a power loss (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Synchronous {
    /// An fsync at every commit: a committed call survives a power loss. The default.
    #[default]
    Full,
    /// In WAL mode, the last commits before a power loss may be lost (never corrupted).
    Normal,
    /// No fsync at all: for tests and throw-away stores.
    Off,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
            Synchronous::Off => "OFF",
        }
    }
}

/// What the writer runs: the caller's statements, returning the answer to send once the
/// transaction's commit has succeeded or failed. Given an error instead of a connection when
/// the transaction could not begin, it answers at once.
type Job = Box<dyn FnOnce(Result<&Connection, &StoreError>) -> Option<Reply> + Send>;
type Reply = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// A durable store in a SQLite file (or in memory). Usually reached through
/// [`Store::open`](super::Store::open) with a `sqlite:` URL.
///
/// ```
/// use retry_runtime::durable::{SqliteBackend, Store, Synchronous, NewCall};
/// use std::sync::Arc;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let backend = SqliteBackend::open_file(&dir.path().join("calls.db"), Synchronous::Full, true)?;
/// let store = Store::from_backend(Arc::new(backend));
/// store.enqueue(vec![NewCall::new("f", "[]")]).await?;
/// assert_eq!(store.stats().await?.total(), 1);
/// # Ok(())
/// # }
/// ```
pub struct SqliteBackend {
    jobs: mpsc::Sender<Job>,
    /// `None` for an in-memory store, whose reads go through the writer (a second connection
    /// would open a different, empty database).
    reader: Option<Arc<Mutex<Connection>>>,
    commits: Arc<AtomicU64>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Opens the store in the file at `path`, creating it if `create` is set, and migrating it
    /// to the current schema. Blocks (file I/O); [`Store::open`](super::Store::open) runs it on
    /// tokio's blocking pool.
    ///
    /// # Errors
    /// [`StoreError::NoStore`] (missing file, `create` unset), [`StoreError::NotAStore`] (not
    /// SQLite, damaged, or another program's database), [`StoreError::NewerSchema`],
    /// [`StoreError::Io`].
    pub fn open_file(
        path: &Path,
        synchronous: Synchronous,
        create: bool,
    ) -> Result<Self, StoreError> {
        if !create && !path.exists() {
            return Err(StoreError::NoStore {
                path: path.to_owned(),
            });
        }
        let shown = path.display().to_string();
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let writer =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(&shown, &e))?;
        prepare(&writer, &shown)?;
        // Only now that the file is known to be ours is anything about it changed.
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_error(&shown, &e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(format!(
                "{shown}: could not switch to WAL mode (journal_mode is {mode})"
            )));
        }
        writer
            .pragma_update(None, "synchronous", synchronous.pragma())
            .map_err(|e| open_error(&shown, &e))?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&shown, &e))?;
        reader
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(&shown, &e))?;
        Self::start(writer, Some(reader))
    }

    /// Opens a private in-memory store, gone when the last handle is dropped.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if SQLite cannot start.
    pub fn open_memory() -> Result<Self, StoreError> {
        let writer = Connection::open_in_memory().map_err(|e| open_error(":memory:", &e))?;
        prepare(&writer, ":memory:")?;
        Self::start(writer, None)
    }

    fn start(writer: Connection, reader: Option<Connection>) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        // The thread ends when every sender is gone, that is when the backend is dropped.
        std::thread::Builder::new()
            .name("retry-store-writer".into())
            .spawn(move || write_loop(&writer, &queue, &counter))
            .map_err(|e| StoreError::Io(format!("cannot start the store's writer thread: {e}")))?;
        Ok(Self {
            jobs,
            reader: reader.map(|r| Arc::new(Mutex::new(r))),
            commits,
        })
    }

    /// The number of transactions the writer has committed (for tests of group commit).
    #[doc(hidden)]
    #[must_use]
    pub fn commits(&self) -> u64 {
        self.commits.load(Ordering::Relaxed)
    }

    /// Sends `f` to the writer; the answer comes after the transaction holding it commits.
    fn write<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move |conn: Result<&Connection, &StoreError>| {
            let conn = match conn {
                Ok(conn) => conn,
                Err(e) => {
                    let _ = tx.send(Err(e.clone()));
                    return None;
                }
            };
            let result = in_savepoint(conn, f);
            Some(Box::new(move |commit: Result<(), &StoreError>| {
                let _ = tx.send(match commit {
                    Ok(()) => result,
                    Err(e) => Err(e.clone()),
                });
            }) as Reply)
        });
        let sent = self.jobs.send(job).is_ok();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            rx.await.unwrap_or(Err(StoreError::Closed))
        })
    }

    /// Runs `f` on the reader connection on tokio's blocking pool.
    fn read<T, F>(&self, f: F) -> BoxFuture<'static, Result<T, StoreError>>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(reader) = self.reader.clone() else {
            return self.write(f);
        };
        Box::pin(async move {
            tokio::task::spawn_blocking(move || {
                let conn = reader.lock().unwrap_or_else(PoisonError::into_inner);
                f(&conn)
            })
            .await
            .map_err(|e| StoreError::Backend(format!("a read failed: {e}")))?
        })
    }
}

/// The writer thread: drain the queue, one transaction for all, commit, answer.
fn write_loop(conn: &Connection, queue: &mpsc::Receiver<Job>, commits: &AtomicU64) {
    while let Ok(first) = queue.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match queue.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
            let err = db_error(&e);
            for job in batch {
                job(Err(&err));
            }
            continue;
        }
        let replies: Vec<Reply> = batch.into_iter().filter_map(|job| job(Ok(conn))).collect();
        let outcome = match conn.execute_batch("COMMIT") {
            Ok(()) => {
                commits.fetch_add(1, Ordering::Relaxed);
                Ok(())
            }
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(db_error(&e))
            }
        };
        for reply in replies {
            reply(outcome.as_ref().copied());
        }
    }
}

/// Runs one job in a savepoint, undoing its changes if it fails.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    conn.execute_batch("SAVEPOINT job")
        .map_err(|e| db_error(&e))?;
    let result = f(conn);
    let end = if result.is_ok() {
        "RELEASE job"
    } else {
        "ROLLBACK TO job; RELEASE job"
    };
    conn.execute_batch(end).map_err(|e| db_error(&e))?;
    result
}

/// Checks that the database is a retry store (or empty), refuses a newer schema, and applies
/// the missing migrations, all in one `BEGIN IMMEDIATE` transaction.
fn prepare(conn: &Connection, shown: &str) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_error(shown, &e))?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| open_error(shown, &e))?;
    let result = migrate(conn, shown);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end).map_err(|e| open_error(shown, &e))?;
    result
}

fn migrate(conn: &Connection, shown: &str) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| open_error(shown, &e);
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |r| r.get(0))
        .map_err(err)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(err)?;
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'",
            [],
            |r| r.get(0),
        )
        .map_err(err)?;
    if app_id != APPLICATION_ID && (app_id != 0 || version != 0 || tables != 0) {
        return Err(StoreError::NotAStore {
            path: shown.to_owned(),
            reason: format!(
                "it is another program's SQLite database (application_id {app_id:#x}, \
                 user_version {version}, {tables} tables)"
            ),
        });
    }
    let version = u32::try_from(version).map_err(|_| StoreError::NotAStore {
        path: shown.to_owned(),
        reason: format!("its schema version {version} is not a valid version"),
    })?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::NewerSchema {
            found: version,
            supported: SCHEMA_VERSION,
        });
    }
    for migration in &MIGRATIONS[version as usize..] {
        conn.execute_batch(migration).map_err(err)?;
    }
    conn.execute_batch(&format!(
        "PRAGMA application_id = {APPLICATION_ID}; PRAGMA user_version = {SCHEMA_VERSION};"
    ))
    .map_err(err)?;
    Ok(())
}

/// An error while opening: a file that is not a database is not a store.
fn open_error(shown: &str, e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotAStore {
            path: shown.to_owned(),
            reason: "it is not a SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::NotAStore {
            path: shown.to_owned(),
            reason: "the SQLite database is damaged".into(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            StoreError::Io(format!("{shown}: {e}"))
        }
        _ => StoreError::Backend(format!("{shown}: {e}")),
    }
}

fn db_error(e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(
            ErrorCode::CannotOpen
            | ErrorCode::PermissionDenied
            | ErrorCode::ReadOnly
            | ErrorCode::DiskFull
            | ErrorCode::SystemIoFailure,
        ) => StoreError::Io(e.to_string()),
        _ => StoreError::Backend(e.to_string()),
    }
}

#[allow(clippy::needless_pass_by_value)] // made for `map_err(sql)`
fn sql(e: rusqlite::Error) -> StoreError {
    db_error(&e)
}

const COLUMNS: &str = "cid, parent, function, args, state, attempts, created_at, started_at, \
    first_attempt_at, last_attempt_at, next_due_at, last_error, dead_reason, worker, lease_until, \
    fence, last_wait_ns, updated_at";

fn bad_column(idx: usize, why: String) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(idx, Type::Text, why.into())
}

fn cid_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<CorrelationId>> {
    let text: Option<String> = row.get(idx)?;
    text.map(|t| {
        t.parse()
            .map_err(|_| bad_column(idx, format!("`{t}` is not a correlation ID")))
    })
    .transpose()
}

fn time_at(row: &Row<'_>, idx: usize) -> rusqlite::Result<Option<SystemTime>> {
    Ok(row.get::<_, Option<i64>>(idx)?.map(time))
}

fn record(row: &Row<'_>) -> rusqlite::Result<CallRecord> {
    let state: String = row.get(4)?;
    let unsigned = |idx: usize| -> rusqlite::Result<u64> {
        let v: i64 = row.get(idx)?;
        u64::try_from(v).map_err(|_| bad_column(idx, format!("{v} is negative")))
    };
    Ok(CallRecord {
        cid: cid_at(row, 0)?.ok_or_else(|| bad_column(0, "the ID is NULL".into()))?,
        parent: cid_at(row, 1)?,
        function: row.get(2)?,
        args: row.get(3)?,
        state: state.parse().map_err(|e| bad_column(4, format!("{e}")))?,
        attempts: u32::try_from(unsigned(5)?).unwrap_or(u32::MAX),
        created_at: time(row.get(6)?),
        started_at: time_at(row, 7)?,
        first_attempt_at: time_at(row, 8)?,
        last_attempt_at: time_at(row, 9)?,
        next_due_at: time_at(row, 10)?,
        last_error: row.get(11)?,
        dead_reason: row.get(12)?,
        worker: row.get(13)?,
        lease_until: time_at(row, 14)?,
        fence: unsigned(15)?,
        last_wait_ns: unsigned(16)?,
        updated_at: time(row.get(17)?),
    })
}

/// `?N, ?N+1, ...` for the function names, and the names as values.
fn function_list(functions: &[String], first: usize) -> (String, Vec<Value>) {
    let marks: Vec<String> = (0..functions.len())
        .map(|i| format!("?{}", first + i))
        .collect();
    let values = functions.iter().map(|f| Value::Text(f.clone())).collect();
    (marks.join(", "), values)
}

fn changed(n: usize) -> bool {
    n > 0
}

impl Backend for SqliteBackend {
    fn enqueue(
        &self,
        calls: Vec<NewCall>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        if calls.is_empty() {
            return Box::pin(async { Ok(()) });
        }
        for call in &calls {
            if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&call.args) {
                let err = StoreError::Invalid(format!(
                    "the arguments of call {} are not JSON: {e}",
                    call.cid
                ));
                return Box::pin(async move { Err(err) });
            }
        }
        self.write(move |conn| {
            let mut insert = conn
                .prepare_cached(
                    "INSERT INTO calls (cid, parent, function, args, state, attempts, created_at, \
                     next_due_at, fence, last_wait_ns, updated_at, started_at, first_attempt_at, \
                     last_attempt_at, last_error) \
                     VALUES (?1, ?2, ?3, ?4, ?7, ?8, ?5, ?6, 0, ?9, ?5, ?10, ?11, ?11, ?12)",
                )
                .map_err(sql)?;
            for call in calls {
                let tried = call.tried.as_ref();
                let result = insert.execute(params![
                    call.cid.to_string(),
                    call.parent.map(|p| p.to_string()),
                    call.function,
                    call.args,
                    ms(now),
                    ms(call.due.unwrap_or(now)),
                    if tried.is_some() {
                        "waiting"
                    } else {
                        "pending"
                    },
                    tried.map_or(0, |t| t.progress.attempts),
                    tried.map_or(0, |t| t.progress.last_wait_ns),
                    tried.and_then(|t| t.progress.started_at).map(ms),
                    tried.map(|t| ms(t.progress.attempt_started)),
                    tried.map(|t| t.error.clone()),
                ]);
                match result {
                    Ok(_) => {}
                    Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                        return Err(StoreError::Duplicate(call.cid));
                    }
                    Err(e) => return Err(sql(e)),
                }
            }
            Ok(())
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
        if functions.is_empty() || limit == 0 {
            return Box::pin(async { Ok(Vec::new()) });
        }
        let (marks, mut values) = function_list(functions, 5);
        let query = format!(
            "UPDATE calls SET state = 'running', worker = ?1, lease_until = ?2, fence = fence + 1, \
             next_due_at = NULL, updated_at = ?3 \
             WHERE cid IN (SELECT cid FROM calls WHERE function IN ({marks}) AND \
               ((state IN ('pending', 'waiting') AND next_due_at <= ?3) \
                OR (state = 'running' AND lease_until <= ?3)) \
               ORDER BY CASE state WHEN 'running' THEN lease_until ELSE next_due_at END, cid \
               LIMIT ?4) \
             RETURNING {COLUMNS}"
        );
        let mut args = vec![
            Value::Text(worker.to_owned()),
            Value::Integer(later(now, lease)),
            Value::Integer(ms(now)),
            Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
        ];
        args.append(&mut values);
        self.write(move |conn| {
            let mut stmt = conn.prepare_cached(&query).map_err(sql)?;
            let rows = stmt
                .query_map(params_from_iter(args), record)
                .map_err(sql)?;
            let mut claims = Vec::new();
            for row in rows {
                let record = row.map_err(sql)?;
                claims.push(Claim {
                    fence: record.fence,
                    record,
                });
            }
            Ok(claims)
        })
    }

    fn renew(
        &self,
        cid: CorrelationId,
        fence: u64,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET lease_until = ?3 WHERE cid = ?1 AND fence = ?2 AND state = 'running'",
                params![cid.to_string(), int(fence), later(now, lease)],
            )
            .map(changed)
            .map_err(sql)
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
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET state = 'succeeded', attempts = ?3, \
                 started_at = COALESCE(started_at, ?4), \
                 first_attempt_at = COALESCE(first_attempt_at, ?4), last_attempt_at = ?4, \
                 worker = NULL, lease_until = NULL, next_due_at = NULL, updated_at = ?5 \
                 WHERE cid = ?1 AND fence = ?2 AND state = 'running'",
                params![
                    cid.to_string(),
                    int(fence),
                    attempts,
                    ms(attempt_started),
                    ms(now)
                ],
            )
            .map(changed)
            .map_err(sql)
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
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET state = 'waiting', attempts = ?3, started_at = ?4, \
                 last_wait_ns = ?5, first_attempt_at = COALESCE(first_attempt_at, ?6), \
                 last_attempt_at = ?6, next_due_at = ?7, last_error = ?8, worker = NULL, \
                 lease_until = NULL, updated_at = ?9 \
                 WHERE cid = ?1 AND fence = ?2 AND state = 'running'",
                params![
                    cid.to_string(),
                    int(fence),
                    progress.attempts,
                    progress.started_at.map(ms),
                    int(progress.last_wait_ns),
                    ms(progress.attempt_started),
                    ms(due),
                    error,
                    ms(now),
                ],
            )
            .map(changed)
            .map_err(sql)
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
        self.write(move |conn| {
            let n = match progress {
                Some(p) => conn.execute(
                    "UPDATE calls SET state = 'dead', attempts = ?3, started_at = ?4, \
                     last_wait_ns = ?5, first_attempt_at = COALESCE(first_attempt_at, ?6), \
                     last_attempt_at = ?6, dead_reason = ?7, last_error = COALESCE(?8, last_error), \
                     worker = NULL, lease_until = NULL, next_due_at = NULL, updated_at = ?9 \
                     WHERE cid = ?1 AND fence = ?2 AND state = 'running'",
                    params![
                        cid.to_string(),
                        int(fence),
                        p.attempts,
                        p.started_at.map(ms),
                        int(p.last_wait_ns),
                        ms(p.attempt_started),
                        reason,
                        error,
                        ms(now),
                    ],
                ),
                None => conn.execute(
                    "UPDATE calls SET state = 'dead', dead_reason = ?3, \
                     last_error = COALESCE(?4, last_error), worker = NULL, lease_until = NULL, \
                     next_due_at = NULL, updated_at = ?5 \
                     WHERE cid = ?1 AND fence = ?2 AND state = 'running'",
                    params![cid.to_string(), int(fence), reason, error, ms(now)],
                ),
            };
            n.map(changed).map_err(sql)
        })
    }

    fn release<'a>(
        &'a self,
        worker: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let worker = worker.to_owned();
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET state = 'waiting', next_due_at = ?2, worker = NULL, \
                 lease_until = NULL, fence = fence + 1, updated_at = ?2 \
                 WHERE state = 'running' AND worker = ?1",
                params![worker, ms(now)],
            )
            .map(|n| n as u64)
            .map_err(sql)
        })
    }

    fn cancel(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET state = 'cancelled', fence = fence + 1, worker = NULL, \
                 lease_until = NULL, next_due_at = NULL, updated_at = ?2 \
                 WHERE cid = ?1 AND state IN ('pending', 'waiting', 'running')",
                params![cid.to_string(), ms(now)],
            )
            .map(changed)
            .map_err(sql)
        })
    }

    fn get(&self, cid: CorrelationId) -> BoxFuture<'_, Result<Option<CallRecord>, StoreError>> {
        self.read(move |conn| {
            conn.prepare_cached(&format!("SELECT {COLUMNS} FROM calls WHERE cid = ?1"))
                .and_then(|mut stmt| stmt.query_row([cid.to_string()], record).optional())
                .map_err(sql)
        })
    }

    fn list<'a>(
        &'a self,
        filter: &'a ListFilter,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<CallRecord>, StoreError>> {
        let state = filter.state.map(CallState::as_str);
        let function = filter.function.clone();
        let before = filter.older_than.map(|d| earlier(now, d));
        let limit = filter
            .limit
            .map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM calls WHERE (?1 IS NULL OR state = ?1) \
                     AND (?2 IS NULL OR function = ?2) AND (?3 IS NULL OR updated_at <= ?3) \
                     ORDER BY updated_at, cid LIMIT ?4"
                ))
                .map_err(sql)?;
            let rows = stmt
                .query_map(params![state, function, before, limit], record)
                .map_err(sql)?;
            rows.collect::<Result<Vec<_>, _>>().map_err(sql)
        })
    }

    fn requeue(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET state = 'pending', attempts = 0, started_at = NULL, \
                 last_wait_ns = 0, dead_reason = NULL, next_due_at = ?2, updated_at = ?2 \
                 WHERE cid = ?1 AND state IN ('dead', 'cancelled')",
                params![cid.to_string(), ms(now)],
            )
            .map(changed)
            .map_err(sql)
        })
    }

    fn requeue_dead<'a>(
        &'a self,
        function: Option<&'a str>,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let function = function.map(str::to_owned);
        self.write(move |conn| {
            conn.execute(
                "UPDATE calls SET state = 'pending', attempts = 0, started_at = NULL, \
                 last_wait_ns = 0, dead_reason = NULL, next_due_at = ?2, updated_at = ?2 \
                 WHERE state = 'dead' AND (?1 IS NULL OR function = ?1)",
                params![function, ms(now)],
            )
            .map(|n| n as u64)
            .map_err(sql)
        })
    }

    fn purge(
        &self,
        state: CallState,
        older_than: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        if !state.is_finished() {
            let err = StoreError::Invalid(format!(
                "only finished calls (succeeded, dead, cancelled) can be purged, not {state} ones"
            ));
            return Box::pin(async move { Err(err) });
        }
        self.write(move |conn| {
            conn.execute(
                "DELETE FROM calls WHERE state = ?1 AND updated_at <= ?2",
                params![state.as_str(), earlier(now, older_than)],
            )
            .map(|n| n as u64)
            .map_err(sql)
        })
    }

    fn stats(&self) -> BoxFuture<'_, Result<Stats, StoreError>> {
        self.read(|conn| {
            let mut stmt = conn
                .prepare_cached(
                    "SELECT function, state, count(*) FROM calls GROUP BY function, state",
                )
                .map_err(sql)?;
            let rows = stmt
                .query_map([], |row| {
                    let state: String = row.get(1)?;
                    let count: i64 = row.get(2)?;
                    Ok(StatsRow {
                        function: row.get(0)?,
                        state: state.parse().map_err(|e| bad_column(1, format!("{e}")))?,
                        count: u64::try_from(count).unwrap_or(0),
                    })
                })
                .map_err(sql)?;
            let mut rows = rows.collect::<Result<Vec<_>, _>>().map_err(sql)?;
            rows.sort_by(|a, b| (&a.function, a.state).cmp(&(&b.function, b.state)));
            Ok(Stats { rows })
        })
    }

    fn next_due<'a>(
        &'a self,
        functions: &'a [String],
    ) -> BoxFuture<'a, Result<Option<SystemTime>, StoreError>> {
        if functions.is_empty() {
            return Box::pin(async { Ok(None) });
        }
        let (marks, values) = function_list(functions, 1);
        let query = format!(
            "SELECT min(CASE state WHEN 'running' THEN lease_until ELSE next_due_at END) \
             FROM calls WHERE state IN ('pending', 'waiting', 'running') AND function IN ({marks})"
        );
        self.read(move |conn| {
            conn.prepare_cached(&query)
                .and_then(|mut stmt| {
                    stmt.query_row(params_from_iter(values), |r| r.get::<_, Option<i64>>(0))
                })
                .map(|t| t.map(time))
                .map_err(sql)
        })
    }
}
