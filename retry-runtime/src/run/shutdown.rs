//! Graceful shutdown of spawned calls: which calls are in flight, telling them to stop, and
//! the reports of those that did not finish.
//!
//! The state lives in a [`Tracker`]. Calls use the process's default one unless a tracker
//! is [entered](Tracker::enter) on the thread that starts them, so a library embedded twice,
//! or each test of a suite, can shut its own calls down without touching the others.

use core::cell::Cell;
use core::fmt;
use core::sync::atomic::{AtomicU64, AtomicU8, AtomicUsize, Ordering};
use core::time::Duration;
use std::sync::{Mutex, PoisonError};

use tokio::sync::Notify;

use crate::run::cancel::Cancel;
use crate::run::race::Race;
use crate::{Reason, Report};

const RUNNING: u8 = 0;
/// No new attempt starts; waits end at once.
pub(crate) const DRAINING: u8 = 1;
/// Attempts in progress are abandoned too.
pub(crate) const ABORTING: u8 = 2;

/// The shutdown state of a group of background and hand-off calls.
///
/// ```
/// use retry_runtime::{retry, Tracker};
///
/// static MINE: Tracker = Tracker::new();
///
/// #[retry(max = 1, delay = "0ms", mode = "background")]
/// fn work() -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = {
///     let _mine = MINE.enter(); // calls started here are tracked by MINE
///     work()
/// };
/// handle.await.unwrap();
/// assert!(MINE.shutdown(std::time::Duration::from_secs(1)).await.is_empty());
/// assert_eq!(MINE.in_flight(), 0);
/// # }
/// ```
#[derive(Debug)]
pub struct Tracker {
    phase: AtomicU8,
    phase_changed: Notify,
    in_flight: AtomicUsize,
    all_done: Notify,
    unfinished: Mutex<Vec<Report<String>>>,
    /// Shutdowns begun so far.
    epoch: AtomicU64,
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

static DEFAULT: Tracker = Tracker::new();

thread_local! {
    static CURRENT: Cell<Option<&'static Tracker>> = const { Cell::new(None) };
}

/// Makes a tracker current on this thread until dropped; see [`Tracker::enter`].
#[derive(Debug)]
#[must_use = "the tracker is current only while the guard lives"]
pub struct TrackerGuard(Option<&'static Tracker>);

impl Drop for TrackerGuard {
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

impl Tracker {
    /// A tracker with no calls.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            phase: AtomicU8::new(RUNNING),
            phase_changed: Notify::const_new(),
            in_flight: AtomicUsize::new(0),
            all_done: Notify::const_new(),
            unfinished: Mutex::new(Vec::new()),
            epoch: AtomicU64::new(0),
        }
    }

    /// The process's default tracker, which [`shutdown`], [`in_flight`] and [`restart`] use.
    #[must_use]
    pub fn global() -> &'static Self {
        &DEFAULT
    }

    /// The tracker of calls started on this thread now.
    pub(crate) fn current() -> &'static Self {
        CURRENT.with(Cell::get).unwrap_or(&DEFAULT)
    }

    /// Background and hand-off calls started on this thread while the guard lives are
    /// tracked by this tracker.
    pub fn enter(&'static self) -> TrackerGuard {
        TrackerGuard(CURRENT.with(|c| c.replace(Some(self))))
    }

    /// The number of this tracker's calls that have not finished.
    #[must_use]
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub(crate) fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::SeqCst)
    }

    /// Shuts this tracker's calls down gracefully; see [`shutdown`].
    pub async fn shutdown(&self, grace: Duration) -> Vec<Report<String>> {
        self.epoch.fetch_add(1, Ordering::SeqCst);
        self.phase.store(DRAINING, Ordering::SeqCst);
        self.phase_changed.notify_waiters();
        if !self.wait_all_done(grace).await {
            self.phase.store(ABORTING, Ordering::SeqCst);
            self.phase_changed.notify_waiters();
            // Abandoned attempts end at their next poll; give the tasks a moment to record it.
            self.wait_all_done(Duration::from_millis(100)).await;
        }
        core::mem::take(
            &mut *self
                .unfinished
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// Allows calls again after a shutdown.
    pub fn restart(&self) {
        self.phase.store(RUNNING, Ordering::SeqCst);
    }

    async fn wait_all_done(&self, limit: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let done = self.all_done.notified();
            let mut done = core::pin::pin!(done);
            done.as_mut().enable();
            if self.in_flight() == 0 {
                return true;
            }
            if tokio::time::timeout_at(deadline, done).await.is_err() {
                return self.in_flight() == 0;
            }
        }
    }

    /// Keeps the report of a call that a shutdown found in flight.
    /// `epoch` is the tracker's epoch when the call started.
    pub(crate) fn record_unfinished<E: fmt::Debug>(&self, epoch: u64, report: &Report<E>) {
        if report.reason == Reason::ShutDown && epoch < self.epoch() {
            let kept = report.shown();
            self.unfinished
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .push(kept);
        }
    }

    /// Whether the call is cancelled (if `with_cancel`) or the shutdown reached `level`.
    pub(crate) fn interrupted(
        &self,
        cancel: &Cancel,
        level: u8,
        with_cancel: bool,
    ) -> Option<Reason> {
        if with_cancel && cancel.is_cancelled() {
            Some(Reason::Cancelled)
        } else if self.phase.load(Ordering::SeqCst) >= level {
            Some(Reason::ShutDown)
        } else {
            None
        }
    }

    /// Completes when the call is cancelled (if `with_cancel`) or the shutdown reaches
    /// `level`.
    pub(crate) async fn interruption(
        &self,
        cancel: &Cancel,
        level: u8,
        with_cancel: bool,
    ) -> Reason {
        loop {
            let phase = self.phase_changed.notified();
            let mut phase = core::pin::pin!(phase);
            phase.as_mut().enable();
            if let Some(i) = self.interrupted(cancel, level, with_cancel) {
                return i;
            }
            if with_cancel {
                Race {
                    a: cancel.signal(),
                    b: phase,
                }
                .await;
            } else {
                phase.await;
            }
        }
    }
}

/// Counts a call in flight for as long as it lives.
pub(crate) struct InFlight(&'static Tracker);

impl InFlight {
    pub(crate) fn enter(tracker: &'static Tracker) -> Self {
        tracker.in_flight.fetch_add(1, Ordering::SeqCst);
        Self(tracker)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.0.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.all_done.notify_waiters();
        }
    }
}

/// The number of background and hand-off calls of the default [`Tracker`] that have not
/// finished.
///
/// ```
/// assert_eq!(retry_runtime::in_flight(), 0);
/// ```
#[must_use]
pub fn in_flight() -> usize {
    DEFAULT.in_flight()
}

/// Shuts the background calls of the default [`Tracker`] down gracefully: no new attempt
/// starts (calls waiting for their next attempt end at once), attempts in progress get up to
/// `grace` to finish, then are abandoned. Returns the reports of the calls that did not
/// finish, their errors written out as the function shows them (see [`Report`]), so the
/// application can log or persist them.
/// Each of them also ends with [`Reason::ShutDown`]: `on_done` runs and its handle resolves
/// to a failure.
///
/// After a shutdown, background calls started later end at once with [`Reason::ShutDown`]
/// (until [`restart`]).
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let unfinished = retry_runtime::shutdown(std::time::Duration::from_secs(1)).await;
/// assert!(unfinished.is_empty());
/// # retry_runtime::restart();
/// # }
/// ```
pub async fn shutdown(grace: Duration) -> Vec<Report<String>> {
    DEFAULT.shutdown(grace).await
}

/// Allows background calls of the default [`Tracker`] again after a [`shutdown`] (for tests
/// and restartable services).
pub fn restart() {
    DEFAULT.restart();
}
