//! The durable executor: one attempt of a stored call, which a worker hands over as a
//! [`Job`], run through the engine, and the engine's decision as a [`Verdict`] for the
//! worker to record. It reads no store; the worker (`durable/worker.rs`) does.

use core::future::Future;
use core::time::Duration;

use crate::cid::CallCtx;
use crate::durable::args::{ArgsError, ArgsIn};
use crate::durable::BoxFuture;
use crate::engine::{self, Attempts, Clock, End, Engine, Step};
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
}

/// What follows an attempt of a stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt succeeded.
    Succeeded {
        /// The progress, this attempt included.
        progress: Attempts,
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
/// arguments and returns the attempt's future.
pub fn attempt_async<R, H, M, F>(
    _: Returns<R>,
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
    decode_then_run(spec, job, make, |fut| AsyncAttempts(once(fut)))
}

/// Runs one attempt of a stored call of a sync durable function (on tokio's blocking pool):
/// `make` decodes the arguments and returns the attempt's body.
pub fn attempt_sync<R, H, M, B>(
    _: Returns<R>,
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
    decode_then_run(spec, job, make, |body| SyncAttempts(once(body)))
}

/// Decodes the arguments, then runs the one attempt `attempter` makes of them; arguments that
/// do not decode are the verdict.
fn decode_then_run<R, H, M, X, A>(
    spec: Spec<R::Err, H>,
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
        Ok(x) => Box::pin(run(spec, job, attempter(x))),
        Err(e) => Box::pin(core::future::ready(Verdict::Undecodable(e.to_string()))),
    }
}

/// The maker of a job's one attempt.
fn once<X>(x: X) -> impl FnMut() -> X {
    let mut x = Some(x);
    move || x.take().expect("a durable job makes one attempt")
}

/// One attempt, then the engine's decision, as a verdict for the store.
async fn run<R, H, A>(spec: Spec<R::Err, H>, job: Job, mut attempter: A) -> Verdict
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
    let attempt = WithDeadline {
        fut: attempter.attempt(CallCtx::with_ids(job.cid, job.parent), span),
        deadline: spec.policy.timeout.map(Wait::new),
    };
    let outcome = match attempt.await {
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
        Step::Done(End::Ok(_)) => Verdict::Succeeded { progress: state },
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
