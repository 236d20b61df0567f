//! The SQLite backend: one writer thread with group commit, one reader connection, WAL.
//!
//! Every write is a job sent to the writer thread, which owns the write connection. The
//! writer takes every job queued, runs them all in one `BEGIN IMMEDIATE` transaction (each in
//! its own savepoint, so one failing job does not undo the others), commits once, and only
//! then answers each caller: one fsync for many calls. Reads run on a separate connection on
//! tokio's blocking pool, so WAL readers never wait for the writer.
//!
//! The writer also watches the file: when the file at the store's path is no longer the one
//! open (deleted or replaced under the running program), every later write is refused (see
//! [`FileWatch`]). After a write failed for lack of space or an I/O error, it folds the
//! write-ahead log back into the database (`wal_checkpoint(TRUNCATE)`) before its next
//! transaction, so a store whose disk filled up recovers by itself once space is back.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rusqlite::types::Value;
use rusqlite::{params, params_from_iter, Connection, ErrorCode, OpenFlags, Row};
use tokio::sync::oneshot;

use super::browse;
use super::group_commit::gather;
use super::heartbeats;
use super::history::{self, HistoryRunner};
use super::limits::{self, FunctionLimit, LimitRunner};
use super::millis::{from_millis, later, saturating_i64, to_millis};
use super::record::{CallRecord, Claim, NewCall, PausedFunction, StatsRow};
use super::rows;
use super::statements::{self, Dialect, Runner, Statement, COLUMNS};
use super::store::{check_new_calls, Backend, BoxFuture, StoreError};
use crate::CorrelationId;

/// The schema version this build writes: the number of migrations.
pub(crate) const SCHEMA_VERSION: u32 = 4;

/// The migrations, in order: `MIGRATIONS[v]` takes a store from version `v` to `v + 1`.
const MIGRATIONS: [&str; SCHEMA_VERSION as usize] = [
    include_str!("schema.sql"),
    include_str!("schema_2_state_updated.sql"),
    include_str!("schema_3_paused.sql"),
    include_str!("schema_4_history_api.sql"),
];

/// `PRAGMA application_id` of a retry store: "RTRY" in ASCII.
pub(crate) const APPLICATION_ID: i32 = 0x5254_5259;

/// How long a connection waits for another process's lock before giving up.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most jobs the writer puts in one transaction.
const MAX_BATCH: usize = 1024;

/// The most memory each connection's page cache holds (`PRAGMA cache_size = -N`: N KiB),
/// whatever the size of the store: 2 MiB, SQLite's usual default, set here so that the bound
/// holds whatever default the SQLite build has. A worker's work reads the ends of the indexes
/// (the due calls, the running ones, the newest rows) and the pages of the calls it runs; the
/// interior pages of a store of a million calls fit in it, so a larger cache buys little, and
/// the worker's memory stays the same for a store of 10,000 calls or of a million (see the
/// memory figure of `benches/durable.rs`). Two connections: at most 4 MiB of cache per store.
const CACHE_KIB: i64 = 2000;

/// How often an idle writer checks that its file is still the one at the store's path.
const WATCH_INTERVAL: Duration = Duration::from_secs(1);

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
    /// Successes waiting for the writer, recorded together by one job (see [`Successes`]).
    successes: Arc<Successes>,
}

impl std::fmt::Debug for SqliteBackend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteBackend")
            .field("commits", &self.commits())
            .finish_non_exhaustive()
    }
}

impl SqliteBackend {
    /// Opens the store in the file at `path`, creating it if `create` is set (mode `0600` on
    /// Unix, its `-wal` and `-shm` too; the directory must exist), and migrating it to the
    /// current schema. Blocks (file I/O); [`Store::open`](super::Store::open) runs it on
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
        let label = path.display().to_string();
        let mut flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let created = create && create_private(path, &label)?;
        if create {
            flags |= OpenFlags::SQLITE_OPEN_CREATE;
        }
        let writer =
            Connection::open_with_flags(path, flags).map_err(|e| open_error(&label, &e))?;
        prepare(&writer, &label)?;
        // Only now that the file is known to be ours is anything about it changed.
        let mode: String = writer
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(|e| open_error(&label, &e))?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Io(format!(
                "{label}: could not switch to WAL mode (journal_mode is {mode})"
            )));
        }
        if created {
            restrict_companions(path, &label)?;
        }
        writer
            .pragma_update(None, "synchronous", synchronous.pragma())
            .map_err(|e| open_error(&label, &e))?;
        tune_writer(&writer).map_err(|e| open_error(&label, &e))?;
        let reader = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| open_error(&label, &e))?;
        reader
            .busy_timeout(BUSY_TIMEOUT)
            .map_err(|e| open_error(&label, &e))?;
        reader
            .pragma_update(None, "cache_size", -CACHE_KIB)
            .map_err(|e| open_error(&label, &e))?;
        let watch = FileWatch::new(path)?;
        Self::start(writer, Some(reader), watch)
    }

    /// Opens a private in-memory store, gone when the last handle is dropped.
    ///
    /// # Errors
    /// [`StoreError::Backend`] if SQLite cannot start.
    pub fn open_memory() -> Result<Self, StoreError> {
        let writer = Connection::open_in_memory().map_err(|e| open_error(":memory:", &e))?;
        prepare(&writer, ":memory:")?;
        Self::start(writer, None, None)
    }

    fn start(
        writer: Connection,
        reader: Option<Connection>,
        watch: Option<FileWatch>,
    ) -> Result<Self, StoreError> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let commits = Arc::new(AtomicU64::new(0));
        let counter = Arc::clone(&commits);
        // The thread ends when every sender is gone, that is when the backend is dropped.
        std::thread::Builder::new()
            .name("retry-store-writer".into())
            .spawn(move || write_loop(&writer, &queue, &counter, watch))
            .map_err(|e| StoreError::Io(format!("cannot start the store's writer thread: {e}")))?;
        Ok(Self {
            jobs,
            reader: reader.map(|r| Arc::new(Mutex::new(r))),
            commits,
            successes: Arc::default(),
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

/// The writer connection's settings that cost no durability.
///
/// `temp_store = MEMORY`: the statement journal (each statement on a table with a trigger,
/// such as `calls`, keeps the pages it changes there until it ends, to undo it on a failed
/// constraint) and the savepoints' journal stay in memory instead of a temporary file: no
/// `pwrite` per page changed (a finished call's `UPDATE` cost 3x its time in those writes).
/// They only ever undo work inside the open transaction; a crash is recovered from the
/// write-ahead log as before. They hold the pages one job changes, freed when it ends.
///
/// The query planner's stability guarantee (`SQLITE_DBCONFIG_ENABLE_QPSG`): a statement keeps
/// the plan it was prepared with, instead of being prepared again when a bound value changes
/// (the claim was, at every claim, for its due time).
///
/// `cache_size`: [`CACHE_KIB`].
fn tune_writer(writer: &Connection) -> rusqlite::Result<()> {
    writer.pragma_update(None, "temp_store", "MEMORY")?;
    writer.pragma_update(None, "cache_size", -CACHE_KIB)?;
    writer
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG,
            true,
        )
        .map(|_| ())
}

/// A success waiting to be recorded: its statements ([`history::succeeded`]), its values for
/// the batch's statements ([`record_many`]: call, fence, start, end, attempts, result), and
/// who waits.
struct Success {
    statements: [Statement; 3],
    cid: String,
    row: serde_json::Value,
    reply: oneshot::Sender<Result<bool, StoreError>>,
}

impl Success {
    /// The success of `cid`'s attempt under `fence` (see [`Backend::complete_with_result`]);
    /// its answer goes to `reply`.
    fn new(
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        result: Option<String>,
        now: SystemTime,
        reply: oneshot::Sender<Result<bool, StoreError>>,
    ) -> Self {
        let row = serde_json::json!([
            cid.to_string(),
            saturating_i64(fence),
            to_millis(attempt_started),
            to_millis(now),
            attempts,
            result,
        ]);
        Success {
            statements: history::succeeded(cid, fence, attempts, attempt_started, result, now),
            cid: cid.to_string(),
            row,
            reply,
        }
    }
}

/// A batch's attempts, from JSON arrays of its successes' values, one per column: `?1` the
/// calls, `?2` the fences, `?3` the starts, `?4` the ends (`?5` attempts, `?6` results,
/// for [`COMPLETE_MANY`]): each written only if its call runs under its fence, numbered
/// after the call's latest (as [`history::attempt`]'s).
const SUCCEEDED_MANY: &str = "INSERT OR IGNORE INTO call_attempts \
    (cid, attempt, started_at, ended_at, worker, outcome, error) \
    SELECT c.cid, COALESCE((SELECT max(a.attempt) FROM call_attempts a WHERE a.cid = c.cid), 0) \
      + 1, ?3 ->> e.key, ?4 ->> e.key, c.worker, 'succeeded', NULL \
    FROM json_each(?1) AS e CROSS JOIN calls AS c \
    WHERE c.cid = e.value AND c.fence = ?2 ->> e.key AND c.state = 'running'";

/// A batch's outcomes, as [`statements::complete`]'s for each row of `?1`; returns the calls
/// it changed. `+calls.state`: the calls are found by their IDs, not among the running ones.
const COMPLETE_MANY: &str = "UPDATE calls SET state = 'succeeded', attempts = b.attempts, \
    started_at = COALESCE(started_at, b.started), \
    first_attempt_at = COALESCE(first_attempt_at, b.started), last_attempt_at = b.started, \
    worker = NULL, lease_until = NULL, next_due_at = NULL, updated_at = b.ended, \
    result = b.result \
    FROM (SELECT value AS cid, ?2 ->> key AS fence, ?3 ->> key AS started, \
      ?4 ->> key AS ended, ?5 ->> key AS attempts, ?6 ->> key AS result \
      FROM json_each(?1)) AS b \
    WHERE calls.cid = b.cid AND calls.fence = b.fence AND +calls.state = 'running' \
    RETURNING cid";

/// A batch's trimmed histories, as [`history::trim`]'s for each call of `?1`.
const TRIM_MANY: &str = "DELETE FROM call_attempts \
    WHERE cid IN (SELECT value FROM json_each(?1)) \
    AND attempt <= (SELECT max(b.attempt) FROM call_attempts b \
      WHERE b.cid = call_attempts.cid) - ?2";

/// Records the successes of `batch` (two or more, of distinct calls) with three statements
/// in all, not three each: SQLite pays once per statement, not once per call, for what a
/// statement on `calls` sets up (the temporary b-tree of migration 1's `state IN (...)`
/// check, the statement journal). Each success is fenced on its own row as alone; the
/// answers say which calls the outcome changed.
fn record_many(conn: &Connection, batch: &[Success]) -> Result<Vec<bool>, StoreError> {
    // One JSON array per column (`?1` the calls, `?2` the fences, ...): a row's values are
    // read by its index in `?1` (`?2 ->> key`), not parsed again from a row of its own.
    let columns: Vec<String> = (0..6)
        .map(|k| {
            serde_json::Value::Array(batch.iter().map(|s| s.row[k].clone()).collect()).to_string()
        })
        .collect();
    conn.prepare_cached(SUCCEEDED_MANY)
        .and_then(|mut stmt| stmt.execute(params_from_iter(&columns[..4])))
        .map_err(sql)?;
    let changed = conn
        .prepare_cached(COMPLETE_MANY)
        .and_then(|mut stmt| {
            stmt.query_map(params_from_iter(&columns), |row| row.get::<_, String>(0))?
                .collect::<rusqlite::Result<std::collections::HashSet<String>>>()
        })
        .map_err(sql)?;
    conn.prepare_cached(TRIM_MANY)
        .and_then(|mut stmt| stmt.execute(params![columns[0], history::ATTEMPTS_KEPT]))
        .map_err(sql)?;
    Ok(batch.iter().map(|s| changed.contains(&s.cid)).collect())
}

/// The successes waiting for the writer. The first one queued sends a job; that job takes
/// every success queued by the time the writer runs it, so under load one job (one savepoint,
/// one message to the writer) records many, each statement still fenced on its own row.
#[derive(Default)]
struct Successes(Mutex<Vec<Success>>);

impl Successes {
    /// Queues `success`; `true` if the queue was empty (the caller sends the job).
    fn push(&self, success: Success) -> bool {
        let mut queue = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        queue.push(success);
        queue.len() == 1
    }

    fn take(&self) -> Vec<Success> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl SqliteBackend {
    /// Records a success with the others queued: one job of the writer for all of them.
    fn succeed(
        &self,
        success: Success,
        answer: oneshot::Receiver<Result<bool, StoreError>>,
    ) -> BoxFuture<'static, Result<bool, StoreError>> {
        let first = self.successes.push(success);
        if first {
            let queue = Arc::clone(&self.successes);
            let job: Job = Box::new(move |conn| record_successes(conn, queue.take()));
            if let Err(mpsc::SendError(job)) = self.jobs.send(job) {
                // The writer is gone: the job answers every success queued with the error.
                drop(job(Err(&StoreError::Closed)));
            }
        }
        Box::pin(async move { answer.await.unwrap_or(Err(StoreError::Closed)) })
    }
}

/// The writer's job for a batch of successes: all in one savepoint; if that fails, each in
/// its own, so that one success's error does not undo the others. The answers go out once the
/// transaction is committed.
fn record_successes(conn: Result<&Connection, &StoreError>, batch: Vec<Success>) -> Option<Reply> {
    let conn = match conn {
        Ok(conn) => conn,
        Err(e) => {
            for s in batch {
                let _ = s.reply.send(Err(e.clone()));
            }
            return None;
        }
    };
    let record = |conn: &Connection, s: &Success| -> Result<bool, StoreError> {
        let mut changed = [0; 3];
        for (n, statement) in changed.iter_mut().zip(&s.statements) {
            *n = execute(conn, statement)?;
        }
        Ok(changed[1] > 0)
    };
    let distinct = batch.len() > 1 && {
        let mut seen = std::collections::HashSet::with_capacity(batch.len());
        batch.iter().all(|s| seen.insert(s.cid.as_str()))
    };
    let results: Vec<Result<bool, StoreError>> = match in_savepoint(conn, |conn| {
        if distinct {
            return record_many(conn, &batch);
        }
        batch
            .iter()
            .map(|s| record(conn, s))
            .collect::<Result<Vec<bool>, _>>()
    }) {
        Ok(all) => all.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(_) if batch.len() > 1 => batch
            .iter()
            .map(|s| {
                if conn.is_autocommit() {
                    // SQLite ended the transaction: nothing may run outside it.
                    return Err(StoreError::Io(
                        "the transaction was rolled back by SQLite (disk full or I/O error)".into(),
                    ));
                }
                in_savepoint(conn, |conn| record(conn, s))
            })
            .collect(),
        Err(e) => vec![Err(e)],
    };
    Some(Box::new(move |commit: Result<(), &StoreError>| {
        for (s, result) in batch.into_iter().zip(results) {
            let _ = s.reply.send(match commit {
                Ok(()) => result,
                Err(e) => Err(e.clone()),
            });
        }
    }))
}

/// Creates the store's file, unless it exists, readable and writable by its owner alone
/// (`0600` on Unix, whatever the umask): a store holds calls' arguments, often personal data
/// or tokens. Returns whether it created the file.
fn create_private(path: &Path, label: &str) -> Result<bool, StoreError> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(file) => {
            // The mode given to `open` is narrowed by the umask; this one is not.
            #[cfg(unix)]
            file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .map_err(|e| StoreError::Io(format!("{label}: {e}")))?;
            drop(file);
            Ok(true)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(StoreError::Io(format!(
            "{label}: no such directory to create the store in (create the directory first, \
             or check the path)"
        ))),
        Err(e) => Err(StoreError::Io(format!(
            "{label}: cannot create the store: {e}"
        ))),
    }
}

/// Gives a new store's `-wal` and `-shm` files the store's own `0600` (SQLite creates them
/// with the database file's mode; this holds it whatever the umask).
fn restrict_companions(path: &Path, label: &str) -> Result<(), StoreError> {
    #[cfg(unix)]
    for suffix in ["-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt;
        let mut companion = path.as_os_str().to_owned();
        companion.push(suffix);
        match std::fs::set_permissions(&companion, std::fs::Permissions::from_mode(0o600)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(StoreError::Io(format!("{label}{suffix}: {e}"))),
        }
    }
    #[cfg(not(unix))]
    let _ = (path, label);
    Ok(())
}

/// The identity of the open store file, to notice when the file at its path is another one
/// (or none): a temp cleaner or a careless deploy deleted or replaced it. Writes into the
/// unlinked file would be acknowledged and lost at the next start, so they are refused.
struct FileWatch {
    path: PathBuf,
    /// `(st_dev, st_ino)` of the file opened.
    #[cfg(unix)]
    id: (u64, u64),
    /// Set once the file was found gone: every later write gets this error.
    lost: Option<StoreError>,
}

impl FileWatch {
    /// Watches the store file just opened at `path` (`None` where files have no inode).
    #[allow(clippy::unnecessary_wraps)] // `None` off Unix
    fn new(path: &Path) -> Result<Option<Self>, StoreError> {
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let meta = std::fs::metadata(path)
                .map_err(|e| StoreError::Io(format!("{}: {e}", path.display())))?;
            Ok(Some(Self {
                path: path.to_owned(),
                id: (meta.dev(), meta.ino()),
                lost: None,
            }))
        }
        #[cfg(not(unix))]
        {
            let _ = path;
            Ok(None)
        }
    }

    /// `Err` once the file at the path is not the one open: one `stat`, then nothing.
    fn check(&mut self) -> Result<(), StoreError> {
        if let Some(lost) = &self.lost {
            return Err(lost.clone());
        }
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let what = match std::fs::metadata(&self.path) {
                Ok(meta) if (meta.dev(), meta.ino()) == self.id => return Ok(()),
                Ok(_) => "replaced by another file",
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => "deleted",
                // Cannot tell (a permission changed on the directory): keep writing.
                Err(_) => return Ok(()),
            };
            let err = StoreError::Io(format!(
                "{}: the store file was {what} while the program was running; writes are \
                 refused, since they would go to a file no later start can see (restore the \
                 file and restart the program)",
                self.path.display()
            ));
            tracing::error!(store = %self.path.display(), error = %err, "the store file is gone");
            self.lost = Some(err.clone());
            Err(err)
        }
        #[cfg(not(unix))]
        Ok(())
    }
}

/// The writer thread: drain the queue, one transaction for all, commit, answer. Checks the
/// file at least once a second and before every batch.
fn write_loop(
    conn: &Connection,
    queue: &mpsc::Receiver<Job>,
    commits: &AtomicU64,
    mut watch: Option<FileWatch>,
) {
    // Set after a write failed for lack of space or an I/O error.
    let mut checkpoint = false;
    loop {
        let first = match queue.recv_timeout(WATCH_INTERVAL) {
            Ok(job) => job,
            Err(mpsc::RecvTimeoutError::Timeout) => {
                if let Some(watch) = &mut watch {
                    let _ = watch.check();
                }
                continue;
            }
            Err(mpsc::RecvTimeoutError::Disconnected) => return,
        };
        let batch = gather(first, MAX_BATCH, || queue.try_recv().ok());
        if let Some(Err(err)) = watch.as_mut().map(FileWatch::check) {
            for job in batch {
                job(Err(&err));
            }
            continue;
        }
        if checkpoint {
            // Fold the log grown while the disk was full back into the database; if that
            // fails too, try again before the next batch.
            checkpoint = !conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |r| {
                    r.get::<_, i64>(0)
                })
                .is_ok_and(|busy| busy == 0);
        }
        let outcome = run_batch(conn, batch);
        if let Err(err) = &outcome {
            checkpoint |= matches!(err, StoreError::Io(_));
        } else {
            commits.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Runs a batch in one transaction and answers each job. A failed `BEGIN` or `COMMIT`, or a
/// transaction SQLite rolled back by itself (it may on a full disk), leaves no transaction
/// open, and no job runs outside the batch's transaction.
fn run_batch(conn: &Connection, batch: Vec<Job>) -> Result<(), StoreError> {
    let end_transaction = || {
        if !conn.is_autocommit() {
            let _ = conn.execute_batch("ROLLBACK");
        }
    };
    if let Err(e) = conn.execute_batch("BEGIN IMMEDIATE") {
        end_transaction();
        let err = db_error(&e);
        for job in batch {
            job(Err(&err));
        }
        return Err(err);
    }
    let rolled_back = || {
        StoreError::Io("the transaction was rolled back by SQLite (disk full or I/O error)".into())
    };
    let mut replies: Vec<Reply> = Vec::with_capacity(batch.len());
    for job in batch {
        if conn.is_autocommit() {
            // An earlier job's failure ended the transaction: what ran in it is undone, and
            // this job must not run on its own.
            job(Err(&rolled_back()));
            continue;
        }
        replies.extend(job(Ok(conn)));
    }
    let outcome = if conn.is_autocommit() {
        Err(rolled_back())
    } else {
        conn.execute_batch("COMMIT").map_err(|e| db_error(&e))
    };
    if outcome.is_err() {
        end_transaction();
    }
    for reply in replies {
        reply(outcome.as_ref().copied());
    }
    outcome
}

/// Runs one job in a savepoint, undoing its changes if it fails. The savepoint's statements
/// are prepared once and kept (`prepare_cached`), not parsed again for every job.
fn in_savepoint<T>(
    conn: &Connection,
    f: impl FnOnce(&Connection) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    run_cached(conn, "SAVEPOINT job")?;
    let result = f(conn);
    let ended = if result.is_ok() {
        run_cached(conn, "RELEASE job")
    } else {
        run_cached(conn, "ROLLBACK TO job").and_then(|()| run_cached(conn, "RELEASE job"))
    };
    // The job's own error says more than the savepoint's (gone if SQLite rolled back).
    let value = result?;
    ended?;
    Ok(value)
}

/// Runs a statement without values (a savepoint's), prepared once per connection.
fn run_cached(conn: &Connection, text: &str) -> Result<(), StoreError> {
    conn.prepare_cached(text)
        .and_then(|mut stmt| stmt.execute([]))
        .map(|_| ())
        .map_err(|e| db_error(&e))
}

/// Checks that the database is a retry store (or empty), refuses a newer schema, and applies
/// the missing migrations, all in one `BEGIN IMMEDIATE` transaction.
fn prepare(conn: &Connection, label: &str) -> Result<(), StoreError> {
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| open_error(label, &e))?;
    conn.execute_batch("BEGIN IMMEDIATE")
        .map_err(|e| open_error(label, &e))?;
    let result = migrate(conn, label);
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    conn.execute_batch(end).map_err(|e| open_error(label, &e))?;
    result
}

fn migrate(conn: &Connection, label: &str) -> Result<(), StoreError> {
    let err = |e: rusqlite::Error| open_error(label, &e);
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
            path: label.to_owned(),
            reason: format!(
                "it is another program's SQLite database (application_id {app_id:#x}, \
                 user_version {version}, {tables} tables)"
            ),
        });
    }
    let version = u32::try_from(version).map_err(|_| StoreError::NotAStore {
        path: label.to_owned(),
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
fn open_error(label: &str, e: &rusqlite::Error) -> StoreError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase) => StoreError::NotAStore {
            path: label.to_owned(),
            reason: "it is not a SQLite database".into(),
        },
        Some(ErrorCode::DatabaseCorrupt) => StoreError::NotAStore {
            path: label.to_owned(),
            reason: "the SQLite database is damaged".into(),
        },
        Some(ErrorCode::CannotOpen | ErrorCode::PermissionDenied | ErrorCode::ReadOnly) => {
            StoreError::Io(format!("{label}: {e}"))
        }
        _ => StoreError::Backend(format!("{label}: {e}")),
    }
}

pub(super) fn db_error(e: &rusqlite::Error) -> StoreError {
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
pub(crate) fn sql(e: rusqlite::Error) -> StoreError {
    db_error(&e)
}

/// Runs a statement that changes calls; returns how many it changed.
fn execute(conn: &Connection, statement: &Statement) -> Result<u64, StoreError> {
    conn.prepare_cached(statement.text(Dialect::Sqlite))
        .and_then(|mut stmt| stmt.execute(params_from_iter(&statement.params)))
        .map(|n| n as u64)
        .map_err(sql)
}

/// Runs a query, decoding each row with `decode`.
fn query<T>(
    conn: &Connection,
    text: &str,
    params: impl rusqlite::Params,
    decode: impl Fn(&Row<'_>) -> Result<T, StoreError>,
) -> Result<Vec<T>, StoreError> {
    let mut stmt = conn.prepare_cached(text).map_err(sql)?;
    let mut rows = stmt.query(params).map_err(sql)?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// The calls' records a statement selects.
fn records(conn: &Connection, statement: &Statement) -> Result<Vec<CallRecord>, StoreError> {
    query(
        conn,
        statement.text(Dialect::Sqlite),
        params_from_iter(&statement.params),
        |row| rows::record(row),
    )
}

/// Claims up to `limit` of the earliest claimable calls of `functions` for `worker`, in the
/// writer's transaction.
///
/// Each of the three kinds of claimable call (pending and waiting ones due, running ones whose
/// lease ran out) is read in the order of an index (`calls_due`, `calls_lease`: state, then
/// time) and stops at `limit` rows, so a claim reads about `limit` rows whatever the number of
/// calls stored, succeeded or due; the function is checked on each row read (`+function`
/// keeps the planner off `calls_function`, which would read every due call and sort them).
/// Calls due at the same millisecond are taken in the order they were stored.
fn claim_in(
    conn: &Connection,
    worker: &str,
    functions: &[String],
    limit: usize,
    lease: Duration,
    now: SystemTime,
) -> Result<Vec<Claim>, StoreError> {
    let (marks, mut values) = function_list(functions, 5);
    let text = format!(
        "UPDATE calls SET state = 'running', worker = ?1, lease_until = ?2, fence = fence + 1, \
         next_due_at = NULL, updated_at = ?3 \
         WHERE cid IN (SELECT cid FROM ({pending} UNION ALL {waiting} UNION ALL {expired}) \
           ORDER BY t LIMIT ?4) \
         RETURNING {COLUMNS}",
        pending = claimable("'pending'", "next_due_at", &marks),
        waiting = claimable("'waiting'", "next_due_at", &marks),
        expired = claimable("'running'", "lease_until", &marks),
    );
    let mut args = vec![
        Value::Text(worker.to_owned()),
        Value::Integer(later(now, lease)),
        Value::Integer(to_millis(now)),
        Value::Integer(i64::try_from(limit).unwrap_or(i64::MAX)),
    ];
    args.append(&mut values);
    query(conn, &text, params_from_iter(args), |row| rows::record(row))
        .map(|records| records.into_iter().map(Claim::from).collect())
}

/// The first `?4` calls of the functions `marks` in `state` whose `time` column has come
/// (`?3`), earliest first, read in the order of the index on `(state, time)`.
fn claimable(state: &str, time: &str, marks: &str) -> String {
    format!(
        "SELECT * FROM (SELECT cid, {time} AS t FROM calls \
         WHERE state = {state} AND {time} <= ?3 AND +function IN ({marks}) \
         AND +function NOT IN (SELECT function FROM paused_functions) \
         ORDER BY {time} LIMIT ?4)"
    )
}

/// `?N, ?N+1, ...` for the function names, and the names as values.
fn function_list(functions: &[String], first: usize) -> (String, Vec<Value>) {
    let marks: Vec<String> = (0..functions.len())
        .map(|i| format!("?{}", first + i))
        .collect();
    let values = functions.iter().map(|f| Value::Text(f.clone())).collect();
    (marks.join(", "), values)
}

impl Runner for SqliteBackend {
    fn execute(&self, statement: Statement) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.write(move |conn| execute(conn, &statement))
    }

    fn records(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<CallRecord>, StoreError>> {
        self.read(move |conn| records(conn, &statement))
    }

    fn counts(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<StatsRow>, StoreError>> {
        self.decoded(statement, |row| rows::stats_row(row))
    }

    fn paused_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<PausedFunction>, StoreError>> {
        self.decoded(statement, |row| rows::paused(row))
    }
}

impl LimitRunner for SqliteBackend {
    fn limit_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<FunctionLimit>, StoreError>> {
        self.decoded(statement, |row| limits::limit_row(row))
    }
}

impl SqliteBackend {
    /// Runs a query of one shared statement on the reader, decoding each row with `decode`.
    fn decoded<T: Send + 'static>(
        &self,
        statement: Statement,
        decode: fn(&Row<'_>) -> Result<T, StoreError>,
    ) -> BoxFuture<'static, Result<Vec<T>, StoreError>> {
        self.read(move |conn| {
            query(
                conn,
                statement.text(Dialect::Sqlite),
                params_from_iter(&statement.params),
                decode,
            )
        })
    }
}

impl HistoryRunner for SqliteBackend {
    /// One job of the writer: the statements share its savepoint and its transaction.
    fn execute_all(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, StoreError>> {
        self.write(move |conn| statements.iter().map(|s| execute(conn, s)).collect())
    }

    fn attempt_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<history::AttemptRecord>, StoreError>> {
        self.decoded(statement, |row| history::decode(row))
    }

    fn audit_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<super::audit::AuditRecord>, StoreError>> {
        self.decoded(statement, |row| super::audit::decode(row))
    }
}

impl browse::BrowseRunner for SqliteBackend {
    fn items(
        &self,
        statement: Statement,
        shape: browse::Shape,
    ) -> BoxFuture<'_, Result<Vec<browse::Item>, StoreError>> {
        self.read(move |conn| {
            query(
                conn,
                statement.text(Dialect::Sqlite),
                params_from_iter(&statement.params),
                |row| browse::decode(shape, row),
            )
        })
    }
}

impl heartbeats::HeartbeatRunner for SqliteBackend {
    fn heartbeat_items(
        &self,
        statement: Statement,
        shape: heartbeats::Shape,
    ) -> BoxFuture<'_, Result<Vec<heartbeats::Item>, StoreError>> {
        self.read(move |conn| {
            query(
                conn,
                statement.text(Dialect::Sqlite),
                params_from_iter(&statement.params),
                |row| heartbeats::decoder(shape)(row),
            )
        })
    }

    fn execute_in_turn(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.write(move |conn| {
            let mut changed = 0;
            for statement in &statements {
                changed += execute(conn, statement)?;
            }
            Ok(changed)
        })
    }
}

/// Inserts one call: `pending`, or `waiting` with the progress of the caller's own attempt
/// (`persist = "on_failure"`).
const INSERT: &str = "INSERT INTO calls (cid, parent, function, args, state, attempts, \
    created_at, next_due_at, fence, last_wait_ns, updated_at, started_at, first_attempt_at, \
    last_attempt_at, last_error, trace_context) \
    VALUES (?1, ?2, ?3, ?4, ?7, ?8, ?5, ?6, 0, ?9, ?5, ?10, ?11, ?11, ?12, ?13)";

/// Inserts checked calls on `conn` (the writer's, or the caller's own in
/// [`SqliteBackend::enqueue_in`]); the caller commits or rolls back.
pub(crate) fn insert_calls(
    conn: &Connection,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), StoreError> {
    let mut insert = conn.prepare_cached(INSERT).map_err(sql)?;
    for call in calls {
        let tried = call.tried.as_ref();
        let result = insert.execute(params![
            call.cid.to_string(),
            call.parent.map(|p| p.to_string()),
            call.function,
            call.args,
            to_millis(now),
            to_millis(call.due.unwrap_or(now)),
            if tried.is_some() {
                "waiting"
            } else {
                "pending"
            },
            tried.map_or(0, |t| t.progress.attempts),
            tried.map_or(0, |t| saturating_i64(t.progress.last_wait_ns)),
            tried.and_then(|t| t.progress.started_at).map(to_millis),
            tried.map(|t| to_millis(t.progress.attempt_started)),
            tried.map(|t| t.error.clone()),
            call.trace_context,
        ]);
        match result {
            Ok(_) => {
                // The caller's own failed attempt, as the first of the call's history.
                if let Some(t) = tried {
                    execute(conn, &history::tried(call.cid, t, now))?;
                }
            }
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                return Err(StoreError::Duplicate(call.cid));
            }
            Err(e) => return Err(sql(e)),
        }
    }
    Ok(())
}

impl Backend for SqliteBackend {
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
        self.write(move |conn| insert_calls(conn, &calls, now))
    }

    fn enqueue_unique(
        &self,
        call: NewCall,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<super::Enqueued, StoreError>> {
        if let Err(err) = super::unique::check(&call) {
            return Box::pin(async move { Err(err) });
        }
        self.write(move |conn| super::unique::sqlite(conn, &call, now))
    }

    /// SQLite's claim: one writer, so no row locks; the earliest claimable calls of the
    /// functions, leased in one `UPDATE ... RETURNING` per group: first each limited function
    /// with room (its limit minus its calls running now, counted in the same transaction, so
    /// no other claim sees the same room), then the unlimited ones.
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
        let (worker, functions) = (worker.to_owned(), functions.to_vec());
        self.write(move |conn| {
            let (rooms, unlimited) = limits::sqlite_rooms(conn, &functions, now)?;
            let mut claimed = Vec::new();
            for (function, room) in rooms {
                let want = room.min(limit - claimed.len());
                if want == 0 {
                    break;
                }
                let group = [function];
                claimed.extend(claim_in(conn, &worker, &group, want, lease, now)?);
            }
            let want = limit - claimed.len();
            if want > 0 && !unlimited.is_empty() {
                claimed.extend(claim_in(conn, &worker, &unlimited, want, lease, now)?);
            }
            Ok(claimed)
        })
    }

    statements::shared_transitions!();
    browse::browse_methods!();
    heartbeats::heartbeat_methods!();
    history::history_methods!();
    limits::limit_methods!();

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

    /// The result goes in the success's own statement, with the attempt's history.
    fn complete_with_result(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        result: Option<String>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let (reply, answer) = oneshot::channel();
        let success = Success::new(cid, fence, attempts, attempt_started, result, now, reply);
        self.succeed(success, answer)
    }

    /// SQLite's claimable time: a lease's expiry for a running call, else its due time.
    fn next_due<'a>(
        &'a self,
        functions: &'a [String],
    ) -> BoxFuture<'a, Result<Option<SystemTime>, StoreError>> {
        if functions.is_empty() {
            return Box::pin(async { Ok(None) });
        }
        let (marks, values) = function_list(functions, 1);
        // The earliest of three index reads (state, then time), each stopping at its first
        // row of these functions: it reads a few rows whatever the number of calls stored.
        let first = |state: &str, time: &str, full: bool| {
            format!(
                "SELECT (SELECT {time} FROM calls WHERE state = {state} AND {time} IS NOT NULL \
                 AND +function IN ({marks}) \
                 AND +function NOT IN (SELECT function FROM paused_functions){full} \
                 ORDER BY {time} LIMIT 1) AS t",
                full = if full {
                    format!(" AND +function NOT IN ({})", limits::SQLITE_FULL)
                } else {
                    String::new()
                },
            )
        };
        let query = format!(
            "SELECT min(t) FROM ({} UNION ALL {} UNION ALL {})",
            first("'pending'", "next_due_at", true),
            first("'waiting'", "next_due_at", true),
            first("'running'", "lease_until", false),
        );
        self.read(move |conn| {
            conn.prepare_cached(&query)
                .and_then(|mut stmt| {
                    stmt.query_row(params_from_iter(values), |r| r.get::<_, Option<i64>>(0))
                })
                .map(|t| t.map(from_millis))
                .map_err(sql)
        })
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::{SqliteBackend, Synchronous};
    use crate::durable::{Backend, NewCall, StoreError};
    use std::os::unix::fs::PermissionsExt;
    use std::time::SystemTime;

    fn mode(path: &std::path::Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[tokio::test]
    async fn a_new_store_and_its_wal_and_shm_are_private_to_their_owner() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        let backend = SqliteBackend::open_file(&path, Synchronous::Full, true).unwrap();
        backend
            .enqueue(vec![NewCall::new("f", "[]")], SystemTime::now())
            .await
            .unwrap();
        for name in ["calls.db", "calls.db-wal", "calls.db-shm"] {
            let file = dir.path().join(name);
            assert_eq!(mode(&file), 0o600, "{name}");
        }
    }

    #[tokio::test]
    async fn a_deleted_or_replaced_store_file_refuses_writes() {
        for replace in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("calls.db");
            let backend = SqliteBackend::open_file(&path, Synchronous::Full, true).unwrap();
            let enqueue = || backend.enqueue(vec![NewCall::new("f", "[]")], SystemTime::now());
            enqueue().await.unwrap();
            std::fs::remove_file(&path).unwrap();
            if replace {
                std::fs::write(&path, b"").unwrap();
            }
            for _ in 0..2 {
                let err = enqueue().await.unwrap_err();
                assert!(matches!(err, StoreError::Io(_)), "{err:?}");
                let text = err.to_string();
                let what = if replace { "replaced" } else { "deleted" };
                assert!(
                    text.contains(&path.display().to_string()) && text.contains(what),
                    "{text}"
                );
            }
        }
    }

    /// A full database (`max_page_count` reached: SQLite's `SQLITE_FULL`, as on a full disk)
    /// fails the writes clearly, and once there is room again the store writes and claims
    /// with no restart.
    #[tokio::test]
    async fn a_full_database_fails_writes_and_recovers_when_room_is_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        let backend = SqliteBackend::open_file(&path, Synchronous::Off, true).unwrap();
        let pages: i64 = backend
            .write(|conn| {
                conn.query_row("PRAGMA page_count", [], |r| r.get(0))
                    .map_err(super::sql)
            })
            .await
            .unwrap();
        backend
            .write(move |conn| {
                conn.query_row(&format!("PRAGMA max_page_count = {pages}"), [], |_| Ok(()))
                    .map_err(super::sql)
            })
            .await
            .unwrap();
        let big = format!("[\"{}\"]", "x".repeat(64 * 1024));
        // Many writes in one batch: the later ones must not run outside a transaction.
        let writes: Vec<_> = (0..20)
            .map(|_| backend.enqueue(vec![NewCall::new("f", big.clone())], SystemTime::now()))
            .collect();
        let mut failed = 0;
        for write in writes {
            if let Err(err) = write.await {
                assert!(matches!(err, StoreError::Io(_)), "{err:?}");
                assert!(err.to_string().contains("full"), "{err}");
                failed += 1;
            }
        }
        assert_eq!(failed, 20, "no page was free");
        backend
            .write(|conn| {
                conn.query_row("PRAGMA max_page_count = 1000000", [], |_| Ok(()))
                    .map_err(super::sql)
            })
            .await
            .unwrap();
        backend
            .enqueue(vec![NewCall::new("f", big)], SystemTime::now())
            .await
            .unwrap();
        let claimed = backend
            .claim(
                "w",
                &["f".to_owned()],
                10,
                std::time::Duration::from_secs(30),
                SystemTime::now(),
            )
            .await
            .unwrap();
        assert_eq!(
            claimed.len(),
            1,
            "only the call stored after the room came back"
        );
        assert!(backend.write(|conn| Ok(conn.is_autocommit())).await.is_ok());
    }

    /// Successes queued while the writer is busy are recorded by one job in one transaction,
    /// each fenced on its own: the one with a stale fence changes nothing and is told so, the
    /// others succeed with their attempt in the history.
    #[tokio::test]
    async fn a_batch_of_successes_numbers_trims_and_keeps_results_as_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let backend =
            SqliteBackend::open_file(&dir.path().join("calls.db"), Synchronous::Off, true).unwrap();
        let calls: Vec<NewCall> = (0..3).map(|_| NewCall::new("f", "[]")).collect();
        let now = SystemTime::now();
        backend.enqueue(calls.clone(), now).await.unwrap();
        // The first call has 25 attempts recorded already (say, before a requeue).
        let first = calls[0].cid.to_string();
        backend
            .write(move |conn| {
                for n in 1..=25 {
                    conn.execute(
                        "INSERT INTO call_attempts VALUES (?1, ?2, 0, 0, 'old', 'failed', NULL)",
                        rusqlite::params![first, n],
                    )
                    .map_err(super::sql)?;
                }
                Ok(())
            })
            .await
            .unwrap();
        let lease = std::time::Duration::from_secs(30);
        let claims = backend
            .claim("w", &["f".to_owned()], 3, lease, now)
            .await
            .unwrap();
        assert_eq!(claims.len(), 3);
        let text = "{ \"a\" : [1, 2.50], \"\\u00e9\": \"x\\\"y\" }";
        // The batch's own statements (not the fallback, one success at a time).
        let batch: Vec<super::Success> = claims
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let result = (i != 2).then(|| text.to_owned());
                let reply = tokio::sync::oneshot::channel().0;
                super::Success::new(c.record.cid, c.fence, 2, now, result, now, reply)
            })
            .collect();
        let recorded = backend
            .write(move |conn| super::record_many(conn, &batch))
            .await
            .unwrap();
        assert_eq!(recorded, vec![true; 3]);
        let store = crate::durable::Store::from_backend(std::sync::Arc::new(backend));
        for (i, claim) in claims.iter().enumerate() {
            let cid = claim.record.cid;
            let record = store.get(cid).await.unwrap().unwrap();
            assert_eq!(record.attempts, 2);
            assert_eq!(record.worker, None);
            assert_eq!(
                record.result.as_deref(),
                (i != 2).then_some(text),
                "the text as given"
            );
            let history = store.attempts(cid).await.unwrap();
            let numbers: Vec<u32> = history.iter().map(|a| a.attempt).collect();
            if cid == calls[0].cid {
                assert_eq!(
                    numbers,
                    (7..=26).collect::<Vec<_>>(),
                    "the latest 20, then 26"
                );
            } else {
                assert_eq!(numbers, vec![1]);
            }
            assert_eq!(history.last().unwrap().worker.as_deref(), Some("w"));
        }
    }

    #[tokio::test]
    async fn queued_successes_are_recorded_together_each_under_its_fence() {
        use crate::durable::{AttemptOutcome, CallState};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        let backend = SqliteBackend::open_file(&path, Synchronous::Off, true).unwrap();
        let calls: Vec<NewCall> = (0..40).map(|_| NewCall::new("f", "[]")).collect();
        let now = SystemTime::now();
        backend.enqueue(calls.clone(), now).await.unwrap();
        let lease = std::time::Duration::from_secs(30);
        let claims = backend
            .claim("w", &["f".to_owned()], 40, lease, now)
            .await
            .unwrap();
        assert_eq!(claims.len(), 40);
        // Hold the writer until every success is queued.
        let (release, held) = std::sync::mpsc::channel::<()>();
        let busy = backend.write(move |_| {
            held.recv().unwrap();
            Ok(())
        });
        let before = backend.commits();
        let stale = claims[7].record.cid;
        let answers: Vec<_> = claims
            .iter()
            .map(|c| {
                let fence = if c.record.cid == stale { 0 } else { c.fence };
                let result = Some(format!("{}", c.fence));
                backend.complete_with_result(c.record.cid, fence, 1, now, result, now)
            })
            .collect();
        release.send(()).unwrap();
        busy.await.unwrap();
        for (claim, answer) in claims.iter().zip(answers) {
            let recorded = answer.await.unwrap();
            assert_eq!(recorded, claim.record.cid != stale, "{}", claim.record.cid);
        }
        assert!(
            backend.commits() - before <= 2,
            "the held job's transaction and one for the 40 successes, not {}",
            backend.commits() - before
        );
        let store = crate::durable::Store::from_backend(std::sync::Arc::new(backend));
        for claim in &claims {
            let record = store.get(claim.record.cid).await.unwrap().unwrap();
            let history = store.attempts(claim.record.cid).await.unwrap();
            if claim.record.cid == stale {
                assert_eq!(record.state, CallState::Running);
                assert!(history.is_empty(), "a stale fence wrote no attempt");
            } else {
                assert_eq!(record.state, CallState::Succeeded);
                assert_eq!(record.result.as_deref(), Some("1"));
                assert_eq!(history.len(), 1);
                assert_eq!(history[0].outcome, AttemptOutcome::Succeeded);
                assert_eq!(history[0].worker.as_deref(), Some("w"));
            }
        }
    }

    #[test]
    fn an_existing_file_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("calls.db");
        std::fs::write(&path, b"").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).unwrap();
        SqliteBackend::open_file(&path, Synchronous::Full, true).unwrap();
        assert_eq!(mode(&path), 0o640);
    }

    #[test]
    fn a_missing_directory_is_one_clear_message() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("no-such-dir").join("calls.db");
        let err = SqliteBackend::open_file(&path, Synchronous::Full, true).unwrap_err();
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        let text = err.to_string();
        assert_eq!(
            text.matches("no-such-dir").count(),
            1,
            "the path once: {text}"
        );
        assert!(text.contains("create the directory first"), "{text}");
    }
}
