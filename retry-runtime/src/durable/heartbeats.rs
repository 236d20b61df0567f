//! The workers' heartbeats: every [`Worker`](super::Worker) registers itself in the store when
//! it starts (its ID, host, process and start time), writes a heartbeat every few seconds with
//! the number of calls it runs, and marks itself stopped when it shuts down cleanly;
//! [`Store::workers`] reads them back for operators (the console's workers page, `retry-store
//! workers`). A worker whose heartbeat is [`GONE_AFTER_MISSED`] intervals old is gone, and the
//! calls it still holds are listed with it: they come back when their leases run out.
//!
//! Each statement is written once for both SQL stores, as in
//! [`statements`](super::statements). A heartbeat is one write per worker per interval, never
//! one per call.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::millis::{earlier, from_millis, saturating_i32, to_millis};
use super::rows::StoredRow;
use super::statements::{Param, Runner, Sql, Statement};
use super::store::{BoxFuture, Store, StoreError};
use crate::CorrelationId;

/// How many heartbeat intervals a worker may miss before it is shown as gone.
pub const GONE_AFTER_MISSED: u32 = 3;

/// How long the row of a stopped or gone worker is kept: a worker that registers deletes the
/// ones older than this (1 day).
pub const WORKER_ROWS_KEPT: Duration = Duration::from_secs(24 * 3600);

/// The default heartbeat interval of a worker (5 s); see
/// [`WorkerBuilder::heartbeat_interval`](super::WorkerBuilder::heartbeat_interval).
pub const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(5);

/// The most running calls [`Store::workers`] reads to list what each worker holds.
const HELD_LISTED: i64 = 10_000;

/// A worker as it registers itself in the store.
///
/// ```
/// use retry_runtime::durable::NewWorker;
/// use std::time::{Duration, SystemTime};
///
/// let w = NewWorker::new("worker-1", SystemTime::now(), Duration::from_secs(5));
/// assert_eq!(w.pid, std::process::id());
/// assert!(!w.host.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewWorker {
    /// The worker's ID: the lease owner (`worker`) of the calls it claims.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process ID.
    pub pid: u32,
    /// When it started.
    pub started_at: SystemTime,
    /// How often it writes a heartbeat.
    pub heartbeat_interval: Duration,
}

impl NewWorker {
    /// A worker of this process, on this host.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        started_at: SystemTime,
        heartbeat_interval: Duration,
    ) -> Self {
        NewWorker {
            id: id.into(),
            host: host_name(),
            pid: std::process::id(),
            started_at,
            heartbeat_interval,
        }
    }
}

/// Whether a worker runs, as its heartbeats tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkerStatus {
    /// Its latest heartbeat is recent.
    Live,
    /// It missed [`GONE_AFTER_MISSED`] heartbeats without shutting down: it died, hangs or
    /// lost the store. Its calls come back to other workers when their leases run out.
    Gone,
    /// It shut down cleanly (and released its calls).
    Stopped,
}

impl WorkerStatus {
    /// `live`, `gone` or `stopped`.
    ///
    /// ```
    /// assert_eq!(retry_runtime::durable::WorkerStatus::Gone.as_str(), "gone");
    /// ```
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            WorkerStatus::Live => "live",
            WorkerStatus::Gone => "gone",
            WorkerStatus::Stopped => "stopped",
        }
    }
}

/// A worker of the store, from the row it registered and its latest heartbeat; see
/// [`Store::workers`]. Serialized (for the operator's tool) with times as RFC 3339 UTC text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorkerRecord {
    /// The worker's ID, as in the `worker` of the calls it claims.
    pub id: String,
    /// The host it runs on.
    pub host: String,
    /// Its process ID.
    pub pid: u32,
    /// When it started.
    #[serde(serialize_with = "ser::time")]
    pub started_at: SystemTime,
    /// Its latest heartbeat.
    #[serde(serialize_with = "ser::time")]
    pub heartbeat_at: SystemTime,
    /// How often it writes one.
    #[serde(serialize_with = "ser::millis")]
    pub heartbeat_interval: Duration,
    /// The calls it was running at its latest heartbeat.
    pub running: u32,
    /// When it shut down cleanly, if it did.
    #[serde(serialize_with = "ser::opt_time")]
    pub stopped_at: Option<SystemTime>,
    /// Live, gone or stopped, at the time the store was read.
    pub status: WorkerStatus,
    /// The calls stored as running under its ID (the leases it holds, or held when it went):
    /// for a gone worker, the calls that wait for their leases to run out.
    #[serde(serialize_with = "ser::cids")]
    pub held: Vec<CorrelationId>,
}

impl WorkerRecord {
    /// How old its latest heartbeat is at `now` (zero if it is in the future).
    #[must_use]
    pub fn heartbeat_age(&self, now: SystemTime) -> Duration {
        now.duration_since(self.heartbeat_at).unwrap_or_default()
    }

    /// Its status at `now`: stopped if it shut down, gone if its latest heartbeat is older
    /// than [`GONE_AFTER_MISSED`] intervals, else live.
    #[must_use]
    pub fn status_at(&self, now: SystemTime) -> WorkerStatus {
        if self.stopped_at.is_some() {
            WorkerStatus::Stopped
        } else if self.heartbeat_age(now) > self.heartbeat_interval * GONE_AFTER_MISSED {
            WorkerStatus::Gone
        } else {
            WorkerStatus::Live
        }
    }
}

impl Store {
    /// The workers of the store, live first (oldest start first), then gone, then stopped,
    /// each with the calls it holds; see [`Backend::workers`](super::Backend::workers).
    /// Rows of workers stopped or gone for more than [`WORKER_ROWS_KEPT`] are deleted when
    /// a worker registers.
    ///
    /// ```
    /// use retry_runtime::durable::{NewWorker, Store, WorkerStatus};
    /// use std::time::{Duration, SystemTime};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// // What a `Worker` does when it starts (and every `heartbeat_interval` after).
    /// let now = SystemTime::now();
    /// let me = NewWorker::new("worker-1", now, Duration::from_secs(5));
    /// store.backend().register_worker(&me, now).await?;
    ///
    /// let workers = store.workers().await?;
    /// assert_eq!(workers.len(), 1);
    /// assert_eq!(workers[0].id, "worker-1");
    /// assert_eq!(workers[0].pid, std::process::id());
    /// assert_eq!(workers[0].status, WorkerStatus::Live);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A database error.
    pub async fn workers(&self) -> Result<Vec<WorkerRecord>, StoreError> {
        self.backend().workers(SystemTime::now()).await
    }
}

/// The host name: the kernel's (Linux), else `/etc/hostname`, else `HOSTNAME` or
/// `COMPUTERNAME`, else `unknown`.
fn host_name() -> String {
    let from_file = |path: &str| {
        std::fs::read_to_string(path)
            .ok()
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    from_file("/proc/sys/kernel/hostname")
        .or_else(|| from_file("/etc/hostname"))
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|s| !s.is_empty()))
        .or_else(|| std::env::var("COMPUTERNAME").ok().filter(|s| !s.is_empty()))
        .unwrap_or_else(|| "unknown".to_owned())
}

// == Statements ==

/// Deletes the rows of workers stopped, or silent, since before `$1`.
static PRUNE: Sql = Sql::new("DELETE FROM {workers} WHERE COALESCE(stopped_at, heartbeat_at) < $1");

/// A worker registers (or registers again, after its row was deleted): its first heartbeat.
static REGISTER: Sql = Sql::new(
    "INSERT INTO {workers} (id, host, pid, started_at, heartbeat_at, running, stopped_at, \
     heartbeat_ms) VALUES ($1, $2, $3, $4, $5, 0, NULL, $6) \
     ON CONFLICT (id) DO UPDATE SET host = excluded.host, pid = excluded.pid, \
     started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at, running = 0, \
     stopped_at = NULL, heartbeat_ms = excluded.heartbeat_ms",
);

/// A heartbeat: 0 rows if the worker has no row (deleted) or stopped.
static HEARTBEAT: Sql = Sql::new(
    "UPDATE {workers} SET heartbeat_at = $2, running = $3 WHERE id = $1 AND stopped_at IS NULL",
);

/// A clean shutdown.
static STOPPED: Sql = Sql::new("UPDATE {workers} SET stopped_at = $2, running = 0 WHERE id = $1");

/// Every worker's row, read by [`worker_row`].
static WORKERS: Sql = Sql::new(
    "SELECT id, host, pid, started_at, heartbeat_at, running, stopped_at, heartbeat_ms \
     FROM {workers} ORDER BY started_at, id",
);

/// The calls stored as running, by worker (the lease owners), read by [`held_row`].
static HELD: Sql = Sql::new(
    "SELECT worker, cid FROM {calls} WHERE state = 'running' AND worker IS NOT NULL \
     ORDER BY worker, cid LIMIT $1",
);

pub(crate) fn prune(now: SystemTime) -> Statement {
    Statement {
        sql: &PRUNE,
        params: vec![Param::BigInt(earlier(now, WORKER_ROWS_KEPT))],
    }
}

pub(crate) fn register(worker: &NewWorker, now: SystemTime) -> Statement {
    Statement {
        sql: &REGISTER,
        params: vec![
            Param::Text(worker.id.clone()),
            Param::Text(worker.host.clone()),
            Param::Int(saturating_i32(worker.pid)),
            Param::BigInt(to_millis(worker.started_at)),
            Param::BigInt(to_millis(now)),
            Param::BigInt(i64::try_from(worker.heartbeat_interval.as_millis()).unwrap_or(i64::MAX)),
        ],
    }
}

pub(crate) fn heartbeat(id: &str, running: u32, now: SystemTime) -> Statement {
    Statement {
        sql: &HEARTBEAT,
        params: vec![
            Param::Text(id.to_owned()),
            Param::BigInt(to_millis(now)),
            Param::Int(saturating_i32(running)),
        ],
    }
}

pub(crate) fn stopped(id: &str, now: SystemTime) -> Statement {
    Statement {
        sql: &STOPPED,
        params: vec![Param::Text(id.to_owned()), Param::BigInt(to_millis(now))],
    }
}

pub(crate) fn workers() -> Statement {
    Statement {
        sql: &WORKERS,
        params: Vec::new(),
    }
}

pub(crate) fn held() -> Statement {
    Statement {
        sql: &HELD,
        params: vec![Param::BigInt(HELD_LISTED)],
    }
}

// == Rows ==

/// The shape of a row of the heartbeat queries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// [`workers`]: a worker's row.
    Worker,
    /// [`held`]: worker, cid.
    Held,
}

/// A decoded row of a [`Shape`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Item {
    Worker(WorkerRecord),
    Held { worker: String, cid: CorrelationId },
}

fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("a worker's row is malformed: {what}"))
}

fn int<R: StoredRow>(row: &R, idx: usize) -> Result<i64, StoreError> {
    row.int(idx)?
        .ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

fn text<R: StoredRow>(row: &R, idx: usize) -> Result<String, StoreError> {
    row.text(idx)?
        .ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

fn worker_row<R: StoredRow>(row: &R) -> Result<Item, StoreError> {
    let millis = int(row, 7)?;
    Ok(Item::Worker(WorkerRecord {
        id: text(row, 0)?,
        host: text(row, 1)?,
        pid: u32::try_from(int(row, 2)?).unwrap_or(0),
        started_at: from_millis(int(row, 3)?),
        heartbeat_at: from_millis(int(row, 4)?),
        running: u32::try_from(int(row, 5)?).unwrap_or(0),
        stopped_at: row.int(6)?.map(from_millis),
        heartbeat_interval: Duration::from_millis(u64::try_from(millis).unwrap_or(0)),
        // Set from the time of the read by `workers`.
        status: WorkerStatus::Live,
        held: Vec::new(),
    }))
}

fn held_row<R: StoredRow>(row: &R) -> Result<Item, StoreError> {
    let cid = text(row, 1)?;
    Ok(Item::Held {
        worker: text(row, 0)?,
        cid: cid
            .parse()
            .map_err(|_| malformed(&format!("`{cid}` is not a correlation ID")))?,
    })
}

/// The decoder of rows of `shape`, as a function pointer (what the PostgreSQL store takes).
pub(crate) fn decoder<R: StoredRow>(shape: Shape) -> fn(&R) -> Result<Item, StoreError> {
    match shape {
        Shape::Worker => worker_row::<R>,
        Shape::Held => held_row::<R>,
    }
}

/// What a SQL store supplies, beside [`Runner`], to run the heartbeat queries.
pub(crate) trait HeartbeatRunner: Runner {
    /// Runs a query whose rows have `shape`.
    fn heartbeat_items(
        &self,
        statement: Statement,
        shape: Shape,
    ) -> BoxFuture<'_, Result<Vec<Item>, StoreError>>;

    /// Runs statements that change rows one after the other, in one write where the store
    /// batches its writes (SQLite: one commit); returns how many rows they changed.
    fn execute_in_turn(&self, statements: Vec<Statement>)
        -> BoxFuture<'_, Result<u64, StoreError>>;
}

pub(crate) async fn register_worker<S: HeartbeatRunner + ?Sized>(
    store: &S,
    worker: &NewWorker,
    now: SystemTime,
) -> Result<(), StoreError> {
    // One write: a worker's start costs the store one commit.
    store
        .execute_in_turn(vec![prune(now), register(worker, now)])
        .await?;
    Ok(())
}

pub(crate) async fn list_workers<S: HeartbeatRunner + ?Sized>(
    store: &S,
    now: SystemTime,
) -> Result<Vec<WorkerRecord>, StoreError> {
    let mut workers: Vec<WorkerRecord> = store
        .heartbeat_items(workers(), Shape::Worker)
        .await?
        .into_iter()
        .filter_map(|item| match item {
            Item::Worker(w) => Some(w),
            Item::Held { .. } => None,
        })
        .collect();
    let held = store.heartbeat_items(held(), Shape::Held).await?;
    for item in held {
        if let Item::Held { worker, cid } = item {
            if let Some(w) = workers.iter_mut().find(|w| w.id == worker) {
                w.held.push(cid);
            }
        }
    }
    for w in &mut workers {
        w.status = w.status_at(now);
    }
    let rank = |s: WorkerStatus| match s {
        WorkerStatus::Live => 0,
        WorkerStatus::Gone => 1,
        WorkerStatus::Stopped => 2,
    };
    // Stable: within a status, the order of the query (oldest start first).
    workers.sort_by_key(|w| rank(w.status));
    Ok(workers)
}

/// The [`Backend`](super::Backend) heartbeat methods, for a store that is a
/// [`HeartbeatRunner`] (placed in its `impl Backend`).
macro_rules! heartbeat_methods {
    () => {
        fn register_worker<'a>(
            &'a self,
            worker: &'a $crate::durable::NewWorker,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<(), $crate::durable::StoreError>> {
            Box::pin($crate::durable::heartbeats::register_worker(
                self, worker, now,
            ))
        }

        fn worker_heartbeat<'a>(
            &'a self,
            id: &'a str,
            running: u32,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::statements::{changed, Runner};
            changed(self.execute($crate::durable::heartbeats::heartbeat(id, running, now)))
        }

        fn worker_stopped<'a>(
            &'a self,
            id: &'a str,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::statements::{changed, Runner};
            changed(self.execute($crate::durable::heartbeats::stopped(id, now)))
        }

        fn workers(
            &self,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::WorkerRecord>, $crate::durable::StoreError>,
        > {
            Box::pin($crate::durable::heartbeats::list_workers(self, now))
        }
    };
}
pub(crate) use heartbeat_methods;

// == The worker's end ==

/// A worker's registration and heartbeat loop.
#[derive(Debug)]
pub(crate) struct Heartbeats {
    every: Duration,
    started_at: SystemTime,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl Heartbeats {
    pub(crate) fn new(every: Duration) -> Self {
        Heartbeats {
            every,
            started_at: SystemTime::now(),
            task: Mutex::new(None),
        }
    }

    /// Registers the worker `id` and starts its heartbeat loop on the current runtime: every
    /// interval, one write with the number of calls `running` says it runs (`None`: the worker
    /// is gone, the loop ends). A heartbeat that finds no row (deleted while the worker was cut
    /// off from the store for a day) registers it again.
    pub(crate) async fn start(
        &self,
        store: &Store,
        id: &str,
        running: impl Fn() -> Option<usize> + Send + 'static,
    ) {
        let me = NewWorker::new(id, self.started_at, self.every);
        if let Err(e) = store
            .backend()
            .register_worker(&me, SystemTime::now())
            .await
        {
            tracing::warn!(
                target: "retry_runtime::durable",
                worker = %id,
                error = %e,
                "could not register the worker in the store; trying again at its next heartbeat",
            );
        }
        let store = store.clone();
        let every = self.every;
        let task = tokio::spawn(async move {
            let mut ticks = tokio::time::interval(every);
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await; // the first tick is now: registered just above
            loop {
                ticks.tick().await;
                let Some(n) = running() else { return };
                let n = u32::try_from(n).unwrap_or(u32::MAX);
                let now = SystemTime::now();
                let beat = match store.backend().worker_heartbeat(&me.id, n, now).await {
                    Ok(true) => Ok(()),
                    Ok(false) => store.backend().register_worker(&me, now).await,
                    Err(e) => Err(e),
                };
                if let Err(e) = beat {
                    tracing::debug!(
                        target: "retry_runtime::durable",
                        worker = %me.id,
                        error = %e,
                        "could not write the worker's heartbeat",
                    );
                }
            }
        });
        let old = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .replace(task);
        if let Some(old) = old {
            old.abort();
        }
    }

    /// Stops the heartbeat loop and marks the worker stopped in the store.
    pub(crate) async fn stop(&self, store: &Store, id: &str) {
        let task = self
            .task
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let Some(task) = task else {
            return; // never registered (no function to run)
        };
        task.abort();
        let _ = task.await;
        if let Err(e) = store.backend().worker_stopped(id, SystemTime::now()).await {
            tracing::warn!(
                target: "retry_runtime::durable",
                worker = %id,
                error = %e,
                "could not mark the worker stopped; it will be shown as gone",
            );
        }
    }
}

mod ser {
    use super::{CorrelationId, Duration, SystemTime};
    use crate::durable::format_time;
    use serde::ser::SerializeSeq;
    use serde::Serializer;

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference
    pub(super) fn time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(*t))
    }

    #[allow(clippy::ref_option)] // serde's `serialize_with` passes a reference
    pub(super) fn opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(*t)),
            None => s.serialize_none(),
        }
    }

    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(super) fn millis<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
    }

    pub(super) fn cids<S: Serializer>(cids: &[CorrelationId], s: S) -> Result<S::Ok, S::Error> {
        let mut seq = s.serialize_seq(Some(cids.len()))?;
        for cid in cids {
            seq.serialize_element(&cid.to_string())?;
        }
        seq.end()
    }
}

#[cfg(test)]
mod tests {
    use super::{WorkerRecord, WorkerStatus, GONE_AFTER_MISSED};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn a_worker_is_gone_after_missing_its_heartbeats() {
        let beat = UNIX_EPOCH + Duration::from_secs(1_000);
        let w = WorkerRecord {
            id: "w".into(),
            host: "h".into(),
            pid: 1,
            started_at: beat,
            heartbeat_at: beat,
            heartbeat_interval: Duration::from_secs(5),
            running: 0,
            stopped_at: None,
            status: WorkerStatus::Live,
            held: Vec::new(),
        };
        let limit = Duration::from_secs(5) * GONE_AFTER_MISSED;
        assert_eq!(w.status_at(beat + limit), WorkerStatus::Live);
        assert_eq!(
            w.status_at(beat + limit + Duration::from_millis(1)),
            WorkerStatus::Gone
        );
        let stopped = WorkerRecord {
            stopped_at: Some(beat),
            ..w
        };
        assert_eq!(stopped.status_at(beat + limit * 10), WorkerStatus::Stopped);
    }
}
