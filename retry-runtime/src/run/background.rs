//! The background executor: a spawned task that runs the attempts of one call, waits as the
//! engine says, and answers the call's handle.

use core::future::Future;
use core::time::Duration;
use std::sync::{Arc, OnceLock};

use tokio::task::JoinHandle;

use crate::cid::CallCtx;
use crate::engine::{AttemptOutcome, Attempts, End, Engine, Step};
use crate::hooks::HookSet;
use crate::result::Returns;
use crate::run::attempter::{Attempter, Panicked};
use crate::run::clock::TokioClock;
use crate::run::handle::{Failure, HandleFor, RetryHandle, Shared, Status};
use crate::run::race::{Either, Race, WithDeadline};
use crate::run::shutdown::{InFlight, Tracker, ABORTING, DRAINING};
use crate::run::wait::Wait;
use crate::site::Site;
use crate::{CorrelationId, Policy, Reason, RetryResult};

/// The static parts of a spawned call.
#[derive(Debug)]
pub struct Spec<E, H> {
    /// The site.
    pub site: &'static Site,
    /// The policy.
    pub policy: Policy,
    /// The hooks, `on_done` included.
    pub hooks: H,
    /// Makes the error of a timed-out attempt (`Some` when the policy has a timeout).
    pub timed_out: Option<fn() -> E>,
}

impl<E, H> Spec<E, H> {
    pub(crate) fn engine<R>(&self) -> Engine<'_, R, H>
    where
        R: RetryResult<Err = E>,
        H: HookSet<R>,
    {
        Engine::new(self.site, &self.policy, &self.hooks)
    }

    /// The error of a timed-out attempt, from the maker the expansion passes with a timeout.
    pub(crate) fn timed_out(&self) -> E {
        (self
            .timed_out
            .expect("`#[retry]` passes an error maker with every timeout"))()
    }
}

/// A return type whose calls can run in a spawned task: it, its value and its error move
/// to the task's thread.
pub trait SpawnResult:
    RetryResult<Ok: Send + 'static, Err: Send + 'static> + Send + 'static
{
}

impl<R> SpawnResult for R where
    R: RetryResult<Ok: Send + 'static, Err: Send + 'static> + Send + 'static
{
}

/// Where the driver starts: a new call, or the rest of a hand-off call.
pub(crate) struct Resume<E> {
    pub(crate) state: Attempts,
    pub(crate) wait: Option<Duration>,
    pub(crate) last_error: Option<E>,
}

/// Starts a `mode = "background"` call.
pub fn background<R, A, H>(_: Returns<R>, spec: Spec<R::Err, H>, attempter: A) -> HandleFor<R>
where
    R: SpawnResult,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
{
    let ctx = CallCtx::new();
    let state = spec.engine::<R>().start(&TokioClock);
    start(
        spec,
        attempter,
        (ctx.cid(), ctx.parent()),
        Resume {
            state,
            wait: None,
            last_error: None,
        },
    )
}

/// Spawns the driver of a call.
pub(crate) fn start<R, A, H>(
    spec: Spec<R::Err, H>,
    attempter: A,
    (cid, parent): (CorrelationId, Option<CorrelationId>),
    resume: Resume<R::Err>,
) -> HandleFor<R>
where
    R: SpawnResult,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
{
    let tracker = Tracker::current();
    let name = spec.engine::<R>().name();
    let shared = Arc::new(Shared::new(cid, tracker, name));
    let live = Live {
        _flight: InFlight::enter(tracker),
        #[cfg(feature = "metrics")]
        _gauge: spec.site.metrics(name).in_flight(),
    };
    let call = drive(Arc::clone(&shared), spec, attempter, parent, resume, live);
    let join = spawn(call);
    RetryHandle { shared, join }
}

/// Spawns on the current tokio runtime, or on a small shared one started on first use when
/// the caller runs outside any runtime (a plain `fn main`, another executor).
pub(crate) fn spawn<F>(fut: F) -> JoinHandle<F::Output>
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

/// What a call's task holds until it ends or is dropped: its count among the tracker's calls
/// in flight and, with metrics, in the `retry_in_flight` gauge.
struct Live {
    _flight: InFlight,
    #[cfg(feature = "metrics")]
    _gauge: crate::ops::metrics::InFlightGauge,
}

/// Runs the call: wait, attempt, feed the outcome to the engine, until it is done.
///
/// An `async move` block that uses what it captures in place, rather than an `async fn`,
/// whose arguments the future would hold twice (once as arguments, once as the locals they
/// are moved into), or around another future it awaits: the task is a third smaller.
#[allow(clippy::manual_async_fn)] // the point: see above
fn drive<R, A, H>(
    shared: Arc<Shared>,
    spec: Spec<R::Err, H>,
    mut attempter: A,
    parent: Option<CorrelationId>,
    mut resume: Resume<R::Err>,
    live: Live,
) -> impl Future<Output = Result<R::Ok, Failure<R::Err>>> + Send + 'static
where
    R: SpawnResult,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
{
    async move {
        // Nothing but the call's own state lives across the waits: the engine and the
        // context are made afresh for each decision (a few words, no work), so the task
        // stays small.
        let mut lost = LostPolicy(Some((&shared, &spec.policy)));
        let done = loop {
            let outcome = 'attempt: {
                if let Some(w) = resume.wait.take() {
                    shared.set(Status::Waiting {
                        next_attempt: resume.state.made + 1,
                        until: tokio::time::Instant::now().into_std() + w,
                    });
                    if !w.is_zero() {
                        let interrupted = Race {
                            a: tokio::time::sleep(w),
                            b: shared.tracker.interruption(&shared.cancel, DRAINING, true),
                        };
                        if let Either::Right(reason) = interrupted.await {
                            break 'attempt AttemptOutcome::Stopped(reason, None);
                        }
                    }
                }
                if let Some(reason) = shared.tracker.interrupted(&shared.cancel, DRAINING, true) {
                    break 'attempt AttemptOutcome::Stopped(reason, None);
                }
                let n = resume.state.start_attempt();
                shared.set(Status::Running { attempt: n });
                let ctx = CallCtx::with_ids(shared.cid, parent);
                let span = spec.site.span(
                    spec.hooks.type_name(),
                    &ctx,
                    resume.state.made,
                    resume.state.started.is_some(),
                );
                let attempt = WithDeadline {
                    fut: attempter.attempt(ctx, span),
                    deadline: spec.policy.timeout.map(Wait::new),
                };
                let raced = Race {
                    a: attempt,
                    b: shared
                        .tracker
                        .interruption(&shared.cancel, ABORTING, A::ABORTABLE),
                };
                match raced.await {
                    Either::Right(reason) => AttemptOutcome::Stopped(reason, None),
                    Either::Left(None) => AttemptOutcome::TimedOut(spec.timed_out()),
                    Either::Left(Some(Err(Panicked(msg)))) => AttemptOutcome::Panicked(msg),
                    // A sync attempt is let finish after a cancel: its success stands, its
                    // failure ends the call as cancelled.
                    Either::Left(Some(Ok(r))) if !A::ABORTABLE && shared.cancel.is_cancelled() => {
                        match r.into_result() {
                            Ok(v) => AttemptOutcome::Returned(R::from_ok(v)),
                            Err(e) => AttemptOutcome::Stopped(Reason::Cancelled, Some(e)),
                        }
                    }
                    Either::Left(Some(Ok(r))) => AttemptOutcome::Returned(r),
                }
            };
            let ctx = CallCtx::with_ids(shared.cid, parent);
            let step = spec.engine::<R>().on_outcome(
                &ctx,
                &mut resume.state,
                outcome,
                resume.last_error.take(),
                &TokioClock,
            );
            match step {
                Step::Retry { wait: w, error } => {
                    resume.last_error = Some(error);
                    resume.wait = Some(w);
                }
                Step::Done(done) => break done,
            }
        };
        lost.0 = None;
        let out = match done {
            End::Ok(v) => {
                shared.set(Status::Succeeded);
                Ok(v)
            }
            End::Failed(report) => {
                shared.tracker.record_unfinished(shared.epoch, &report);
                shared.set(if report.reason == Reason::Cancelled {
                    Status::Cancelled
                } else {
                    Status::Failed
                });
                Err(Failure {
                    report: Box::new(report),
                })
            }
        };
        drop(live);
        out
    }
}

/// Leaves the call's policy with its handle if the task is dropped before the call ends (its
/// runtime shut down), for the report the handle then gives; the policy is kept by the task
/// otherwise, so the state shared with the handle stays small.
struct LostPolicy<'a>(Option<(&'a Shared, &'a Policy)>);

impl Drop for LostPolicy<'_> {
    fn drop(&mut self) {
        if let Some((shared, policy)) = self.0 {
            shared.lose(*policy);
        }
    }
}
