//! The durable executor: one attempt of a stored call, which a worker hands over as a
//! [`Job`], run through the engine, and the engine's decision as a [`Verdict`] for the
//! worker to record. It reads no store; the worker (`durable/worker.rs`) does.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::cid::{enter_cancel, CallCtx};
use crate::durable::args::{ArgsError, ArgsIn};
use crate::durable::kept::Keep;
use crate::durable::BoxFuture;
use crate::engine::{self, Attempts, Clock, Decision, End, Engine, Step};
use crate::events::show_error;
use crate::hooks::HookSet;
use crate::result::Returns;
use crate::run::attempter::{AsyncAttempts, Attempter, Panicked, SyncAttempts};
use crate::run::background::{SpawnResult, Spec};
use crate::run::clock::WallClock;
use crate::run::race::WithDeadline;
use crate::run::wait::Wait;
use crate::{CorrelationId, Reason};

/// A stored call, as a worker hands it to its function for one attempt.
#[derive(Debug, Clone)]
pub struct Job {
    /// The call's ID.
    pub cid: CorrelationId,
    /// The enqueuing call's ID.
    pub parent: Option<CorrelationId>,
    /// The arguments, JSON text.
    pub args: String,
    /// The progress so far.
    pub progress: Attempts,
    /// The attempt's time limit when the function's policy has none (the worker's
    /// [`attempt_timeout`](crate::durable::WorkerBuilder::attempt_timeout)); `None`: no
    /// limit. A policy's own `timeout` always wins, and `Some(Duration::MAX)` there means no
    /// limit at all.
    pub default_timeout: Option<Duration>,
    /// Set by the worker when the call was cancelled (or its lease lost) while the attempt
    /// runs: what [`is_cancelled`](crate::is_cancelled) reads inside the attempt.
    pub cancelled: Arc<AtomicBool>,
    /// The enqueuer's stored W3C trace context: with the feature `opentelemetry`, the
    /// attempt's span is its child (ignored when it does not parse).
    pub trace_context: Option<String>,
}

/// What follows an attempt of a stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt succeeded.
    Succeeded {
        /// The progress, this attempt included.
        progress: Attempts,
        /// The function's `Ok` value as JSON text, when its type is `Serialize` (`None` for
        /// `()` and for types that are not).
        result: Option<String>,
    },
    /// Retry after `wait`.
    Retry {
        /// The progress, this attempt included.
        progress: Attempts,
        /// The wait before the next attempt.
        wait: Duration,
        /// The attempt's error, as text.
        error: String,
    },
    /// Given up: a dead letter.
    Dead {
        /// The progress, this attempt included.
        progress: Attempts,
        /// Why.
        reason: Reason,
        /// The last error, as text.
        error: Option<String>,
    },
    /// The stored arguments no longer decode (the function's signature changed): a dead
    /// letter, no attempt made.
    Undecodable(String),
}

/// Runs one attempt of a stored call of an async durable function: `make` decodes the
/// arguments and returns the attempt's future; `keep` makes the value of a success the
/// stored result.
pub fn attempt_async<R, H, M, F>(
    _: Returns<R>,
    keep: Keep<R::Ok>,
    spec: Spec<R::Err, H>,
    job: Job,
    make: M,
) -> BoxFuture<'static, Verdict>
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    M: FnOnce(&mut ArgsIn) -> Result<F, ArgsError>,
    F: Future<Output = R> + Send + 'static,
{
    let flag = Arc::clone(&job.cancelled);
    decode_then_run(spec, keep, job, make, move |fut| {
        AsyncAttempts(once(Cancellable { fut, flag }))
    })
}

/// Runs one attempt of a stored call of a sync durable function (on tokio's blocking pool):
/// `make` decodes the arguments and returns the attempt's body; `keep` as for
/// [`attempt_async`].
pub fn attempt_sync<R, H, M, B>(
    _: Returns<R>,
    keep: Keep<R::Ok>,
    spec: Spec<R::Err, H>,
    job: Job,
    make: M,
) -> BoxFuture<'static, Verdict>
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    M: FnOnce(&mut ArgsIn) -> Result<B, ArgsError>,
    B: FnOnce() -> R + Send + 'static,
{
    let flag = Arc::clone(&job.cancelled);
    decode_then_run(spec, keep, job, make, move |body| {
        SyncAttempts(once(move || {
            let _cancel = enter_cancel(&flag);
            body()
        }))
    })
}

pin_project_lite::pin_project! {
    /// An async attempt that sees its call's cancellation flag while it is polled.
    struct Cancellable<F> {
        #[pin]
        fut: F,
        flag: Arc<AtomicBool>,
    }
}

impl<F: Future> Future for Cancellable<F> {
    type Output = F::Output;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let _cancel = enter_cancel(this.flag);
        this.fut.poll(cx)
    }
}

/// The time limit of a durable attempt: the policy's own `timeout` (`Duration::MAX`: none at
/// all), else the worker's default.
fn attempt_limit(policy: Option<Duration>, default: Option<Duration>) -> Option<Duration> {
    match policy {
        Some(Duration::MAX) => None,
        Some(limit) => Some(limit),
        None => default,
    }
}

/// Decodes the arguments, then runs the one attempt `attempter` makes of them; arguments that
/// do not decode are the verdict.
fn decode_then_run<R, H, M, X, A>(
    spec: Spec<R::Err, H>,
    keep: Keep<R::Ok>,
    job: Job,
    make: M,
    attempter: impl FnOnce(X) -> A,
) -> BoxFuture<'static, Verdict>
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    M: FnOnce(&mut ArgsIn) -> Result<X, ArgsError>,
    A: Attempter<R>,
{
    match ArgsIn::parse(&job.args).and_then(|mut a| make(&mut a)) {
        Ok(x) => Box::pin(run(spec, keep, job, attempter(x))),
        Err(e) => Box::pin(core::future::ready(Verdict::Undecodable(e.to_string()))),
    }
}

/// The maker of a job's one attempt.
fn once<X>(x: X) -> impl FnMut() -> X {
    let mut x = Some(x);
    move || x.take().expect("a durable job makes one attempt")
}

/// One attempt, then the engine's decision, as a verdict for the store.
async fn run<R, H, A>(
    spec: Spec<R::Err, H>,
    keep: Keep<R::Ok>,
    job: Job,
    mut attempter: A,
) -> Verdict
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    A: Attempter<R>,
{
    // `retry_in_flight` counts the durable attempts running in this process (the calls
    // waiting between attempts are in the store: `Store::stats`).
    #[cfg(feature = "metrics")]
    let _gauge = spec.site.metrics(spec.engine::<R>().name()).in_flight();
    let ctx = CallCtx::with_ids(job.cid, job.parent);
    let mut state = job.progress.kept_from(WallClock.now());
    state.start_attempt();
    let span = spec.site.span(
        spec.hooks.type_name(),
        &ctx,
        state.made,
        state.started.is_some(),
    );
    if let Some(span) = &span {
        crate::durable::trace_context::adopt(span, job.trace_context.as_deref());
    }
    let limit = attempt_limit(spec.policy.timeout, job.default_timeout);
    let attempt = WithDeadline {
        fut: attempter.attempt(CallCtx::with_ids(job.cid, job.parent), span),
        deadline: limit.map(Wait::new),
    };
    let done = attempt.await;
    if done.is_none() {
        // A sync attempt goes on in its thread: a body that checks `is_cancelled` stops.
        job.cancelled
            .store(true, std::sync::atomic::Ordering::Release);
    }
    let outcome = match done {
        None if spec.timed_out.is_none() => {
            // The worker's default limit, on a function whose expansion passed no maker of a
            // timed-out error: the policy decides without one.
            return timed_out_without_error(&spec.policy, state, limit.unwrap_or_default());
        }
        None => engine::AttemptOutcome::TimedOut(spec.timed_out()),
        Some(Err(Panicked(msg))) => engine::AttemptOutcome::Panicked(msg),
        Some(Ok(r)) => engine::AttemptOutcome::Returned(r),
    };
    let engine: Engine<'_, R, H> = spec.engine();
    match engine.on_outcome(&ctx, &mut state, outcome, None, &WallClock) {
        Step::Retry { wait, error } => Verdict::Retry {
            progress: state,
            wait,
            error: show_error::<R, H>(&spec.hooks, &error),
        },
        Step::Done(End::Ok(value)) => Verdict::Succeeded {
            progress: state,
            result: keep.json(&value),
        },
        Step::Done(End::Failed(report)) => Verdict::Dead {
            progress: state,
            reason: report.reason,
            error: report
                .last_error
                .as_ref()
                .map(|e| show_error::<R, H>(&spec.hooks, e)),
        },
    }
}

/// The verdict of an attempt stopped by the worker's default time limit when the function has
/// no error to stand for a timeout: retried as the policy says, `attempt timed out` when it
/// says no more.
fn timed_out_without_error(
    policy: &crate::Policy,
    mut state: Attempts,
    limit: Duration,
) -> Verdict {
    let error =
        format!("the attempt timed out after {limit:?} (the worker's default attempt limit)");
    tracing::warn!(target: "retry_runtime::durable", error = %error, "durable attempt abandoned");
    match state.decide(policy, true, None, Some(std::time::SystemTime::now())) {
        Decision::Retry(wait) => Verdict::Retry {
            progress: state,
            wait,
            error,
        },
        Decision::Stop(reason) => Verdict::Dead {
            progress: state,
            reason: reason.given_timeout(true),
            error: Some(error),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::attempt_limit;
    use core::time::Duration;

    #[test]
    fn a_policys_timeout_wins_and_max_means_none() {
        let s = Duration::from_secs;
        assert_eq!(attempt_limit(Some(s(5)), Some(s(900))), Some(s(5)));
        assert_eq!(attempt_limit(Some(Duration::MAX), Some(s(900))), None);
        assert_eq!(attempt_limit(None, Some(s(900))), Some(s(900)));
        assert_eq!(attempt_limit(None, None), None);
    }
}
