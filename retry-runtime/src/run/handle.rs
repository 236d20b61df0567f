//! The handle of a background call (status, cancel, outcome) and the answer of a hand-off
//! call.

use core::fmt;
use core::future::Future;
use core::pin::Pin;

use core::task::{Context, Poll};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Instant, SystemTime};

use tokio::task::JoinHandle;

use crate::run::cancel::Cancel;
use crate::run::shutdown::Tracker;
use crate::{Attempts, CorrelationId, Policy, Reason, Report, RetryResult};

/// Where a background call is.
///
/// ```
/// use retry_runtime::{retry, Status};
///
/// #[retry(max = 2, delay = "1s", mode = "background")]
/// async fn slow() -> Result<(), std::io::Error> {
///     Err(std::io::Error::other("down"))
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)]
/// # async fn main() {
/// let handle = slow();
/// assert_eq!(handle.status(), Status::Pending);
/// tokio::task::yield_now().await; // the first attempt runs and fails
/// assert!(matches!(handle.status(), Status::Waiting { next_attempt: 2, .. }));
/// handle.cancel();
/// let failure = handle.await.unwrap_err();
/// assert_eq!(failure.reason(), retry_runtime::Reason::Cancelled);
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Status {
    /// Spawned; no attempt has started yet.
    Pending,
    /// Attempt `attempt` (1 for the first) is running.
    Running {
        /// The attempt's number.
        attempt: u32,
    },
    /// Waiting until `until` to start attempt `next_attempt`.
    Waiting {
        /// The number of the coming attempt.
        next_attempt: u32,
        /// When it starts.
        until: Instant,
    },
    /// An attempt succeeded (or the fallback answered).
    Succeeded,
    /// The call ended in failure.
    Failed,
    /// The call was cancelled.
    Cancelled,
}

impl Status {
    /// The attempts a call in this status has made (of a finished call: unknown here, 0).
    fn attempts_made(self) -> u32 {
        match self {
            Status::Running { attempt } => attempt,
            Status::Waiting { next_attempt, .. } => next_attempt.saturating_sub(1),
            _ => 0,
        }
    }

    /// Whether the call has ended.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// What a background call shares with its handle.
#[derive(Debug)]
pub(crate) struct Shared {
    status: Mutex<Status>,
    pub(crate) cancel: Cancel,
    pub(crate) cid: CorrelationId,
    /// The tracker of this call's shutdown.
    pub(crate) tracker: &'static Tracker,
    /// The number of shutdowns begun before this call started: a call that a shutdown finds
    /// in flight is reported by it; one started after it began is refused, and reported only
    /// through its handle and `on_done`.
    pub(crate) epoch: u64,
    /// The function's name, for the report of a task lost with its runtime (kept here, so
    /// that the handle is two words).
    pub(crate) name: &'static str,
    /// The call's policy, left here by a task dropped before the call ended.
    lost_policy: Mutex<Option<Box<Policy>>>,
}

impl Shared {
    pub(crate) fn new(cid: CorrelationId, tracker: &'static Tracker, name: &'static str) -> Self {
        Self {
            status: Mutex::new(Status::Pending),
            cancel: Cancel::default(),
            cid,
            tracker,
            epoch: tracker.epoch(),
            name,
            lost_policy: Mutex::new(None),
        }
    }
    /// Keeps the policy of a call whose task is being dropped unfinished.
    pub(crate) fn lose(&self, policy: Policy) {
        *self
            .lost_policy
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Box::new(policy));
    }

    pub(crate) fn set(&self, s: Status) {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner) = s;
    }
    fn get(&self) -> Status {
        *self.status.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// How a background call failed: the report, which owns the last error (if an attempt ran
/// and failed).
///
/// ```
/// use retry_runtime::{retry, Reason};
///
/// #[retry(max = 1, delay = "0ms", mode = "background")]
/// fn doomed() -> Result<(), String> {
///     Err("no".into())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let failure = doomed().await.unwrap_err();
/// assert_eq!(failure.report.reason, Reason::Exhausted);
/// assert_eq!(failure.error().map(String::as_str), Some("no"));
/// # }
/// ```
#[derive(Debug)]
pub struct Failure<E> {
    /// The call's report (boxed: it is large, and only failures carry it).
    pub report: Box<Report<E>>,
}

impl<E> Failure<E> {
    /// The last error, if an attempt failed.
    #[must_use]
    pub fn error(&self) -> Option<&E> {
        self.report.last_error.as_ref()
    }

    /// The last error, owned.
    #[must_use]
    pub fn into_error(self) -> Option<E> {
        self.report.last_error
    }

    /// Why the call ended.
    #[must_use]
    pub fn reason(&self) -> Reason {
        self.report.reason
    }
}

impl<E: fmt::Debug> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.report.fmt(f)
    }
}

impl<E: fmt::Debug> std::error::Error for Failure<E> {}

/// The handle of a background call: watch it, cancel it, or await its outcome.
///
/// Dropping the handle does not cancel the call: the work goes on (fire and forget).
///
/// ```
/// use retry_runtime::{retry, Status};
///
/// #[retry(max = 3, delay = "10ms", mode = "background")]
/// async fn upload(bytes: Vec<u8>) -> Result<usize, std::io::Error> {
///     Ok(bytes.len())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let handle = upload(vec![1, 2, 3]); // returns at once
/// println!("call {} is {:?}", handle.cid(), handle.status());
/// assert_eq!(handle.await.unwrap(), 3);
/// # }
/// ```
#[must_use = "dropping the handle is fine (the call goes on), but then nobody sees its outcome"]
#[derive(Debug)]
pub struct RetryHandle<T, E> {
    pub(crate) shared: Arc<Shared>,
    pub(crate) join: JoinHandle<Result<T, Failure<E>>>,
}

/// The handle type a `mode = "background"` function with return type `R` returns.
pub type HandleFor<R> = RetryHandle<<R as RetryResult>::Ok, <R as RetryResult>::Err>;

/// The type a `mode = "handoff"` function with return type `R` returns.
pub type HandoffFor<R> = Handoff<<R as RetryResult>::Ok, <R as RetryResult>::Err>;

impl<T, E> RetryHandle<T, E> {
    /// The call's correlation ID (minted before the spawn).
    #[must_use]
    pub fn cid(&self) -> CorrelationId {
        self.shared.cid
    }

    /// Where the call is now.
    #[must_use]
    pub fn status(&self) -> Status {
        self.shared.get()
    }

    /// Stops the call: no further attempt starts and a wait ends at once; an async attempt in
    /// progress is aborted, a sync one is let finish (if it succeeds, the call succeeded: that
    /// work is done; if it fails, the call ends as cancelled). The report's reason is
    /// [`Reason::Cancelled`]. Cancelling a finished call does nothing.
    pub fn cancel(&self) {
        self.shared.cancel.cancel();
    }
}

impl<T, E> Future for RetryHandle<T, E> {
    type Output = Result<T, Failure<E>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let join = Pin::new(&mut self.join);
        match join.poll(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Ok(out)) => Poll::Ready(out),
            // The task was dropped with its runtime before it finished.
            // Its progress went with it, but for the attempts it made, which its status says.
            Poll::Ready(Err(e)) => Poll::Ready(Err(Failure {
                report: Box::new(Report::new(
                    self.shared.name,
                    (self.shared.cid, None),
                    &Attempts {
                        made: self.shared.get().attempts_made(),
                        ..Attempts::new()
                    },
                    SystemTime::now(),
                    if e.is_panic() {
                        Reason::Panicked
                    } else {
                        Reason::ShutDown
                    },
                    // A task dropped before its first poll left no policy: the default stands in.
                    self.shared
                        .lost_policy
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                        .map_or_else(Policy::new, |p| *p),
                    None,
                )),
            })),
        }
    }
}

/// What a `mode = "handoff"` call returns: the outcome of its first attempt, or the handle of
/// the retries that went on in the background.
///
/// ```
/// use retry_runtime::{retry, Handoff};
///
/// #[retry(max = 2, delay = "5ms", mode = "handoff")]
/// async fn ping(up: bool) -> Result<&'static str, String> {
///     if up { Ok("pong") } else { Err("down".into()) }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// assert!(matches!(ping(true).await, Handoff::Done(Ok("pong"))));
/// match ping(false).await {
///     Handoff::Retrying(handle) => assert!(handle.await.is_err()),
///     Handoff::Done(_) => unreachable!("a retryable failure goes to the background"),
/// }
/// # }
/// ```
#[derive(Debug)]
#[must_use]
pub enum Handoff<T, E> {
    /// The first attempt succeeded, or failed with an error not worth retrying.
    Done(Result<T, E>),
    /// The first attempt failed; the remaining attempts run in the background.
    Retrying(RetryHandle<T, E>),
}

impl<T, E> Handoff<T, E> {
    /// Waits for the outcome, wherever it comes from.
    ///
    /// # Errors
    /// [`HandoffError::First`] with the error of a first attempt that was not retried, or
    /// [`HandoffError::Background`] with the failure of the background retries.
    pub async fn outcome(self) -> Result<T, HandoffError<E>> {
        match self {
            Self::Done(Ok(v)) => Ok(v),
            Self::Done(Err(e)) => Err(HandoffError::First(e)),
            Self::Retrying(h) => h.await.map_err(HandoffError::Background),
        }
    }
}

/// How a hand-off call failed: at its first attempt in the caller, or in the background.
///
/// ```
/// use retry_runtime::{retry, HandoffError};
///
/// #[retry(max = 1, delay = "0ms", mode = "handoff", when = |_e: &String| false)]
/// async fn refuse() -> Result<(), String> {
///     Err("no".into())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// match refuse().await.outcome().await {
///     Err(HandoffError::First(e)) => assert_eq!(e, "no"),
///     other => panic!("unexpected {other:?}"),
/// }
/// # }
/// ```
#[derive(Debug)]
pub enum HandoffError<E> {
    /// The first attempt failed and was not retried.
    First(E),
    /// The background retries failed.
    Background(Failure<E>),
}
