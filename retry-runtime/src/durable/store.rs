//! The store's contract: the [`Backend`] trait every database implements, its errors, and
//! [`Store`], the cheap handle programs and workers hold.

use core::fmt;
use core::future::Future;
use core::pin::Pin;
use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::futures::Notified;
use tokio::sync::Notify;

use super::audit::{AuditEntry, AuditRecord};
use super::browse::{CallFilter, CallPage, CallQuery, MinuteCount, QueueLag};
use super::history::AttemptRecord;
use super::limits::FunctionLimit;
use super::record::{
    CallRecord, CallState, Claim, ListFilter, NewCall, PausedFunction, Progress, Stats,
};
use crate::CorrelationId;

/// A boxed, sendable future: what the [`Backend`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreError {
    /// The store URL is not one of the accepted forms.
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// [`Store::open_existing`] found no file at the path.
    NoStore {
        /// The path of the missing file.
        path: PathBuf,
    },
    /// [`Store::open_existing`] found a PostgreSQL database without the store's tables.
    NoSchema {
        /// The URL, without its password.
        url: String,
    },
    /// The file is not a SQLite database, is damaged, or is another program's database.
    NotAStore {
        /// The path, or the URL.
        path: String,
        /// What was found instead.
        reason: String,
    },
    /// The store was written by a newer version of this crate; it is left untouched.
    NewerSchema {
        /// The store's schema version.
        found: u32,
        /// The newest schema version this build knows.
        supported: u32,
    },
    /// A call with this ID is already in the store.
    Duplicate(CorrelationId),
    /// The request itself is wrong (arguments that are not JSON, purging an unfinished state).
    Invalid(String),
    /// The file could not be opened, read or written.
    Io(String),
    /// The database reported an error.
    Backend(String),
    /// The store's writer has stopped (the store is shutting down or crashed).
    Closed,
    /// A durable call was made before [`set_default_store`](crate::durable::set_default_store).
    NoDefaultStore,
}

/// What the list of accepted URLs says of PostgreSQL: nothing in a build that has it (an
/// operator's tool), how to get it in one that does not (a program's developer).
#[cfg(feature = "postgres")]
const POSTGRES_NOTE: &str = "";
#[cfg(not(feature = "postgres"))]
const POSTGRES_NOTE: &str = " (needs retry-runtime's `postgres` cargo feature)";

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StoreError::BadUrl { url, reason } => write!(
                f,
                "bad store URL `{url}`: {reason}; accepted forms: `sqlite:PATH` (also \
                 `sqlite://RELATIVE/PATH` and `sqlite:///ABSOLUTE/PATH`), \
                 `sqlite:PATH?synchronous=full|normal|off`, `sqlite::memory:`, \
                 `postgres://USER@HOST[:PORT]/DATABASE` or `postgresql://...`{POSTGRES_NOTE}"
            ),
            StoreError::NoStore { path } => write!(f, "no store at {}", path.display()),
            StoreError::NoSchema { url } => write!(
                f,
                "no store in the PostgreSQL database at {url}: it has no `retry_schema` table \
                 (a program creates it with `Store::open`; check the database and the \
                 search_path)"
            ),
            StoreError::NotAStore { path, reason } => {
                write!(f, "{path} is not a retry store: {reason}")
            }
            StoreError::NewerSchema { found, supported } => write!(
                f,
                "the store has schema version {found}, newer than the {supported} this build \
                 supports; upgrade retry-runtime to use it"
            ),
            StoreError::Duplicate(cid) => write!(f, "a call with ID {cid} is already stored"),
            StoreError::Invalid(why) => write!(f, "invalid request: {why}"),
            StoreError::Io(why) => write!(f, "store I/O error: {why}"),
            StoreError::Backend(why) => write!(f, "store error: {why}"),
            StoreError::Closed => f.write_str("the store is closed"),
            StoreError::NoDefaultStore => f.write_str(
                "no store for durable calls: call `retry_runtime::durable::set_default_store` \
                 first",
            ),
        }
    }
}

impl std::error::Error for StoreError {}

/// A database that keeps durable calls.
///
/// Every time is passed in (`now`), never read by the backend, so a test drives time by hand.
/// Every write about a claimed call names the claim's fencing token (`fence`) and returns
/// `Ok(false)`, changing nothing, when the token is no longer current (the lease expired and
/// another worker claimed the call, the call was released or cancelled) or the call is no
/// longer running. The conformance suite (`durable::conformance`) states the contract as tests.
pub trait Backend: Send + Sync + 'static {
    /// Inserts the calls as `pending`, due at their `due` or at `now`, all or none.
    ///
    /// # Errors
    /// [`StoreError::Duplicate`] if an ID is already stored (or repeated in `calls`),
    /// [`StoreError::Invalid`] if some `args` is not JSON or a call has a unique key (those
    /// go through [`enqueue_unique`](Backend::enqueue_unique)).
    fn enqueue(
        &self,
        calls: Vec<NewCall>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<(), StoreError>>;

    /// Inserts a call that has a [`Unique`](super::Unique) key, as [`enqueue`](Backend::enqueue)
    /// does, unless a call of the same function holds the key: then nothing is stored and
    /// the answer is that call's ID. Enforced by the store's unique index, so of many
    /// enqueuers of one key at once exactly one stores its call (see `durable/unique.rs`).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] if the call has no key or its `args` is not JSON,
    /// [`StoreError::Duplicate`] if its ID is already stored; by default (a store that keeps
    /// no keys) [`StoreError::Invalid`].
    fn enqueue_unique(
        &self,
        call: NewCall,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<super::Enqueued, StoreError>> {
        let _ = (call, now);
        Box::pin(async {
            Err(StoreError::Invalid(
                "this store does not keep unique keys".into(),
            ))
        })
    }

    /// Claims up to `limit` due calls of the given functions for `worker`: pending or waiting
    /// calls due at or before `now`, and running calls whose lease expired at or before `now`.
    /// Each becomes `running` with `lease_until = now + lease` and a raised fence; `attempts` is
    /// unchanged. Calls of other functions are left alone. The earliest due are taken first;
    /// the order of the returned claims is unspecified.
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        functions: &'a [String],
        limit: usize,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Claim>, StoreError>>;

    /// Extends a running call's lease to `now + lease`; `false` when fenced off.
    fn renew(
        &self,
        cid: CorrelationId,
        fence: u64,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Records success: the call becomes `succeeded` after `attempts` attempts, the last one
    /// started at `attempt_started`. `false` when fenced off.
    fn complete(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Records a failed attempt that will be retried: the call becomes `waiting`, due at `due`,
    /// with the engine's `progress` and the attempt's `error`. `false` when fenced off.
    fn reschedule(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Progress,
        due: SystemTime,
        error: String,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// Gives the call up: it becomes `dead` with `reason` (and `error`, if given, as its last
    /// error). `progress` is `None` when no attempt ran (arguments that no longer decode):
    /// the attempt counts are then left as they are. `false` when fenced off.
    fn bury(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Option<Progress>,
        reason: String,
        error: Option<String>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// A worker shutting down hands its running calls back: each becomes `waiting`, due at
    /// `now`, without a lease and with a raised fence (so the worker's late outcomes are
    /// refused). Returns how many were released.
    fn release<'a>(
        &'a self,
        worker: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Cancels a pending, waiting or running call (raising its fence, so a running attempt's
    /// outcome is refused). A running call's `attempts` counts the attempt it interrupts (one
    /// more): that attempt was started and may have done part of its work. `false` if the
    /// call is unknown or already finished.
    fn cancel(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// The call's record, if stored.
    fn get(&self, cid: CorrelationId) -> BoxFuture<'_, Result<Option<CallRecord>, StoreError>>;

    /// The records the filter selects (`older_than` counts back from `now`), oldest change
    /// first.
    fn list<'a>(
        &'a self,
        filter: &'a ListFilter,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<CallRecord>, StoreError>>;

    /// Puts a dead or cancelled call back to `pending`, due at `now`, with its attempts reset to
    /// 0 and its start cleared (its last error is kept). `false` if unknown or in another state.
    fn requeue(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>>;

    /// [`requeue`](Backend::requeue)s every dead call (of `function`, if given); returns how many.
    fn requeue_dead<'a>(
        &'a self,
        function: Option<&'a str>,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>>;

    /// Deletes the calls in `state` whose record last changed at least `older_than` before
    /// `now`; returns how many.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] unless `state` is finished (succeeded, dead or cancelled).
    fn purge(
        &self,
        state: CallState,
        older_than: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<u64, StoreError>>;

    /// Counts of calls per function and state.
    fn stats(&self) -> BoxFuture<'_, Result<Stats, StoreError>>;

    /// The earliest time a call of the given functions becomes claimable (a due time, or the
    /// expiry of a running call's lease); `None` if there is none. For the worker's timer.
    fn next_due<'a>(
        &'a self,
        functions: &'a [String],
    ) -> BoxFuture<'a, Result<Option<SystemTime>, StoreError>>;

    /// Of the calls `worker` runs (`held`: each call's ID and the fence of its claim), the
    /// ones that are no longer running under that fence (cancelled, released, or claimed by
    /// another worker after the lease expired): their attempts must stop. A worker asks once a
    /// second. The default reads each call with [`get`](Backend::get); the SQL stores answer
    /// in one statement.
    fn lost<'a>(
        &'a self,
        worker: &'a str,
        held: &'a [(CorrelationId, u64)],
    ) -> BoxFuture<'a, Result<Vec<CorrelationId>, StoreError>> {
        let _ = worker;
        Box::pin(async move {
            let mut lost = Vec::new();
            for &(cid, fence) in held {
                let record = self.get(cid).await?;
                if !record.is_some_and(|r| r.state == CallState::Running && r.fence == fence) {
                    lost.push(cid);
                }
            }
            Ok(lost)
        })
    }

    /// Counts per function and state of the pending and waiting calls due at or before
    /// `due_before`: a worker looks, once a minute, for calls of functions no worker knows
    /// that have waited long. The default reads the pending and waiting records with
    /// [`list`](Backend::list); the SQL stores count in one statement.
    fn overdue(&self, due_before: SystemTime) -> BoxFuture<'_, Result<Stats, StoreError>> {
        Box::pin(async move {
            let mut rows: Vec<super::record::StatsRow> = Vec::new();
            for state in [CallState::Pending, CallState::Waiting] {
                let filter = ListFilter {
                    state: Some(state),
                    ..ListFilter::default()
                };
                for r in self.list(&filter, due_before).await? {
                    if r.next_due_at.is_some_and(|d| d <= due_before) {
                        match rows
                            .iter_mut()
                            .find(|row| row.function == r.function && row.state == state)
                        {
                            Some(row) => row.count += 1,
                            None => rows.push(super::record::StatsRow {
                                function: r.function,
                                state,
                                count: 1,
                            }),
                        }
                    }
                }
            }
            Ok(super::rows::stats(rows))
        })
    }

    /// Wake-ups from other processes' enqueues, if the database can send them: the name of a
    /// function with new calls, or an empty name for "look at everything" (after a
    /// reconnection, when notifications may have been missed). `None` (the default): the
    /// database cannot, and workers rely on their timer and on this process's enqueues.
    fn wake_ups(&self) -> BoxFuture<'_, Result<Option<WakeUps>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    /// A page of the calls `query` selects, in its order, and the cursor of the next page
    /// (keyset pagination: as fast on the thousandth page as on the first). For the console.
    /// The default (a backend without the console's queries) is [`StoreError::Invalid`].
    fn browse<'a>(&'a self, query: &'a CallQuery) -> BoxFuture<'a, Result<CallPage, StoreError>> {
        let _ = query;
        super::browse::unsupported()
    }

    /// How many calls `filter` selects (the count a bulk action shows before it runs).
    fn count_matching<'a>(
        &'a self,
        filter: &'a CallFilter,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        let _ = filter;
        super::browse::unsupported()
    }

    /// Calls that succeeded or failed, per function and minute of their last change, since
    /// `since`, by function then minute; minutes without any are left out.
    fn calls_per_minute(
        &self,
        since: SystemTime,
    ) -> BoxFuture<'_, Result<Vec<MinuteCount>, StoreError>> {
        let _ = since;
        super::browse::unsupported()
    }

    /// Per function with due, unclaimed (pending or waiting) calls at `now`: how many, and the
    /// oldest due time. By function.
    fn queue_lag(&self, now: SystemTime) -> BoxFuture<'_, Result<Vec<QueueLag>, StoreError>> {
        let _ = now;
        super::browse::unsupported()
    }

    /// Pauses `function` across every worker of the store: from their next claim on, no
    /// worker claims its calls (attempts already running finish), and
    /// [`next_due`](Backend::next_due) leaves them out, until [`resume`](Backend::resume).
    /// Calls are still enqueued. `by` names who paused it. `false` if it already was paused
    /// (the first pause is kept). The default (a backend that cannot pause) is
    /// [`StoreError::Invalid`].
    fn pause<'a>(
        &'a self,
        function: &'a str,
        by: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (function, by, now);
        Box::pin(async {
            Err(StoreError::Invalid(
                "this store cannot pause functions".into(),
            ))
        })
    }

    /// Resumes a paused `function`: its due calls are claimed again. `false` if it was not
    /// paused. The default is [`StoreError::Invalid`].
    fn resume<'a>(&'a self, function: &'a str) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = function;
        Box::pin(async {
            Err(StoreError::Invalid(
                "this store cannot pause functions".into(),
            ))
        })
    }

    /// The paused functions, by name. The default (a backend that cannot pause): none.
    fn paused(&self) -> BoxFuture<'_, Result<Vec<PausedFunction>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Writes the limits a starting worker's functions declare (`max_running` of their
    /// attribute; `None`: the attribute has none, which clears an earlier one). An
    /// operator's limit ([`set_limit`](Backend::set_limit)) is left as it is: it wins. The
    /// default (a backend that cannot keep limits) accepts only `None`s, and is
    /// [`StoreError::Invalid`] otherwise.
    fn declare_limits<'a>(
        &'a self,
        limits: &'a [(String, Option<u32>)],
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = now;
        let any = limits.iter().any(|(_, l)| l.is_some());
        Box::pin(async move {
            if any {
                Err(StoreError::Invalid(
                    "this store cannot limit running attempts (`max_running`)".into(),
                ))
            } else {
                Ok(())
            }
        })
    }

    /// Sets an operator's limit of `function`'s running attempts across every worker
    /// (`Some(n)`), which wins over its attribute's `max_running`, or clears it (`None`), so
    /// the attribute's applies again. From their next claim on, workers start no more of its
    /// attempts than the limit minus those running. `true` if it changed a limit (clearing:
    /// if there was one).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for `Some(0)`, or a backend that cannot keep limits (the
    /// default).
    fn set_limit<'a>(
        &'a self,
        function: &'a str,
        max_running: Option<u32>,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (function, max_running, now);
        Box::pin(async {
            Err(StoreError::Invalid(
                "this store cannot limit running attempts (`max_running`)".into(),
            ))
        })
    }

    /// The functions with a limit (declared, set by an operator, or both), by name. The
    /// default (a backend that cannot keep limits): none.
    fn limits(&self) -> BoxFuture<'_, Result<Vec<FunctionLimit>, StoreError>> {
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Up to `limit` calls started by the call `cid` (whose parent it is), oldest first.
    fn children(
        &self,
        cid: CorrelationId,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<CallRecord>, StoreError>> {
        let _ = (cid, limit);
        super::browse::unsupported()
    }

    // == The workers' heartbeats (`durable/heartbeats.rs`) ==

    /// A worker registers itself when it starts (its first heartbeat; registering again
    /// clears its `stopped_at`), after deleting the rows of workers stopped or gone for more
    /// than [`WORKER_ROWS_KEPT`](super::WORKER_ROWS_KEPT) before `now`. The default (a
    /// backend that keeps no workers) does nothing.
    fn register_worker<'a>(
        &'a self,
        worker: &'a super::NewWorker,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<(), StoreError>> {
        let _ = (worker, now);
        Box::pin(async { Ok(()) })
    }

    /// A worker's heartbeat at `now`, with the calls it runs; `false` if it has no row (or
    /// stopped): it registers again. The default does nothing (`true`).
    fn worker_heartbeat<'a>(
        &'a self,
        id: &'a str,
        running: u32,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (id, running, now);
        Box::pin(async { Ok(true) })
    }

    /// A worker shut down cleanly at `now`; `false` if it has no row. The default does
    /// nothing (`false`).
    fn worker_stopped<'a>(
        &'a self,
        id: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<bool, StoreError>> {
        let _ = (id, now);
        Box::pin(async { Ok(false) })
    }

    /// The workers of the store with their status at `now` and the calls stored as running
    /// under their IDs: live first (oldest start first), then gone, then stopped. The default
    /// (a backend that keeps no workers): none.
    fn workers(
        &self,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<Vec<super::WorkerRecord>, StoreError>> {
        let _ = now;
        Box::pin(async { Ok(Vec::new()) })
    }

    // == Results and waiting (`durable/wait.rs`) ==

    /// Records success as [`complete`](Backend::complete) does, with the function's `Ok`
    /// value as JSON text in the same write (`None`: no value kept, for a type that is not
    /// `Serialize`, or `()`). The default (a backend that keeps no results) drops it.
    fn complete_with_result(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        result: Option<String>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        let _ = result;
        self.complete(cid, fence, attempts, attempt_started, now)
    }

    /// The IDs of calls that finish (succeed, are buried or cancelled) in any process, if the
    /// database can send them, for [`Store::wait`]: already listening when this returns, and
    /// an empty ID when some may have been missed (after a reconnection): every waiter then
    /// reads its call again. `None` (the default): the database cannot, and waiters rely on this
    /// process's writes and a slow poll.
    fn finishes(&self) -> BoxFuture<'_, Result<Option<Finishes>, StoreError>> {
        Box::pin(async { Ok(None) })
    }

    /// The call's recorded attempts (the latest [`ATTEMPTS_KEPT`](super::ATTEMPTS_KEPT)),
    /// oldest first. The default (a backend that keeps no history): none.
    fn attempts(
        &self,
        cid: CorrelationId,
    ) -> BoxFuture<'_, Result<Vec<AttemptRecord>, StoreError>> {
        let _ = cid;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Records an operator's action at `now`. The default (a backend that keeps no audit)
    /// is [`StoreError::Invalid`].
    fn record_audit(
        &self,
        entry: AuditEntry,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        let _ = (entry, now);
        Box::pin(async { Err(StoreError::Invalid("this store keeps no audit".into())) })
    }

    /// Up to `limit` recorded actions, newest first, those with an ID below `before` if
    /// given (the last ID of the previous page). The default: none.
    fn audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<AuditRecord>, StoreError>> {
        let _ = (before, limit);
        Box::pin(async { Ok(Vec::new()) })
    }
}

/// A handle on a durable store: cheap to clone, shared by the program that enqueues and the
/// workers that run the calls. Its methods read the clock for `now`; [`Store::backend`] reaches
/// the same operations with explicit times.
///
/// ```
/// use retry_runtime::durable::{CallState, NewCall, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("sqlite::memory:").await?;
/// let call = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
/// let cid = call.cid;
/// store.enqueue(vec![call]).await?;
///
/// let record = store.get(cid).await?.expect("just enqueued");
/// assert_eq!(record.state, CallState::Pending);
/// assert_eq!(store.stats().await?.count("mail::send", CallState::Pending), 1);
///
/// assert!(store.cancel(cid).await?);
/// assert_eq!(store.get(cid).await?.unwrap().state, CallState::Cancelled);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct Store {
    backend: Arc<dyn Backend>,
    wake: Arc<Notify>,
    /// Signalled by a cancel through this store (or a clone): local workers check at once
    /// which of their attempts to stop.
    cancels: Arc<Notify>,
    /// The calls this store (or a clone) saw finish, for [`Store::wait`].
    finished: tokio::sync::broadcast::Sender<String>,
}

impl fmt::Debug for Store {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

impl Store {
    /// A store on any backend.
    #[must_use]
    pub fn from_backend(backend: Arc<dyn Backend>) -> Store {
        Store {
            backend,
            wake: Arc::new(Notify::new()),
            cancels: Arc::new(Notify::new()),
            finished: tokio::sync::broadcast::channel(super::wait::LOCAL_BUFFER).0,
        }
    }

    /// The backend, for operations with explicit times.
    #[must_use]
    pub fn backend(&self) -> &dyn Backend {
        &*self.backend
    }

    /// Completes after the next [`enqueue`](Store::enqueue) through this store (or a clone):
    /// a local worker waits on it beside its timer. A wake-up may be spurious.
    pub fn notified(&self) -> Notified<'_> {
        self.wake.notified()
    }

    /// Enqueues the calls (all or none) and wakes local workers; see [`Backend::enqueue`].
    ///
    /// # Errors
    /// See [`Backend::enqueue`].
    pub async fn enqueue(&self, calls: Vec<NewCall>) -> Result<(), StoreError> {
        self.backend.enqueue(calls, SystemTime::now()).await?;
        // Wake every worker waiting now, and leave a permit for one about to wait.
        self.wake.notify_waiters();
        self.wake.notify_one();
        Ok(())
    }

    /// See [`Backend::claim`].
    ///
    /// # Errors
    /// A database error.
    pub async fn claim(
        &self,
        worker: &str,
        functions: &[String],
        limit: usize,
        lease: Duration,
    ) -> Result<Vec<Claim>, StoreError> {
        self.backend
            .claim(worker, functions, limit, lease, SystemTime::now())
            .await
    }

    /// See [`Backend::renew`].
    ///
    /// # Errors
    /// A database error.
    pub async fn renew(
        &self,
        cid: CorrelationId,
        fence: u64,
        lease: Duration,
    ) -> Result<bool, StoreError> {
        self.backend
            .renew(cid, fence, lease, SystemTime::now())
            .await
    }

    /// See [`Backend::complete`].
    ///
    /// # Errors
    /// A database error.
    pub async fn complete(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
    ) -> Result<bool, StoreError> {
        let completed = self
            .backend
            .complete(cid, fence, attempts, attempt_started, SystemTime::now())
            .await?;
        if completed {
            self.announce_finished(cid);
        }
        Ok(completed)
    }

    /// See [`Backend::reschedule`].
    ///
    /// # Errors
    /// A database error.
    pub async fn reschedule(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Progress,
        due: SystemTime,
        error: String,
    ) -> Result<bool, StoreError> {
        self.backend
            .reschedule(cid, fence, progress, due, error, SystemTime::now())
            .await
    }

    /// See [`Backend::bury`].
    ///
    /// # Errors
    /// A database error.
    pub async fn bury(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Option<Progress>,
        reason: String,
        error: Option<String>,
    ) -> Result<bool, StoreError> {
        let buried = self
            .backend
            .bury(cid, fence, progress, reason, error, SystemTime::now())
            .await?;
        if buried {
            self.announce_finished(cid);
        }
        Ok(buried)
    }

    /// See [`Backend::release`].
    ///
    /// # Errors
    /// A database error.
    pub async fn release(&self, worker: &str) -> Result<u64, StoreError> {
        self.backend.release(worker, SystemTime::now()).await
    }

    /// See [`Backend::cancel`].
    ///
    /// # Errors
    /// A database error.
    ///
    /// A running call's attempt is stopped: this process's workers learn of it at once,
    /// other processes' within a second ([`Backend::lost`]).
    pub async fn cancel(&self, cid: CorrelationId) -> Result<bool, StoreError> {
        let cancelled = self.backend.cancel(cid, SystemTime::now()).await?;
        if cancelled {
            self.cancels.notify_waiters();
            self.cancels.notify_one();
            self.announce_finished(cid);
        }
        Ok(cancelled)
    }

    /// Completes after the next cancel through this store (or a clone); may be spurious.
    pub(crate) fn cancel_notified(&self) -> Notified<'_> {
        self.cancels.notified()
    }

    /// See [`Backend::lost`].
    ///
    /// # Errors
    /// A database error.
    pub async fn lost(
        &self,
        worker: &str,
        held: &[(CorrelationId, u64)],
    ) -> Result<Vec<CorrelationId>, StoreError> {
        self.backend.lost(worker, held).await
    }

    /// See [`Backend::get`].
    ///
    /// # Errors
    /// A database error.
    pub async fn get(&self, cid: CorrelationId) -> Result<Option<CallRecord>, StoreError> {
        self.backend.get(cid).await
    }

    /// See [`Backend::list`].
    ///
    /// # Errors
    /// A database error.
    pub async fn list(&self, filter: &ListFilter) -> Result<Vec<CallRecord>, StoreError> {
        self.backend.list(filter, SystemTime::now()).await
    }

    /// See [`Backend::requeue`].
    ///
    /// # Errors
    /// A database error.
    pub async fn requeue(&self, cid: CorrelationId) -> Result<bool, StoreError> {
        let requeued = self.backend.requeue(cid, SystemTime::now()).await?;
        if requeued {
            self.wake.notify_waiters();
        }
        Ok(requeued)
    }

    /// See [`Backend::requeue_dead`].
    ///
    /// # Errors
    /// A database error.
    pub async fn requeue_dead(&self, function: Option<&str>) -> Result<u64, StoreError> {
        let n = self
            .backend
            .requeue_dead(function, SystemTime::now())
            .await?;
        if n > 0 {
            self.wake.notify_waiters();
        }
        Ok(n)
    }

    /// See [`Backend::purge`].
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for an unfinished state; a database error.
    pub async fn purge(&self, state: CallState, older_than: Duration) -> Result<u64, StoreError> {
        self.backend
            .purge(state, older_than, SystemTime::now())
            .await
    }

    /// See [`Backend::stats`].
    ///
    /// # Errors
    /// A database error.
    pub async fn stats(&self) -> Result<Stats, StoreError> {
        self.backend.stats().await
    }

    /// See [`Backend::next_due`].
    ///
    /// # Errors
    /// A database error.
    pub async fn next_due(&self, functions: &[String]) -> Result<Option<SystemTime>, StoreError> {
        self.backend.next_due(functions).await
    }

    /// See [`Backend::browse`].
    ///
    /// ```
    /// use retry_runtime::durable::{CallFilter, CallQuery, CallSort, CallState, NewCall, Store};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// store.enqueue((0..5).map(|i| NewCall::new("f", format!("[{i}]"))).collect()).await?;
    /// let mut query = CallQuery {
    ///     filter: CallFilter { state: Some(CallState::Pending), ..CallFilter::default() },
    ///     sort: CallSort::UpdatedDesc,
    ///     after: None,
    ///     limit: 3,
    /// };
    /// let first = store.browse(&query).await?;
    /// assert_eq!(first.calls.len(), 3);
    /// query.after = first.next;
    /// let second = store.browse(&query).await?;
    /// assert_eq!(second.calls.len(), 2);
    /// assert!(second.next.is_none());
    /// assert_eq!(store.count_matching(&query.filter).await?, 5);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A database error.
    pub async fn browse(&self, query: &CallQuery) -> Result<CallPage, StoreError> {
        self.backend.browse(query).await
    }

    /// See [`Backend::count_matching`].
    ///
    /// # Errors
    /// A database error.
    pub async fn count_matching(&self, filter: &CallFilter) -> Result<u64, StoreError> {
        self.backend.count_matching(filter).await
    }

    /// See [`Backend::calls_per_minute`].
    ///
    /// # Errors
    /// A database error.
    pub async fn calls_per_minute(
        &self,
        since: SystemTime,
    ) -> Result<Vec<MinuteCount>, StoreError> {
        self.backend.calls_per_minute(since).await
    }

    /// See [`Backend::queue_lag`] (at the current time).
    ///
    /// # Errors
    /// A database error.
    pub async fn queue_lag(&self) -> Result<Vec<QueueLag>, StoreError> {
        self.backend.queue_lag(SystemTime::now()).await
    }

    /// See [`Backend::children`].
    ///
    /// # Errors
    /// A database error.
    pub async fn children(
        &self,
        cid: CorrelationId,
        limit: usize,
    ) -> Result<Vec<CallRecord>, StoreError> {
        self.backend.children(cid, limit).await
    }

    /// Pauses `function` in the store, for every worker of it (in any process): none claims
    /// its calls from its next claim on, until [`resume`](Store::resume); attempts already
    /// running finish. `by` says who paused it (kept in the store, shown by `retry-store
    /// stats` and the console, and written to the audit with the count 1, or 0 when it
    /// already was paused). `false` if it already was paused. See [`Backend::pause`].
    ///
    /// ```
    /// use retry_runtime::durable::{NewCall, Store};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// store.enqueue(vec![NewCall::new("f", "[]")]).await?;
    /// let lease = Duration::from_secs(30);
    /// assert!(store.pause("f", "ops").await?);
    /// assert!(store.claim("w", &["f".into()], 10, lease).await?.is_empty());
    /// assert!(store.resume("f", "ops").await?);
    /// assert_eq!(store.claim("w", &["f".into()], 10, lease).await?.len(), 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A database error.
    pub async fn pause(&self, function: &str, by: &str) -> Result<bool, StoreError> {
        let now = SystemTime::now();
        let paused = self.backend.pause(function, by, now).await?;
        if paused {
            tracing::info!(target: "retry_runtime::durable", function, by, "function paused");
        }
        let entry = AuditEntry::new(by, "pause", function, u64::from(paused));
        self.backend.record_audit(entry, now).await?;
        Ok(paused)
    }

    /// Resumes a paused `function`: workers claim its due calls again (this process's at
    /// once, other processes' within a second). `by` says who resumed it (logged, and written
    /// to the audit). `false` if it was not paused. See [`Backend::resume`].
    ///
    /// # Errors
    /// A database error.
    pub async fn resume(&self, function: &str, by: &str) -> Result<bool, StoreError> {
        let resumed = self.backend.resume(function).await?;
        if resumed {
            tracing::info!(target: "retry_runtime::durable", function, by, "function resumed");
            self.wake();
        }
        let entry = AuditEntry::new(by, "resume", function, u64::from(resumed));
        self.backend.record_audit(entry, SystemTime::now()).await?;
        Ok(resumed)
    }

    /// See [`Backend::paused`].
    ///
    /// # Errors
    /// A database error.
    pub async fn paused(&self) -> Result<Vec<PausedFunction>, StoreError> {
        self.backend.paused().await
    }

    /// See [`Backend::attempts`] and [`AttemptRecord`](super::AttemptRecord).
    ///
    /// # Errors
    /// A database error.
    pub async fn attempts(&self, cid: CorrelationId) -> Result<Vec<AttemptRecord>, StoreError> {
        self.backend.attempts(cid).await
    }

    /// Records an operator's action, now: the console and `retry-store` call it after each
    /// action they run (a [`pause`](Store::pause) and a [`resume`](Store::resume) record
    /// theirs themselves). See [`AuditEntry`](super::AuditEntry).
    ///
    /// # Errors
    /// A database error; [`StoreError::Invalid`] for a backend that keeps no audit.
    pub async fn record_audit(&self, entry: AuditEntry) -> Result<(), StoreError> {
        self.backend.record_audit(entry, SystemTime::now()).await
    }

    /// See [`Backend::audit`] and [`AuditRecord`](super::AuditRecord).
    ///
    /// # Errors
    /// A database error.
    pub async fn audit(
        &self,
        before: Option<u64>,
        limit: usize,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        self.backend.audit(before, limit).await
    }

    /// Sets (`Some(n)`) or clears (`None`) an operator's limit of `function`'s attempts
    /// running at once across every worker of the store; see [`Backend::set_limit`]. It wins
    /// over the function's `max_running` until cleared, whatever workers start meanwhile;
    /// cleared, the attribute's limit (if any) applies again. Workers of this process see it
    /// at their next claim, others within a second. Also `retry-store limit FUNCTION N|none`.
    ///
    /// ```
    /// use retry_runtime::durable::{NewCall, Store};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// store.enqueue((0..5).map(|_| NewCall::new("billing::push", "{}")).collect()).await?;
    /// store.set_limit("billing::push", Some(2)).await?;
    /// let lease = Duration::from_secs(30);
    /// let f = ["billing::push".to_string()];
    /// assert_eq!(store.claim("w1", &f, 10, lease).await?.len(), 2);
    /// assert!(store.claim("w2", &f, 10, lease).await?.is_empty(), "2 are running");
    /// assert_eq!(store.limits().await?[0].effective(), Some(2));
    /// store.set_limit("billing::push", None).await?;
    /// assert_eq!(store.claim("w2", &f, 10, lease).await?.len(), 3);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::Invalid`] for `Some(0)` (pause the function instead); a database error.
    pub async fn set_limit(
        &self,
        function: &str,
        max_running: Option<u32>,
    ) -> Result<bool, StoreError> {
        let changed = self
            .backend
            .set_limit(function, max_running, SystemTime::now())
            .await?;
        tracing::info!(
            target: "retry_runtime::durable",
            function,
            max_running = ?max_running,
            "operator's limit of running attempts set",
        );
        // A raised or cleared limit may leave room for due calls.
        self.wake();
        Ok(changed)
    }

    /// The functions with a limit of running attempts, by name; see [`Backend::limits`].
    ///
    /// # Errors
    /// A database error.
    pub async fn limits(&self) -> Result<Vec<FunctionLimit>, StoreError> {
        self.backend.limits().await
    }

    /// Wakes this process's workers, as a local enqueue does.
    /// Enqueues a call with a [`Unique`](super::Unique) key, or finds the equal call that
    /// holds the key; wakes local workers if it stored one. See [`Backend::enqueue_unique`].
    ///
    /// ```
    /// use retry_runtime::durable::{NewCall, Store, Unique};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// let call = || NewCall::new("report::build", r#"{"day":"2026-12-07"}"#).unique(Unique::new("2026-12-07"));
    /// let first = store.enqueue_unique(call()).await?;
    /// let second = store.enqueue_unique(call()).await?;
    /// assert!(first.is_stored() && !second.is_stored());
    /// assert_eq!(first.cid(), second.cid());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// See [`Backend::enqueue_unique`].
    pub async fn enqueue_unique(&self, call: NewCall) -> Result<super::Enqueued, StoreError> {
        let done = self.backend.enqueue_unique(call, SystemTime::now()).await?;
        if done.is_stored() {
            self.wake();
        }
        Ok(done)
    }

    pub(crate) fn wake(&self) {
        self.wake.notify_waiters();
        self.wake.notify_one();
    }

    /// Tells this store's waiters ([`Store::wait`]) that the call `cid` finished.
    pub(crate) fn announce_finished(&self, cid: CorrelationId) {
        // No receiver: nobody waits.
        let _ = self.finished.send(cid.to_string());
    }

    /// The calls this store (or a clone) sees finish from now on.
    pub(crate) fn finished_here(&self) -> tokio::sync::broadcast::Receiver<String> {
        self.finished.subscribe()
    }
}

/// The checks of [`Backend::enqueue`] that are not SQL, made by every backend before it
/// writes: every call's arguments are JSON ([`StoreError::Invalid`]) and no ID is repeated
/// ([`StoreError::Duplicate`]).
pub(crate) fn check_new_calls(calls: &[NewCall]) -> Result<(), StoreError> {
    super::unique::check_batch(calls)?;
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

/// The check of [`Backend::purge`]: only finished calls are purged ([`StoreError::Invalid`]).
pub(crate) fn check_purgeable(state: CallState) -> Result<(), StoreError> {
    if state.is_finished() {
        Ok(())
    } else {
        Err(StoreError::Invalid(format!(
            "only finished calls (succeeded, dead, cancelled) can be purged, not {state} ones"
        )))
    }
}

/// The receiving end of a database's wake-ups; see [`Backend::wake_ups`].
pub type WakeUps = tokio::sync::mpsc::Receiver<String>;

/// The receiving end of a database's finished calls; see [`Backend::finishes`].
pub type Finishes = tokio::sync::broadcast::Receiver<String>;
