//! The durable executor: a worker claims due calls of the functions this program registered,
//! runs an attempt of each through the engine, renews its leases while they run, and records
//! what the engine decided.

use core::time::Duration;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::durable::heartbeats::{Heartbeats, DEFAULT_HEARTBEAT};
use crate::durable::registry::{self, Registration};
use crate::durable::{CallState, Claim, Progress, Store, StoreError};
use crate::engine::{Attempts, Decision};
use crate::run::durable::{Job, Verdict};
use crate::{Backoff, CorrelationId, Policy};

/// The time limit of a durable attempt whose function has no `timeout` of its own: 15 minutes.
/// An attempt that runs longer is stopped and counts as timed out, and its policy decides
/// what follows (another attempt, or a dead letter), so a hung call cannot hold a worker's
/// slot and renew its lease forever. Change it per worker with
/// [`WorkerBuilder::attempt_timeout`]; a function's own `timeout` always wins.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// How long free slots wait for more to free up before the worker claims into them anyway:
/// claims stay batched under load, and a slot is never left idle longer than this while
/// calls are due (even when the other slots hold attempts that never end).
const REFILL_WAIT: Duration = Duration::from_millis(20);

/// The longest an idle worker sleeps while one of its functions is paused, so that a resume
/// (from any process) is seen within it whatever the poll interval.
const PAUSE_CHECK: Duration = Duration::from_secs(1);

/// How often a worker asks the store which of its running calls it no longer holds
/// (cancelled from another process, or re-claimed after its lease ran out).
const LOST_CHECK: Duration = Duration::from_secs(1);

/// How long a due call of a function no worker of this program knows may wait before the
/// worker warns about it (once per name), and how often it looks.
const ORPHAN_AGE: Duration = Duration::from_secs(60);

/// Builds a [`Worker`]; see [`Worker::builder`].
#[derive(Debug, Clone)]
#[must_use = "a builder does nothing until `start`"]
pub struct WorkerBuilder {
    store: Store,
    concurrency: usize,
    lease: Duration,
    poll: Duration,
    batch: usize,
    id: Option<String>,
    retention: Option<Duration>,
    attempt_timeout: Option<Duration>,
    heartbeat: Duration,
}

impl WorkerBuilder {
    /// Attempts run at once (default 16).
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// How long a claim is the worker's before another worker may take the call (default
    /// 30 s). The worker renews it every third of it while the attempt runs, so only a worker
    /// that died (or lost the store) lets it run out.
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// The longest an idle worker sleeps before it looks at the store again (default 1 s).
    /// A local enqueue and the next due time wake it earlier.
    pub fn poll_interval(mut self, every: Duration) -> Self {
        self.poll = every;
        self
    }

    /// The most calls claimed in one transaction (default 64).
    pub fn batch(mut self, n: usize) -> Self {
        self.batch = n.max(1);
        self
    }

    /// How long succeeded calls are kept before the worker deletes them (default 1 day;
    /// `None` keeps them until purged), so the store stays small under steady load. Dead and
    /// cancelled calls are kept for a person to inspect (`retry-store purge` removes them).
    pub fn retention(mut self, keep: Option<Duration>) -> Self {
        self.retention = keep;
        self
    }

    /// The time limit of an attempt whose function has no `timeout` of its own (default
    /// [`DEFAULT_ATTEMPT_TIMEOUT`], 15 minutes; `None`: no limit). An attempt that runs into
    /// it is timed out and its policy decides what follows. A function's own `timeout` always
    /// wins, whether shorter or longer.
    ///
    /// An async attempt is dropped at the limit. A sync one cannot be: its thread cannot be
    /// killed, so it is abandoned (its result, if it ever comes, is ignored) and
    /// [`is_cancelled`](crate::is_cancelled) turns true inside it, for a body that checks.
    ///
    /// ```
    /// use retry_runtime::durable::{Store, Worker};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), retry_runtime::durable::StoreError> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// let worker = Worker::builder(store)
    ///     .attempt_timeout(Some(Duration::from_secs(120)))
    ///     .start();
    /// worker.shutdown(Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn attempt_timeout(mut self, limit: Option<Duration>) -> Self {
        self.attempt_timeout = limit;
        self
    }

    /// How often the worker writes its heartbeat in the store (default
    /// [`DEFAULT_HEARTBEAT`], 5 s; at least 10 ms): one write per interval with the number of
    /// calls it runs, read by [`Store::workers`] (the console's workers page, `retry-store
    /// workers`). A worker that misses [`GONE_AFTER_MISSED`](super::GONE_AFTER_MISSED) of them
    /// is shown as gone.
    ///
    /// ```
    /// use retry_runtime::durable::{Store, Worker};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), retry_runtime::durable::StoreError> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// let worker = Worker::builder(store)
    ///     .heartbeat_interval(Duration::from_secs(2))
    ///     .start();
    /// worker.shutdown(Duration::from_secs(1)).await;
    /// # Ok(())
    /// # }
    /// ```
    pub fn heartbeat_interval(mut self, every: Duration) -> Self {
        self.heartbeat = every.max(Duration::from_millis(10));
        self
    }

    /// The worker's name in the store's `worker` column (default: `worker-PID-RANDOM`).
    pub fn id(mut self, id: impl Into<String>) -> Self {
        self.id = Some(id.into());
        self
    }

    /// Starts the worker on the current tokio runtime (or the crate's shared one outside any
    /// runtime).
    #[must_use = "dropping the worker leaves it running; keep it to shut it down"]
    pub fn start(self) -> Worker {
        let id = self
            .id
            .clone()
            .unwrap_or_else(|| format!("worker-{}-{:08x}", std::process::id(), fastrand::u32(..)));
        let inner = Arc::new(Inner {
            store: self.store.clone(),
            id: id.clone(),
            lease: self.lease,
            poll: self.poll,
            batch: self.batch,
            refill: (self.concurrency.min(self.batch) / 2).max(1),
            retention: self.retention,
            attempt_timeout: self.attempt_timeout,
            held: Mutex::new(HashMap::new()),
            slots: Arc::new(Semaphore::new(self.concurrency)),
            concurrency: self.concurrency,
            freed: Notify::new(),
            stopping: AtomicBool::new(false),
            stop: Notify::new(),
            heartbeats: Heartbeats::new(self.heartbeat),
        });
        let join = crate::run::background::spawn(declare_then_run(Arc::clone(&inner)));
        Worker { inner, join, id }
    }
}

/// Runs the stored calls of the durable functions this program registered.
///
/// It keeps every free slot busy while calls are due (claiming in batches when many slots are
/// free), gives each attempt [`DEFAULT_ATTEMPT_TIMEOUT`] unless the function has a `timeout`
/// ([`WorkerBuilder::attempt_timeout`] changes it), and stops an attempt whose call was
/// cancelled: at once for a cancel through a clone of its [`Store`], within a second for a
/// cancel from another process. It also stops an attempt strictly before the lease it
/// believes it holds runs out, when the store could not renew it, so two workers never run
/// one call at once (but see [`is_cancelled`](crate::is_cancelled) for sync attempts, which
/// cannot be stopped from outside). Once a minute it warns, once per name, about calls due
/// for more than a minute under names no worker of this program knows.
///
/// ```
/// use retry_runtime::durable::{Store, Worker};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), retry_runtime::durable::StoreError> {
/// let store = Store::open("sqlite::memory:").await?;
/// let worker = Worker::builder(store.clone()).concurrency(4).start();
/// worker.shutdown(Duration::from_secs(1)).await;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct Worker {
    inner: Arc<Inner>,
    join: tokio::task::JoinHandle<JoinSet<()>>,
    id: String,
}

#[derive(Debug)]
struct Inner {
    store: Store,
    id: String,
    lease: Duration,
    poll: Duration,
    batch: usize,
    /// Free slots that make a claim worth its transaction.
    refill: usize,
    retention: Option<Duration>,
    attempt_timeout: Option<Duration>,
    /// The calls whose attempts run here: the fence of the claim, and how to stop them.
    held: Mutex<HashMap<CorrelationId, Held>>,
    /// One permit per attempt running: taken at the claim, given back as soon as the attempt
    /// has its verdict, so the next claim shares the transaction that records the verdict.
    slots: Arc<Semaphore>,
    concurrency: usize,
    /// Signalled when an attempt gives its slot back.
    freed: Notify,
    stopping: AtomicBool,
    stop: Notify,
    /// Its row in the store's workers and the loop that keeps it fresh.
    heartbeats: Heartbeats,
}

impl Worker {
    /// A builder for a worker on `store`.
    pub fn builder(store: Store) -> WorkerBuilder {
        WorkerBuilder {
            store,
            concurrency: 16,
            lease: Duration::from_secs(30),
            poll: Duration::from_secs(1),
            batch: 64,
            id: None,
            retention: Some(Duration::from_secs(24 * 3600)),
            attempt_timeout: Some(DEFAULT_ATTEMPT_TIMEOUT),
            heartbeat: DEFAULT_HEARTBEAT,
        }
    }

    /// The worker's name in the store.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Stops claiming, lets the attempts in progress finish for up to `grace`, abandons the
    /// rest and releases their leases, so another worker can take them at once.
    pub async fn shutdown(self, grace: Duration) {
        self.inner.stopping.store(true, Ordering::SeqCst);
        self.inner.stop.notify_waiters();
        self.inner.stop.notify_one();
        let Ok(mut running) = self.join.await else {
            return;
        };
        let drained = tokio::time::timeout(grace, async {
            while running.join_next().await.is_some() {}
        })
        .await;
        if drained.is_err() {
            running.abort_all();
            while running.join_next().await.is_some() {}
        }
        if let Err(e) = self.inner.store.release(&self.inner.id).await {
            tracing::warn!(
                target: "retry_runtime::durable",
                worker = %self.inner.id,
                error = %e,
                "could not release the worker's leases; they will expire",
            );
        }
        self.inner
            .heartbeats
            .stop(&self.inner.store, &self.inner.id)
            .await;
    }
}

/// How the claim loop retries when the store refuses a claim: 50 ms doubling to 5 s, for as
/// long as the worker runs (the engine's own rules, run by hand here).
const CLAIM_RETRIES: Policy = Policy::new()
    .max_retries(None)
    .backoff(Backoff::Exponential { factor: 2.0 })
    .delay(Duration::from_millis(50))
    .max_delay(Some(Duration::from_secs(5)));

/// How an attempt's outcome is recorded when the store is unreachable: three tries, 100 ms
/// then 300 ms apart (the fencing token makes a repeat harmless), then the lease is left to
/// expire.
const RECORD_RETRIES: Policy = Policy::new()
    .max_retries(Some(2))
    .backoff(Backoff::Exponential { factor: 3.0 })
    .delay(Duration::from_millis(100));

/// An attempt running here, as the lost-call check sees it.
#[derive(Debug, Clone)]
struct Held {
    fence: u64,
    /// What [`is_cancelled`](crate::is_cancelled) reads inside the attempt.
    cancelled: Arc<AtomicBool>,
    /// Signalled when the call is no longer this worker's: the attempt is abandoned.
    lost: Arc<Notify>,
}

/// Writes the `max_running` of this program's functions to the store, then runs the claim
/// loop: no claim before the limits are in the store.
async fn declare_then_run(inner: Arc<Inner>) -> JoinSet<()> {
    let store = &inner.store;
    if !crate::durable::limits::declare_at_start(store, &inner.id, &inner.stopping, &inner.stop)
        .await
    {
        return JoinSet::new();
    }
    run(inner).await
}

/// The claim loop. Returns the attempts still running when it stops.
///
/// It claims when it has a free slot and calls may be due: at start, after a wake-up (an
/// enqueue here, a notification from the database, a finished attempt) and when the next due
/// time comes. Otherwise it asks only for that next due time, so an idle worker makes one
/// cheap query per poll interval.
async fn run(inner: Arc<Inner>) -> JoinSet<()> {
    let names: Vec<String> = registry::registered()
        .into_iter()
        .map(str::to_owned)
        .collect();
    start_heartbeats(&inner, &names).await;
    let wake_ups = forward_wake_ups(&inner, &names).await;
    let checker = (!names.is_empty()).then(|| tokio::spawn(check_lost(Arc::clone(&inner))));
    let mut running = JoinSet::new();
    let mut claim_failures = Attempts::new();
    let mut may_be_due = true;
    let mut last_purge: Option<SystemTime> = None;
    let mut orphans = Orphans::default();
    // Since when slots have been free without a claim into them.
    let mut free_since: Option<Instant> = None;
    while !inner.stopping.load(Ordering::SeqCst) && !names.is_empty() {
        while running.try_join_next().is_some() {}
        purge_old(&inner, &mut last_purge).await;
        orphans.look(&inner, &names).await;
        let free = inner.slots.available_permits();
        if free == 0 {
            free_since = None;
        } else if free_since.is_none() {
            free_since = Some(Instant::now());
        }
        // Claims are made in batches: once half a batch of slots is free (or nothing runs),
        // not one call per finished attempt, which would cost a transaction per call. But a
        // free slot never waits longer than `REFILL_WAIT`, so attempts that do not end (or
        // end slowly) cannot keep due calls from the slots beside them.
        let waited = free_since.is_some_and(|t| t.elapsed() >= REFILL_WAIT);
        let ready = free > 0 && (free >= inner.refill || running.is_empty() || waited);
        // The next due time, when this round already asked for it.
        let mut next = None;
        if ready && !may_be_due {
            match inner.store.next_due(&names).await {
                Ok(Some(due)) if due <= SystemTime::now() => may_be_due = true,
                Ok(due) => next = Some(due),
                Err(_) => may_be_due = true, // let the claim report it and back off
            }
        }
        // The attempts whose verdicts are still being recorded hold no slot; at most as many
        // as the slots may be, so a slow store slows the claims instead of piling records up.
        let room = (2 * inner.concurrency).saturating_sub(running.len());
        if ready && may_be_due && room > 0 {
            let want = free.min(inner.batch).min(room);
            // The leases run from before the claim is sent: the store reads `now` first.
            let sent = Instant::now();
            match inner
                .store
                .claim(&inner.id, &names, want, inner.lease)
                .await
            {
                Ok(claims) => {
                    claim_failures = Attempts::new();
                    free_since = None;
                    // A full batch may leave more behind it; otherwise nothing else is due now.
                    may_be_due = claims.len() == want;
                    for claim in claims {
                        let Ok(permit) = Arc::clone(&inner.slots).acquire_owned().await else {
                            break;
                        };
                        let inner = Arc::clone(&inner);
                        running.spawn(async move {
                            attempt(&inner, claim, sent, permit).await;
                        });
                    }
                    if may_be_due {
                        continue;
                    }
                }
                Err(e) => {
                    claim_failures.start_attempt();
                    // Never stops: `CLAIM_RETRIES` has no limit.
                    let backoff = match claim_failures.decide(&CLAIM_RETRIES, true, None, None) {
                        Decision::Retry(pause) => pause,
                        Decision::Stop(_) => CLAIM_RETRIES.cap(Duration::MAX),
                    };
                    tracing::warn!(
                        target: "retry_runtime::durable",
                        worker = %inner.id,
                        error = %e,
                        retry_in = ?backoff,
                        "could not claim calls; backing off",
                    );
                    sleep_or_stop(&inner, backoff).await;
                    continue;
                }
            }
        }
        let wait = idle_wait(&inner, &names, ready, next, free_since).await;
        if wait.is_zero() {
            may_be_due = true;
            tokio::task::yield_now().await;
            continue;
        }
        tokio::select! {
            () = inner.store.notified() => may_be_due = true,
            Some(_) = running.join_next(), if !running.is_empty() => may_be_due = true,
            () = inner.freed.notified() => may_be_due = true,
            () = tokio::time::sleep(wait) => {}
            () = inner.stop.notified() => {}
        }
    }
    if let Some(w) = wake_ups {
        w.abort();
    }
    if let Some(c) = checker {
        c.abort();
    }
    running
}

/// Registers the worker in the store and starts its heartbeats (`durable/heartbeats.rs`),
/// each with the number of attempts running here; not for a worker without functions to run
/// (it stops at once).
async fn start_heartbeats(inner: &Arc<Inner>, names: &[String]) {
    if names.is_empty() {
        return;
    }
    let weak = Arc::downgrade(inner);
    let running = move || {
        let inner = weak.upgrade()?;
        let n = inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        Some(n)
    };
    inner
        .heartbeats
        .start(&inner.store, &inner.id, running)
        .await;
}

/// How long the claim loop may sleep: a poll interval when every slot is busy, the rest of
/// `REFILL_WAIT` when free slots wait for more, else until the next due time (at most a poll
/// interval). `next` is the next due time when this round already asked (`Some(None)`:
/// nothing is due).
#[allow(clippy::option_option)]
async fn idle_wait(
    inner: &Inner,
    names: &[String],
    ready: bool,
    next: Option<Option<SystemTime>>,
    free_since: Option<Instant>,
) -> Duration {
    if inner.slots.available_permits() == 0 {
        return inner.poll;
    }
    if !ready {
        return free_since.map_or(REFILL_WAIT, |t| REFILL_WAIT.saturating_sub(t.elapsed()));
    }
    let next = match next {
        Some(n) => Ok(n),
        None => inner.store.next_due(names).await,
    };
    let wait = match next {
        Ok(Some(due)) => due
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO)
            .min(inner.poll),
        Ok(None) | Err(_) => inner.poll,
    };
    if wait <= PAUSE_CHECK {
        return wait;
    }
    // A function of this worker's paused: its calls are left out of the next due time, and
    // its resume, by another process, must be seen within a second, not a poll interval.
    match inner.store.paused().await {
        Ok(paused) if paused.iter().any(|p| names.contains(&p.function)) => PAUSE_CHECK,
        Ok(_) => wait,
        Err(_) => PAUSE_CHECK,
    }
}

/// Once a second, and at once after a cancel through this store, asks the store in one
/// query which of the calls running here are no longer this worker's (cancelled, released,
/// re-claimed), and stops their attempts.
async fn check_lost(inner: Arc<Inner>) {
    loop {
        tokio::select! {
            () = tokio::time::sleep(LOST_CHECK) => {}
            () = inner.store.cancel_notified() => {}
        }
        let held: Vec<(CorrelationId, u64)> = inner
            .held
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .map(|(cid, h)| (*cid, h.fence))
            .collect();
        if held.is_empty() {
            continue;
        }
        let lost = match inner.store.lost(&inner.id, &held).await {
            Ok(lost) => lost,
            Err(e) => {
                tracing::debug!(
                    target: "retry_runtime::durable",
                    worker = %inner.id,
                    error = %e,
                    "could not check the worker's running calls",
                );
                continue;
            }
        };
        let table = inner.held.lock().unwrap_or_else(PoisonError::into_inner);
        for cid in lost {
            let Some(fence) = held.iter().find(|(c, _)| *c == cid).map(|(_, f)| *f) else {
                continue;
            };
            if let Some(h) = table.get(&cid).filter(|h| h.fence == fence) {
                h.cancelled.store(true, Ordering::Release);
                h.lost.notify_one();
            }
        }
    }
}

/// The worker's warnings about calls of functions it does not know.
#[derive(Debug, Default)]
struct Orphans {
    last_look: Option<Instant>,
    warned: HashSet<String>,
}

impl Orphans {
    /// At most once every `ORPHAN_AGE`: warns, once per name, about calls due for longer
    /// than `ORPHAN_AGE` under names this program did not register (a typo in an enqueue, a
    /// function renamed or removed), which no worker may ever claim.
    async fn look(&mut self, inner: &Inner, names: &[String]) {
        if self.last_look.is_some_and(|t| t.elapsed() < ORPHAN_AGE) {
            return;
        }
        self.last_look = Some(Instant::now());
        let Some(before) = SystemTime::now().checked_sub(ORPHAN_AGE) else {
            return;
        };
        let Ok(overdue) = inner.store.backend().overdue(before).await else {
            return;
        };
        for row in &overdue.rows {
            if names.contains(&row.function) || self.warned.contains(&row.function) {
                continue;
            }
            let count = overdue
                .rows
                .iter()
                .filter(|r| r.function == row.function)
                .map(|r| r.count)
                .sum::<u64>();
            tracing::warn!(
                target: "retry_runtime::durable",
                worker = %inner.id,
                function = %row.function,
                calls = count,
                "calls of a function this program does not register have been due for over a \
                 minute; no worker here will run them (a misspelled or renamed function? \
                 `name = \"...\"` keeps an old name)",
            );
            self.warned.insert(row.function.clone());
        }
    }
}

/// Turns the database's wake-ups for this program's functions into local ones.
async fn forward_wake_ups(
    inner: &Arc<Inner>,
    names: &[String],
) -> Option<tokio::task::JoinHandle<()>> {
    let mut rx = match inner.store.backend().wake_ups().await {
        Ok(Some(rx)) => rx,
        Ok(None) => return None,
        Err(e) => {
            tracing::warn!(
                target: "retry_runtime::durable",
                worker = %inner.id,
                error = %e,
                "cannot listen for other processes' calls; polling only",
            );
            return None;
        }
    };
    let names = names.to_vec();
    let store = inner.store.clone();
    Some(tokio::spawn(async move {
        while let Some(function) = rx.recv().await {
            // An empty name follows a reconnection: look at everything.
            if function.is_empty() || names.contains(&function) {
                store.wake();
            }
        }
    }))
}

/// Deletes succeeded calls older than the retention, at most once a minute.
async fn purge_old(inner: &Inner, last: &mut Option<SystemTime>) {
    let Some(keep) = inner.retention else { return };
    let now = SystemTime::now();
    if last.is_some_and(|t| now.duration_since(t).unwrap_or_default() < Duration::from_secs(60)) {
        return;
    }
    *last = Some(now);
    if let Err(e) = inner.store.purge(CallState::Succeeded, keep).await {
        tracing::warn!(
            target: "retry_runtime::durable",
            worker = %inner.id,
            error = %e,
            "could not purge old succeeded calls",
        );
    }
}

async fn sleep_or_stop(inner: &Inner, d: Duration) {
    tokio::select! {
        () = tokio::time::sleep(d) => {}
        () = inner.stop.notified() => {}
    }
}

/// Why an attempt was abandoned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Lost {
    /// A renewal was refused: the call was cancelled, released or re-claimed.
    Refused,
    /// No renewal succeeded in time: the lease is about to run out.
    Expiring,
}

/// Runs one claimed call: its attempt, with the lease renewed meanwhile, then the record.
/// `claimed` is when the claim was sent, from which its lease runs. The slot (`permit`) is
/// given back once the attempt has its verdict: recording it is the store's work, and the
/// claim that fills the slot again goes into the store's next transaction beside it (one
/// commit per call on SQLite, not a commit for the record and another for the next claim).
async fn attempt(inner: &Inner, claim: Claim, claimed: Instant, permit: OwnedSemaphorePermit) {
    let Claim { record, fence } = claim;
    let cid = record.cid;
    let Some(reg) = registry::lookup(&record.function) else {
        return; // only registered functions are claimed
    };
    let held = Held {
        fence,
        cancelled: Arc::new(AtomicBool::new(false)),
        lost: Arc::new(Notify::new()),
    };
    inner
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .insert(cid, held.clone());
    let job = Job {
        cid,
        parent: record.parent,
        progress: record.progress(),
        args: record.args,
        default_timeout: inner.attempt_timeout,
        cancelled: Arc::clone(&held.cancelled),
        trace_context: record.trace_context,
    };
    let attempt_started = SystemTime::now();
    let verdict = tokio::select! {
        v = (reg.attempt)(job) => Ok(v),
        why = keep_lease(inner, cid, fence, claimed) => Err(Some(why)),
        () = held.lost.notified() => Err(None),
    };
    inner
        .held
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .remove(&cid);
    drop(permit);
    inner.freed.notify_one();
    let verdict = match verdict {
        Ok(v) => v,
        Err(why) => {
            // A sync attempt goes on in its thread; a body that checks `is_cancelled` stops.
            held.cancelled.store(true, Ordering::Release);
            match why {
                None | Some(Lost::Refused) => tracing::info!(
                    target: "retry_runtime::durable",
                    worker = %inner.id,
                    cid = %cid,
                    "the call is no longer this worker's (cancelled, released or re-claimed); \
                     abandoning the attempt",
                ),
                Some(Lost::Expiring) => tracing::warn!(
                    target: "retry_runtime::durable",
                    worker = %inner.id,
                    cid = %cid,
                    "could not renew the lease of a running call before it ran out; \
                     abandoning the attempt",
                ),
            }
            return;
        }
    };
    // A lost connection must not make the call run again: the record is tried again a few
    // times (the fencing token makes a repeat harmless) before the lease is left to expire.
    let mut tries = Attempts::new();
    loop {
        tries.start_attempt();
        let Err(e) = record_verdict(inner, reg, cid, fence, attempt_started, verdict.clone()).await
        else {
            return;
        };
        match tries.decide(&RECORD_RETRIES, true, None, None) {
            Decision::Retry(pause) => tokio::time::sleep(pause).await,
            Decision::Stop(_) => {
                tracing::warn!(
                    target: "retry_runtime::durable",
                    worker = %inner.id,
                    cid = %cid,
                    error = %e,
                    "could not record the attempt; the call runs again when its lease expires",
                );
                return;
            }
        }
    }
}

/// The part of a lease an attempt never uses: it is stopped this long before the lease it
/// holds runs out, for the clocks of two workers that disagree a little and for the time it
/// takes to drop it. A tenth of the lease.
fn lease_margin(lease: Duration) -> Duration {
    lease / 10
}

/// Renews the lease every third of it; returns when a renewal is refused, or strictly before
/// the lease this worker holds runs out when no renewal succeeded in time (the store
/// unreachable, or slow): by then another worker may claim the call, and this attempt must
/// not run beside it.
///
/// The lease is measured from when the request that took or last renewed it was *sent*
/// (the store computes its expiry from a `now` read before sending), never from when the
/// answer came, so a slow answer cannot stretch it; and a renewal still in flight at the
/// deadline is given up.
async fn keep_lease(inner: &Inner, cid: CorrelationId, fence: u64, claimed: Instant) -> Lost {
    let lease = inner.lease;
    let deadline = |sent: Instant| sent + lease - lease_margin(lease);
    let mut held_from = claimed;
    let mut next = claimed + lease / 3;
    loop {
        let stop = deadline(held_from);
        if next >= stop {
            tokio::time::sleep_until(stop).await;
            return Lost::Expiring;
        }
        tokio::time::sleep_until(next).await;
        let sent = Instant::now();
        match tokio::time::timeout_at(stop, inner.store.renew(cid, fence, lease)).await {
            Ok(Ok(true)) => {
                held_from = sent;
                next = sent + lease / 3;
            }
            Ok(Ok(false)) => return Lost::Refused,
            // Try again soon, while the lease lasts.
            Ok(Err(_)) => next = Instant::now() + lease / 10,
            Err(_) => return Lost::Expiring,
        }
    }
}

async fn record_verdict(
    inner: &Inner,
    reg: &Registration,
    cid: crate::CorrelationId,
    fence: u64,
    attempt_started: SystemTime,
    verdict: Verdict,
) -> Result<bool, StoreError> {
    let progress = |p: Attempts| Progress::after_attempt(p, attempt_started);
    let store = &inner.store;
    match verdict {
        Verdict::Succeeded {
            progress: p,
            result,
        } => {
            store
                .complete_with_result(cid, fence, p.made, attempt_started, result)
                .await
        }
        Verdict::Retry {
            progress: p,
            wait,
            error,
        } => {
            let due = SystemTime::now() + wait;
            store.reschedule(cid, fence, progress(p), due, error).await
        }
        Verdict::Dead {
            progress: p,
            reason,
            error,
        } => {
            store
                .bury(
                    cid,
                    fence,
                    Some(progress(p)),
                    reason.as_str().to_owned(),
                    error,
                )
                .await
        }
        Verdict::Undecodable(why) => {
            tracing::warn!(
                target: "retry_runtime::durable",
                function = reg.name,
                cid = %cid,
                error = %why,
                "stored arguments no longer decode; the call goes to the dead letters",
            );
            store
                .bury(
                    cid,
                    fence,
                    None,
                    "arguments no longer decode".to_owned(),
                    Some(why),
                )
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{CLAIM_RETRIES, RECORD_RETRIES};
    use crate::engine::{Attempts, Decision};
    use core::time::Duration;

    /// The waits a policy gives for `n` failures in a row, and whether it then stops.
    fn waits(policy: &crate::Policy, n: usize) -> Vec<Decision> {
        let mut a = Attempts::new();
        (0..n)
            .map(|_| {
                a.start_attempt();
                a.decide(policy, true, None, None)
            })
            .collect()
    }

    #[test]
    fn the_workers_own_retries_follow_their_policies() {
        let ms = |m| Decision::Retry(Duration::from_millis(m));
        let claims = waits(&CLAIM_RETRIES, 9);
        assert_eq!(
            claims,
            [50, 100, 200, 400, 800, 1600, 3200, 5000, 5000].map(ms)
        );
        let records = waits(&RECORD_RETRIES, 3);
        assert_eq!(records[..2], [ms(100), ms(300)]);
        assert!(matches!(records[2], Decision::Stop(_)));
    }
}
