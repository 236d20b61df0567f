//! Background and hand-off execution: attempts that run in a spawned tokio task, a handle to
//! watch, await or cancel them, and a graceful shutdown.

use core::borrow::Borrow;
use core::fmt;
use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use core::task::{Context, Poll, Waker};
use core::time::Duration;
use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Instant, SystemTime};

use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::__private::Returns;
use crate::attempt::{Clock, InCall, Site, TokioClock};
use crate::cid::CallCtx;
use crate::hooks::{HookSet, NoHook};
use crate::{Attempts, CorrelationId, Decision, Policy, Reason, Report, RetryResult};

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
    /// Whether the call has ended.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Succeeded | Self::Failed | Self::Cancelled)
    }
}

/// What a background call shares with its handle.
#[derive(Debug)]
struct Shared {
    status: Mutex<Status>,
    cancelled: AtomicBool,
    /// The waker of the task while it waits to be cancelled (a plain slot, not a `Notify`
    /// waiter, so that the task does not carry one).
    cancel_waker: Mutex<Option<Waker>>,
    cid: CorrelationId,
    /// The number of shutdowns begun before this call started: a call that a shutdown finds
    /// in flight is reported by it; one started after it began is refused, and reported only
    /// through its handle and `on_done`.
    epoch: u64,
}

impl Shared {
    fn set(&self, s: Status) {
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
    shared: Arc<Shared>,
    join: JoinHandle<Result<T, Failure<E>>>,
    name: &'static str,
    policy: Policy,
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
        self.shared.cancelled.store(true, Ordering::SeqCst);
        let waker = self
            .shared
            .cancel_waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = waker {
            w.wake();
        }
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
            Poll::Ready(Err(e)) => Poll::Ready(Err(Failure {
                report: Box::new(Report {
                    name: self.name,
                    cid: self.shared.cid,
                    parent: None,
                    started_at: SystemTime::now(),
                    attempts: 0,
                    elapsed: Duration::ZERO,
                    reason: if e.is_panic() {
                        Reason::Panicked
                    } else {
                        Reason::ShutDown
                    },
                    policy: self.policy,
                    last_error: None,
                }),
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

// ---------------------------------------------------------------------------------------
// Attempts: how one attempt of an async or a sync body runs in the background.

/// A panic in an attempt, with its message when it had one.
#[derive(Debug)]
pub struct Panicked(String);

impl Panicked {
    fn from_payload(p: &(dyn Any + Send)) -> Self {
        let msg = p
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Self(msg)
    }
}

/// Runs one attempt of a background call.
pub trait Attempter<R>: Send + 'static {
    /// Whether a running attempt can be aborted (async bodies) or must be let finish (sync).
    const ABORTABLE: bool;
    /// Starts one attempt in the given context and span.
    fn attempt(
        &mut self,
        ctx: CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = Result<R, Panicked>> + Send + 'static;
    /// Runs one attempt in the caller (the first attempt of a hand-off call).
    fn attempt_here(
        &mut self,
        ctx: &CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = R> + Send;
}

/// An async body: a maker of one future per attempt.
#[derive(Debug)]
pub struct AsyncAttempts<M>(pub M);

/// A sync body: a maker of one closure per attempt, run on tokio's blocking pool.
#[derive(Debug)]
pub struct SyncAttempts<M>(pub M);

/// Checks an async body's maker against the function's return type.
pub fn async_attempts<R, M, F>(_: Returns<R>, m: M) -> AsyncAttempts<M>
where
    M: FnMut() -> F,
    F: Future<Output = R>,
{
    AsyncAttempts(m)
}

/// Checks a sync body's maker against the function's return type.
pub fn sync_attempts<R, M, A>(_: Returns<R>, m: M) -> SyncAttempts<M>
where
    M: FnMut() -> A,
    A: FnOnce() -> R,
{
    SyncAttempts(m)
}

impl<R, M, F> Attempter<R> for AsyncAttempts<M>
where
    R: Send + 'static,
    M: FnMut() -> F + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    const ABORTABLE: bool = true;

    fn attempt(
        &mut self,
        ctx: CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = Result<R, Panicked>> + Send + 'static {
        CatchUnwind(InCall::new(ctx, span, (self.0)()))
    }

    fn attempt_here(
        &mut self,
        ctx: &CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = R> + Send {
        // The first attempt of a hand-off call runs like an inline one: a panic unwinds to
        // the caller.
        let fut = (self.0)();
        InCall::new(copy_ctx(ctx), span, fut)
    }
}

impl<R, M, A> Attempter<R> for SyncAttempts<M>
where
    R: Send + 'static,
    M: FnMut() -> A + Send + 'static,
    A: FnOnce() -> R + Send + 'static,
{
    const ABORTABLE: bool = false;

    fn attempt(
        &mut self,
        ctx: CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = Result<R, Panicked>> + Send + 'static {
        let body = (self.0)();
        let task = tokio::task::spawn_blocking(move || {
            let _span = span.as_ref().map(tracing::Span::enter);
            let _ctx = ctx.enter();
            std::panic::catch_unwind(AssertUnwindSafe(body))
                .map_err(|p| Panicked::from_payload(&*p))
        });
        async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(Panicked(e.to_string())),
            }
        }
    }

    fn attempt_here(
        &mut self,
        ctx: &CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = R> + Send {
        let body = (self.0)();
        let r = {
            let _span = span.as_ref().map(tracing::Span::enter);
            let _ctx = ctx.enter();
            body()
        };
        core::future::ready(r)
    }
}

/// A copy of a context's IDs, owned (so a future holding it is `Send`).
fn copy_ctx(ctx: &CallCtx) -> CallCtx {
    CallCtx::with_ids(ctx.cid(), ctx.parent())
}

pin_project_lite::pin_project! {
    /// Turns a panic while polling into `Err(Panicked)`.
    struct CatchUnwind<F> {
        #[pin]
        fut: F,
    }
}

#[allow(non_snake_case)]
fn CatchUnwind<F>(fut: F) -> CatchUnwind<F> {
    CatchUnwind { fut }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.project().fut;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(Panicked::from_payload(&*p))),
        }
    }
}

impl<C: Borrow<CallCtx>, F> InCall<C, F> {
    pub(crate) fn new(ctx: C, span: Option<tracing::Span>, fut: F) -> Self {
        let span = span.map(Box::new);
        Self { ctx, span, fut }
    }
}

// ---------------------------------------------------------------------------------------
// Interruption: cancel through the handle, or the runtime's shutdown.

const RUNNING: u8 = 0;
/// No new attempt starts; waits end at once.
const DRAINING: u8 = 1;
/// Attempts in progress are abandoned too.
const ABORTING: u8 = 2;

static PHASE: AtomicU8 = AtomicU8::new(RUNNING);
static PHASE_CHANGED: Notify = Notify::const_new();
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);
static ALL_DONE: Notify = Notify::const_new();
static UNFINISHED: Mutex<Vec<Report<String>>> = Mutex::new(Vec::new());
/// Shutdowns begun so far.
static EPOCH: AtomicU64 = AtomicU64::new(0);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Interrupt {
    Cancelled,
    ShutDown,
}

impl Interrupt {
    fn reason(self) -> Reason {
        match self {
            Self::Cancelled => Reason::Cancelled,
            Self::ShutDown => Reason::ShutDown,
        }
    }
}

fn interrupted(shared: &Shared, level: u8, with_cancel: bool) -> Option<Interrupt> {
    if with_cancel && shared.cancelled.load(Ordering::SeqCst) {
        Some(Interrupt::Cancelled)
    } else if PHASE.load(Ordering::SeqCst) >= level {
        Some(Interrupt::ShutDown)
    } else {
        None
    }
}

/// Completes when the call is cancelled (if `with_cancel`) or the shutdown reaches `level`.
async fn interruption(shared: &Shared, level: u8, with_cancel: bool) -> Interrupt {
    loop {
        let phase = PHASE_CHANGED.notified();
        let mut phase = core::pin::pin!(phase);
        phase.as_mut().enable();
        if let Some(i) = interrupted(shared, level, with_cancel) {
            return i;
        }
        if with_cancel {
            Race {
                a: CancelSignal(shared),
                b: phase,
            }
            .await;
        } else {
            phase.await;
        }
    }
}

/// Completes once the call's handle has cancelled it.
struct CancelSignal<'a>(&'a Shared);

impl Future for CancelSignal<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Register first, then check: a `cancel()` after the check finds the waker.
        *self
            .0
            .cancel_waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        if self.0.cancelled.load(Ordering::SeqCst) {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}

pin_project_lite::pin_project! {
    /// An attempt with an optional time limit: `None` when the limit ran out first. The timer
    /// is boxed and only there with `timeout = ...`, so a call without one does not carry
    /// tokio's 112-byte `Sleep` in its task.
    struct Limited<F> {
        #[pin]
        fut: F,
        deadline: Option<Pin<Box<tokio::time::Sleep>>>,
    }
}

impl<F: Future> Future for Limited<F> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Some(v));
        }
        if let Some(d) = this.deadline {
            if d.as_mut().poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// Polls `a` then `b`; the first to finish wins.
    struct Race<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.a.poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        this.b.poll(cx).map(Either::Right)
    }
}

/// Counts a call in flight for as long as it lives.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(1, Ordering::SeqCst) == 1 {
            ALL_DONE.notify_waiters();
        }
    }
}

/// The number of background and hand-off calls that have not finished.
///
/// ```
/// assert_eq!(retry_runtime::in_flight(), 0);
/// ```
#[must_use]
pub fn in_flight() -> usize {
    IN_FLIGHT.load(Ordering::SeqCst)
}

/// Shuts the background calls down gracefully: no new attempt starts (calls waiting for their
/// next attempt end at once), attempts in progress get up to `grace` to finish, then are
/// abandoned. Returns the reports of the calls that did not finish, their errors formatted
/// with `Debug`, so the application can log or persist them. Each of them also ends with
/// [`Reason::ShutDown`]: `on_done` runs and its handle resolves to a failure.
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
    EPOCH.fetch_add(1, Ordering::SeqCst);
    PHASE.store(DRAINING, Ordering::SeqCst);
    PHASE_CHANGED.notify_waiters();
    if !wait_all_done(grace).await {
        PHASE.store(ABORTING, Ordering::SeqCst);
        PHASE_CHANGED.notify_waiters();
        // Abandoned attempts end at their next poll; give the tasks a moment to record that.
        wait_all_done(Duration::from_millis(100)).await;
    }
    core::mem::take(&mut *UNFINISHED.lock().unwrap_or_else(PoisonError::into_inner))
}

/// Allows background calls again after a [`shutdown`] (for tests and restartable services).
pub fn restart() {
    PHASE.store(RUNNING, Ordering::SeqCst);
}

async fn wait_all_done(limit: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let done = ALL_DONE.notified();
        let mut done = core::pin::pin!(done);
        done.as_mut().enable();
        if in_flight() == 0 {
            return true;
        }
        if tokio::time::timeout_at(deadline, done).await.is_err() {
            return in_flight() == 0;
        }
    }
}

// ---------------------------------------------------------------------------------------
// The executor and the driver.

/// Spawns on the current tokio runtime, or on a small shared one started on first use when
/// the caller runs outside any runtime (a plain `fn main`).
fn spawn<F>(fut: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(rt) => rt.spawn(fut),
        Err(_) => shared_runtime().spawn(fut),
    }
}

fn shared_runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("retry-runtime")
            .enable_time()
            .build()
            .expect("retry-runtime: cannot start its background executor")
    })
}

/// The `on_done` slot.
pub trait DoneSlot<E>: Send + Sync + 'static {
    /// Calls the hook.
    fn done(&self, report: &Report<E>);
    /// Whether there is a hook.
    const PRESENT: bool;
}

impl<E> DoneSlot<E> for NoHook {
    fn done(&self, _: &Report<E>) {}
    const PRESENT: bool = false;
}

impl<E, F: Fn(&Report<E>) + Send + Sync + 'static> DoneSlot<E> for crate::hooks::Hook<F> {
    fn done(&self, report: &Report<E>) {
        (self.0)(report);
    }
    const PRESENT: bool = true;
}

/// The static parts of a background call.
#[derive(Debug)]
pub struct Spec<E, H, D> {
    /// The site.
    pub site: &'static Site,
    /// The policy.
    pub policy: Policy,
    /// `when`, `delay_from`, `on_retry`, `on_exhausted`, `fallback`.
    pub hooks: H,
    /// `on_done`.
    pub on_done: D,
    /// Makes the error of a timed-out attempt (`Some` when the policy has a timeout).
    pub timed_out: Option<fn() -> E>,
}

/// Where the driver starts: a new call, or the rest of a hand-off call.
struct Resume<E> {
    state: Attempts,
    wait: Option<Duration>,
    last_error: Option<E>,
}

fn span_for(site: &Site, cid: CorrelationId, attempt: u32) -> Option<tracing::Span> {
    site.span(|| cid, attempt)
}

/// Starts a `mode = "background"` call.
pub fn background<R, A, H, D>(_: Returns<R>, spec: Spec<R::Err, H, D>, attempter: A) -> HandleFor<R>
where
    R: RetryResult + Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
    D: DoneSlot<R::Err>,
{
    let ctx = CallCtx::new();
    let state = Attempts {
        started: Some(TokioClock::now_or_std()),
        ..Attempts::default()
    };
    start(
        spec,
        attempter,
        ctx.cid(),
        ctx.parent(),
        Resume {
            state,
            wait: None,
            last_error: None,
        },
    )
}

fn start<R, A, H, D>(
    spec: Spec<R::Err, H, D>,
    attempter: A,
    cid: CorrelationId,
    parent: Option<CorrelationId>,
    resume: Resume<R::Err>,
) -> HandleFor<R>
where
    R: RetryResult + Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
    D: DoneSlot<R::Err>,
{
    let shared = Arc::new(Shared {
        status: Mutex::new(Status::Pending),
        cancelled: AtomicBool::new(false),
        cancel_waker: Mutex::new(None),
        cid,
        epoch: EPOCH.load(Ordering::SeqCst),
    });
    let name = spec.site.name;
    let policy = spec.policy;
    let flight = InFlight::enter();
    let join = spawn(drive(
        Arc::clone(&shared),
        spec,
        attempter,
        parent,
        resume,
        flight,
    ));
    RetryHandle {
        shared,
        join,
        name,
        policy,
    }
}

impl TokioClock {
    /// Tokio's clock inside a runtime, the system's outside one.
    fn now_or_std() -> Instant {
        if tokio::runtime::Handle::try_current().is_ok() {
            TokioClock::now()
        } else {
            Instant::now()
        }
    }
}

#[allow(clippy::too_many_lines)] // one loop, read top to bottom
async fn drive<R, A, H, D>(
    shared: Arc<Shared>,
    spec: Spec<R::Err, H, D>,
    mut attempter: A,
    parent: Option<CorrelationId>,
    resume: Resume<R::Err>,
    _flight: InFlight,
) -> Result<R::Ok, Failure<R::Err>>
where
    R: RetryResult + Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
    D: DoneSlot<R::Err>,
{
    let Resume {
        mut state,
        mut wait,
        mut last_error,
    } = resume;
    let policy = spec.policy;
    let cid = shared.cid;
    let (reason, value) = loop {
        if let Some(w) = wait.take() {
            shared.set(Status::Waiting {
                next_attempt: state.made + 1,
                until: TokioClock::now() + w,
            });
            if !w.is_zero() {
                let sleep = tokio::time::sleep(w);
                if let Either::Right(i) = (Race {
                    a: sleep,
                    b: interruption(&shared, DRAINING, true),
                })
                .await
                {
                    break (i.reason(), None);
                }
            }
        }
        if let Some(i) = interrupted(&shared, DRAINING, true) {
            break (i.reason(), None);
        }
        let n = state.start_attempt();
        shared.set(Status::Running { attempt: n });
        let attempt =
            attempter.attempt(CallCtx::with_ids(cid, parent), span_for(spec.site, cid, n));
        let limited = Limited {
            fut: attempt,
            deadline: policy.timeout.map(|t| Box::pin(tokio::time::sleep(t))),
        };
        let outcome = match (Race {
            a: limited,
            b: interruption(&shared, ABORTING, A::ABORTABLE),
        })
        .await
        {
            Either::Left(o) => o,
            Either::Right(i) => break (i.reason(), None),
        };
        let (e, timed_out) = match outcome {
            Some(Ok(r)) => match r.into_result() {
                Ok(v) => break (Reason::Succeeded, Some(v)),
                Err(e) => (e, false),
            },
            Some(Err(Panicked(msg))) => {
                tracing::error!(
                    target: "retry_runtime",
                    name = spec.site.name,
                    cid = %cid,
                    attempt = n,
                    panic = %msg,
                    "attempt panicked; the call ends",
                );
                break (Reason::Panicked, None);
            }
            None => (timeout_error(spec.timed_out), true),
        };
        if !A::ABORTABLE && shared.cancelled.load(Ordering::SeqCst) {
            last_error = Some(e);
            break (Reason::Cancelled, None);
        }
        let retryable = timed_out || spec.hooks.retryable(&e);
        let hint = if retryable {
            spec.hooks.delay_hint(&e)
        } else {
            None
        };
        match state.after_failure(&policy, retryable, hint, TokioClock::now, true) {
            Decision::Retry(w) => {
                crate::report::log_retry(spec.site.name, || cid, n, &e, w);
                spec.hooks.before_retry(n, &e, w);
                last_error = Some(e);
                wait = Some(w);
            }
            Decision::Stop(reason) => {
                last_error = Some(e);
                break (reason.given_timeout(timed_out), None);
            }
        }
    };
    let report = Report::ending(
        spec.site.name,
        (cid, parent),
        &state,
        TokioClock::now(),
        reason,
        policy,
        last_error,
    );
    finish(&shared, &spec, report, value)
}

/// Ends a call: hooks, events, status, and the handle's outcome.
fn finish<R, H, D>(
    shared: &Shared,
    spec: &Spec<R::Err, H, D>,
    report: Report<R::Err>,
    value: Option<R::Ok>,
) -> Result<R::Ok, Failure<R::Err>>
where
    R: RetryResult,
    H: HookSet<R>,
    D: DoneSlot<R::Err>,
{
    if let Some(v) = value {
        shared.set(Status::Succeeded);
        spec.on_done.done(&report);
        return Ok(v);
    }
    let mut report = report;
    report.log_failure();
    let retry_failure = matches!(
        report.reason,
        Reason::Exhausted | Reason::BudgetSpent | Reason::NotRetryable | Reason::TimedOut
    );
    if retry_failure {
        spec.hooks.exhausted(&report);
        if H::HAS_FALLBACK {
            let facts = report.facts();
            let recovered = spec.hooks.recover(report);
            match recovered.map(RetryResult::into_result) {
                Ok(Ok(v)) => {
                    let ok = with_error(&facts, None);
                    shared.set(Status::Succeeded);
                    spec.on_done.done(&ok);
                    return Ok(v);
                }
                Ok(Err(e)) => report = with_error(&facts, Some(e)),
                Err(r) => report = r,
            }
        }
    }
    if report.reason == Reason::ShutDown && shared.epoch < EPOCH.load(Ordering::SeqCst) {
        UNFINISHED
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(with_error(
                &report.facts(),
                report.last_error.as_ref().map(|e| format!("{e:?}")),
            ));
    }
    shared.set(if report.reason == Reason::Cancelled {
        Status::Cancelled
    } else {
        Status::Failed
    });
    spec.on_done.done(&report);
    Err(Failure {
        report: Box::new(report),
    })
}

fn with_error<E>(facts: &Report<()>, e: Option<E>) -> Report<E> {
    Report {
        name: facts.name,
        cid: facts.cid,
        parent: facts.parent,
        started_at: facts.started_at,
        attempts: facts.attempts,
        elapsed: facts.elapsed,
        reason: facts.reason,
        policy: facts.policy,
        last_error: e,
    }
}

/// The error of a timed-out attempt, from the maker the expansion passes with a timeout.
fn timeout_error<E>(make: Option<fn() -> E>) -> E {
    make.expect("`#[retry]` passes an error maker with every timeout")()
}

/// Runs a `mode = "handoff"` call: the first attempt here, the rest in the background.
///
/// # Panics
/// Only if the policy has a timeout but the spec no error maker, which the expansion of
/// `#[retry]` never does.
pub async fn handoff<R, A, H, D>(
    _: Returns<R>,
    spec: Spec<R::Err, H, D>,
    mut attempter: A,
) -> HandoffFor<R>
where
    R: RetryResult + Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
    D: DoneSlot<R::Err>,
{
    let ctx = CallCtx::new();
    let mut state = Attempts::new(&spec.policy, TokioClock::now_or_std);
    let n = state.start_attempt();
    let span = spec.site.span(|| ctx.cid(), n);
    let first = attempter.attempt_here(&ctx, span);
    let out = match spec.policy.timeout {
        Some(t) => tokio::time::timeout(t, first).await.ok(),
        None => Some(first.await),
    };
    let (e, timed_out) = match out.map(RetryResult::into_result) {
        Some(Ok(v)) => {
            if D::PRESENT {
                let report = Report {
                    name: spec.site.name,
                    cid: ctx.cid(),
                    parent: ctx.parent(),
                    started_at: SystemTime::now(),
                    attempts: 1,
                    elapsed: Duration::ZERO,
                    reason: Reason::Succeeded,
                    policy: spec.policy,
                    last_error: None,
                };
                spec.on_done.done(&report);
            }
            return Handoff::Done(Ok(v));
        }
        Some(Err(e)) => (e, false),
        None => (timeout_error(spec.timed_out), true),
    };
    let retryable = timed_out || spec.hooks.retryable(&e);
    let hint = if retryable {
        spec.hooks.delay_hint(&e)
    } else {
        None
    };
    match state.after_failure(&spec.policy, retryable, hint, TokioClock::now_or_std, true) {
        Decision::Retry(w) => {
            crate::report::log_retry(spec.site.name, || ctx.cid(), n, &e, w);
            spec.hooks.before_retry(n, &e, w);
            Handoff::Retrying(start(
                spec,
                attempter,
                ctx.cid(),
                ctx.parent(),
                Resume {
                    state,
                    wait: Some(w),
                    last_error: Some(e),
                },
            ))
        }
        Decision::Stop(reason) => {
            handoff_stopped(&spec, &ctx, &state, reason.given_timeout(timed_out), e)
        }
    }
}

/// A hand-off call whose first attempt ends it: the hooks run here and the error comes back.
fn handoff_stopped<R, H, D>(
    spec: &Spec<R::Err, H, D>,
    ctx: &CallCtx,
    state: &Attempts,
    reason: Reason,
    e: R::Err,
) -> HandoffFor<R>
where
    R: RetryResult,
    H: HookSet<R>,
    D: DoneSlot<R::Err>,
{
    let report = Report::ending(
        spec.site.name,
        (ctx.cid(), ctx.parent()),
        state,
        TokioClock::now_or_std(),
        reason,
        spec.policy,
        Some(e),
    );
    let shared = Shared {
        status: Mutex::new(Status::Running { attempt: 1 }),
        cancelled: AtomicBool::new(false),
        cancel_waker: Mutex::new(None),
        cid: report.cid,
        epoch: EPOCH.load(Ordering::SeqCst),
    };
    match finish(&shared, spec, report, None) {
        Ok(v) => Handoff::Done(Ok(v)),
        Err(f) => match f.into_error() {
            Some(e) => Handoff::Done(Err(e)),
            None => unreachable!("a failed first attempt has an error"),
        },
    }
}

/// Runs a sync `mode = "handoff"` call: the first attempt in the caller, the rest in the
/// background.
pub fn handoff_sync<R, M, A, H, D>(
    returns: Returns<R>,
    spec: Spec<R::Err, H, D>,
    attempter: SyncAttempts<M>,
) -> HandoffFor<R>
where
    R: RetryResult + Send + 'static,
    R::Ok: Send + 'static,
    R::Err: Send + 'static,
    M: FnMut() -> A + Send + 'static,
    A: FnOnce() -> R + Send + 'static,
    H: HookSet<R> + Send + Sync + 'static,
    D: DoneSlot<R::Err>,
{
    // The first attempt of a sync body runs to completion when first polled, and a sync
    // function has no timeout, so this future is ready at its first poll.
    let fut = core::pin::pin!(handoff(returns, spec, attempter));
    match fut.poll(&mut Context::from_waker(core::task::Waker::noop())) {
        Poll::Ready(h) => h,
        Poll::Pending => unreachable!("a sync hand-off call never waits before its handle"),
    }
}
