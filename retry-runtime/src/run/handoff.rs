//! The hand-off executor: the first attempt in the caller, the rest in the background.

use core::future::Future;
use core::task::{Context, Poll};

use crate::cid::CallCtx;
use crate::engine::{AttemptOutcome, End, Step};
use crate::hooks::HookSet;
use crate::result::Returns;
use crate::run::attempter::{Attempter, SyncAttempts};
use crate::run::background::{start, Resume, SpawnResult, Spec};
use crate::run::clock::TokioClock;
use crate::run::handle::{Handoff, HandoffFor};
use crate::run::race::WithDeadline;
use crate::run::wait::Wait;

/// Runs a `mode = "handoff"` call: the first attempt here, the rest in the background.
///
/// # Panics
/// Only if the policy has a timeout but the spec no error maker, which the expansion of
/// `#[retry]` never does.
pub async fn handoff<R, A, H>(
    _: Returns<R>,
    spec: Spec<R::Err, H>,
    mut attempter: A,
) -> HandoffFor<R>
where
    R: SpawnResult,
    A: Attempter<R>,
    H: HookSet<R> + Send + Sync + 'static,
{
    let ctx = CallCtx::new();
    let mut state = spec.engine::<R>().start(&TokioClock);
    state.start_attempt();
    let span = spec.site.span(
        spec.hooks.type_name(),
        &ctx,
        state.made,
        state.started.is_some(),
    );
    let first = WithDeadline {
        fut: attempter.attempt_here(&ctx, span),
        deadline: spec.policy.timeout.map(Wait::new),
    };
    let outcome = match first.await {
        Some(r) => AttemptOutcome::Returned(r),
        None => AttemptOutcome::TimedOut(spec.timed_out()),
    };
    let step = spec
        .engine::<R>()
        .on_outcome(&ctx, &mut state, outcome, None, &TokioClock);
    match step {
        Step::Done(End::Ok(v)) => Handoff::Done(Ok(v)),
        Step::Done(End::Failed(report)) => match report.last_error {
            Some(e) => Handoff::Done(Err(e)),
            None => unreachable!("a failed first attempt has an error"),
        },
        Step::Retry { wait, error } => Handoff::Retrying(start(
            spec,
            attempter,
            (ctx.cid(), ctx.parent()),
            Resume {
                state,
                wait: Some(wait),
                last_error: Some(error),
            },
        )),
    }
}

/// Runs a sync `mode = "handoff"` call: the first attempt in the caller, the rest in the
/// background.
pub fn handoff_sync<R, M, A, H>(
    returns: Returns<R>,
    spec: Spec<R::Err, H>,
    attempter: SyncAttempts<M>,
) -> HandoffFor<R>
where
    R: SpawnResult,
    M: FnMut() -> A + Send + 'static,
    A: FnOnce() -> R + Send + 'static,
    H: HookSet<R> + Send + Sync + 'static,
{
    // The first attempt of a sync body runs to completion when first polled, and a sync
    // function has no timeout, so this future is ready at its first poll.
    let fut = core::pin::pin!(handoff(returns, spec, attempter));
    match fut.poll(&mut Context::from_waker(core::task::Waker::noop())) {
        Poll::Ready(h) => h,
        Poll::Pending => unreachable!("a sync hand-off call never waits before its handle"),
    }
}
