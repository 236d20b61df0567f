//! The inline executor: every attempt runs in the caller, sync or async.
//!
//! The expansion of an inline `#[retry]` function is a loop around a [`Call`]: run an
//! attempt, [`Call::after`] its outcome, then stop or wait as told.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::cid::CallCtx;
use crate::engine::{self, AttemptOutcome, Attempts, CallState, Engine};
use crate::hooks::{HookSet, TypeSlot};
use crate::result::Returns;
use crate::run::clock::{CallClock, SyncClock, TokioClock};
use crate::run::race::WithDeadline;
use crate::run::wait::{self, Armed};
use crate::site::Site;

use crate::{Policy, RetryResult};

/// A function's site and policy together, so a call holds one reference to both: a `static`
/// when every value of the attribute is a constant, a local otherwise.
#[derive(Debug)]
pub struct Setup {
    /// The site.
    pub site: &'static Site,
    /// The policy.
    pub policy: Policy,
}

/// What the loop does next.
#[derive(Debug)]
pub enum Loop<R> {
    /// The call is over; this is its value.
    Return(R),
    /// Wait this long, then attempt again.
    Wait(Duration),
}

/// One inline call of a `#[retry]` function, as the expansion drives it.
///
/// A sync call holds its hooks and context by reference, `(&hooks, &ctx)`, locals of the
/// expansion's own ([`CallCtx::starting`]), and the engine works on a copy of the attempt
/// count: so no address inside the `Call` reaches the code out of line (the end of a call,
/// an override), and the optimizer keeps it in registers, where a constant policy folds
/// into the loop. An async call, whose state is in its future anyway, holds them by value,
/// `(hooks, ctx)`, which keeps the future as small as a hand-written loop's, and keeps the
/// one timer of its waits and time limits (`run::wait::Timers`).
#[derive(Debug)]
pub struct Call<'p, R, C: CallClock, H, X> {
    setup: &'p Setup,
    held: X,
    state: C::State,
    timers: C::Timers,
    _returns: core::marker::PhantomData<fn() -> R>,
    _clock_and_hooks: core::marker::PhantomData<fn() -> (C, H)>,
}

/// How a [`Call`] holds its hooks `H` and its context: by reference or by value.
pub trait Held<H> {
    /// The hooks.
    fn hooks(&self) -> &H;
    /// The context.
    fn ctx(&self) -> &CallCtx;
}

impl<H> Held<H> for (&H, &CallCtx) {
    #[inline]
    fn hooks(&self) -> &H {
        self.0
    }
    #[inline]
    fn ctx(&self) -> &CallCtx {
        self.1
    }
}

impl<H> Held<H> for (H, CallCtx) {
    #[inline]
    fn hooks(&self) -> &H {
        &self.0
    }
    #[inline]
    fn ctx(&self) -> &CallCtx {
        &self.1
    }
}

impl<'p, R: RetryResult, C: CallClock, H: HookSet<R>, X: Held<H>> Call<'p, R, C, H, X> {
    /// Starts a call.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn new(_: Returns<R>, setup: &'p Setup, held: X) -> Self {
        let state = C::State::store(
            Engine::<R, H>::new(setup.site, &setup.policy, held.hooks()).start(&C::default()),
        );
        Self {
            setup,
            held,
            state,
            timers: C::Timers::default(),
            _returns: core::marker::PhantomData,
            _clock_and_hooks: core::marker::PhantomData,
        }
    }

    /// Decides what follows an attempt's value.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn after(&mut self, out: R) -> Loop<R> {
        self.after_outcome(AttemptOutcome::Returned(out))
    }

    /// Decides what follows an attempt's outcome.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn after_outcome(&mut self, outcome: AttemptOutcome<R>) -> Loop<R> {
        match self.engine_step(outcome) {
            engine::Step::Done(engine::End::Ok(v)) => Loop::Return(R::from_ok(v)),
            engine::Step::Done(engine::End::Failed(report)) => match report.last_error {
                Some(e) => Loop::Return(R::from_err(e)),
                None => unreachable!("an inline call ends in failure only with an error"),
            },
            engine::Step::Retry { wait, .. } => Loop::Wait(wait),
        }
    }

    /// The engine's step after an attempt.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn engine_step(&mut self, outcome: AttemptOutcome<R>) -> engine::Step<R> {
        let setup = self.setup;
        let engine = Engine::new(setup.site, &setup.policy, self.held.hooks());
        let mut state = self.state.load();
        let step = engine.on_outcome(self.held.ctx(), &mut state, outcome, None, &C::default());
        self.state = C::State::store(state);
        step
    }

    /// The first attempt of a `persist = "on_failure"` durable call: the call's value when
    /// the engine ends it, or, when it says retry, what storing the call needs.
    ///
    /// # Errors
    /// The first failure, to store.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn after_first(&mut self, outcome: AttemptOutcome<R>) -> Result<R, FirstFailure> {
        match self.engine_step(outcome) {
            engine::Step::Done(engine::End::Ok(v)) => Ok(R::from_ok(v)),
            engine::Step::Done(engine::End::Failed(report)) => match report.last_error {
                Some(e) => Ok(R::from_err(e)),
                None => unreachable!("an inline call ends in failure only with an error"),
            },
            engine::Step::Retry { wait, error } => {
                let ctx = self.held.ctx();
                Err(FirstFailure {
                    wait,
                    error: crate::events::show_error::<R, H>(self.held.hooks(), &error),
                    progress: self.state.load(),
                    cid: ctx.cid(),
                    parent: ctx.parent(),
                })
            }
        }
    }
}

/// A first attempt that failed and is worth retrying: what a `persist = "on_failure"` call
/// stores so that a worker carries it on.
#[cfg(feature = "sqlite")]
#[derive(Debug)]
pub struct FirstFailure {
    /// The engine's wait before the next attempt.
    pub wait: Duration,
    /// The attempt's error, as the function's hooks show it.
    pub error: String,
    /// The call's progress.
    pub progress: Attempts,
    /// The call's ID.
    pub cid: crate::CorrelationId,
    /// The enclosing call's ID.
    pub parent: Option<crate::CorrelationId>,
}

// The attempts and waits ask nothing of the return type, so that a wrong one is reported
// where the call starts and settles, not again here.
impl<R, C: CallClock, H: TypeSlot, X: Held<H>> Call<'_, R, C, H, X> {
    /// Runs one sync attempt inside the call's context and span.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn attempt(&mut self, body: impl FnOnce() -> R) -> R {
        self.state.start_attempt();
        let ctx = self.held.ctx();
        // Two paths, so that the common one (no subscriber) has no span to drop.
        if let Some(span) = self.setup.site.span(
            self.held.hooks().type_name(),
            ctx,
            self.state.made(),
            self.state.observed(),
        ) {
            let _span = span.enter();
            let _ctx = ctx.enter();
            body()
        } else {
            let _ctx = ctx.enter();
            body()
        }
    }

    /// Runs one async attempt inside the call's context and span.
    #[inline]
    pub fn attempt_async<F: Future<Output = R>>(&mut self, fut: F) -> InCall<&CallCtx, F> {
        let span = self.start_async();
        InCall {
            ctx: self.held.ctx(),
            span,
            fut,
        }
    }

    /// Counts an async attempt and makes its span, if anything wants one. Boxed, so that the
    /// attempt's future carries 8 bytes for it, not 40: a span is only there when a
    /// subscriber wants it, and then the subscriber allocates for it anyway.
    #[inline]
    fn start_async(&mut self) -> Option<Box<tracing::Span>> {
        self.state.start_attempt();
        self.setup
            .site
            .span(
                self.held.hooks().type_name(),
                self.held.ctx(),
                self.state.made(),
                self.state.observed(),
            )
            .map(Box::new)
    }
}

impl<R, H, X> Call<'_, R, SyncClock, H, X> {
    /// Waits before the next sync attempt.
    #[inline]
    pub fn wait(&self, d: Duration) {
        wait::blocking(d);
    }
}

impl<R: RetryResult, H: HookSet<R>, X: Held<H>> Call<'_, R, SyncClock, H, X> {
    /// Runs a sync call to its end: `body` is one attempt. The first attempt and its
    /// success are in the caller; the retries, if any, out of line in [`Call::retrying`], so
    /// that the caller's path of a first-attempt success holds nothing the loop needs (no
    /// registers saved for it). The same steps as the loop `attempt`, `after`, `wait`.
    ///
    /// Without optimization (debug assertions on), the body is passed on as a `dyn FnMut`,
    /// so that the attempts and the loop are compiled once per return and hooks type, not
    /// once per function: what each function adds to a debug build is its closure and this
    /// call (compile time, `benches/compile_time.py`). Optimized, it stays generic, so that
    /// the body is inlined into the first attempt and the policy folds.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn run(self, mut body: impl FnMut() -> R) -> R {
        #[cfg(debug_assertions)]
        let body = &mut body as &mut dyn FnMut() -> R;
        #[cfg(not(debug_assertions))]
        let body = &mut body;
        self.run_with(body)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn run_with(mut self, mut body: impl FnMut() -> R) -> R {
        let out = self.attempt(&mut body);
        match self.after(out) {
            Loop::Return(r) => r,
            Loop::Wait(d) => Self::retrying(self.setup, self.held, self.state, d, body),
        }
    }

    /// The attempts after the first failure of [`Call::run`]. The call's parts come as
    /// separate arguments, so that the optimizer sees the one caller's constant setup (a
    /// `static`) and folds the policy into the loop as it does inline.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn retrying(
        setup: &Setup,
        held: X,
        state: Attempts,
        mut d: Duration,
        mut body: impl FnMut() -> R,
    ) -> R {
        let mut call = Call::<R, SyncClock, H, X> {
            setup,
            held,
            state,
            timers: (),
            _returns: core::marker::PhantomData,
            _clock_and_hooks: core::marker::PhantomData,
        };
        loop {
            call.wait(d);
            let out = call.attempt(&mut body);
            match call.after(out) {
                Loop::Return(r) => return r,
                Loop::Wait(next) => d = next,
            }
        }
    }
}

impl<R, H, X> Call<'_, R, TokioClock, H, X> {
    /// Waits before the next async attempt, on the call's one timer (`run::wait::Timers`).
    #[inline]
    pub fn wait(&mut self, d: Duration) -> Armed<'_> {
        self.timers.arm(d)
    }
}

impl<R: RetryResult, H: TypeSlot, X: Held<H>> Call<'_, R, TokioClock, H, X> {
    /// Runs one async attempt with the policy's time limit, on the call's one timer; a
    /// timed-out attempt fails with the error `timed_out` makes.
    pub async fn attempt_timeout<F: Future<Output = R>>(
        &mut self,
        timed_out: fn() -> R::Err,
        fut: F,
    ) -> AttemptOutcome<R> {
        let span = self.start_async();
        let attempt = InCall {
            ctx: self.held.ctx(),
            span,
            fut,
        };
        let deadline = self.setup.policy.timeout.map(|d| self.timers.arm(d));
        match (WithDeadline {
            fut: attempt,
            deadline,
        })
        .await
        {
            Some(r) => AttemptOutcome::Returned(r),
            None => AttemptOutcome::TimedOut(timed_out()),
        }
    }
}

pin_project_lite::pin_project! {
    /// An async attempt running inside its call's context and span.
    #[derive(Debug)]
    pub struct InCall<C, F> {
        pub(crate) ctx: C,
        pub(crate) span: Option<Box<tracing::Span>>,
        #[pin]
        pub(crate) fut: F,
    }
}

impl<C: core::borrow::Borrow<CallCtx>, F> InCall<C, F> {
    pub(crate) fn new(ctx: C, span: Option<tracing::Span>, fut: F) -> Self {
        let span = span.map(Box::new);
        Self { ctx, span, fut }
    }
}

impl<C: core::borrow::Borrow<CallCtx>, F: Future> Future for InCall<C, F> {
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let _span = this.span.as_deref().map(tracing::Span::enter);
        let _ctx = (*this.ctx).borrow().enter();
        this.fut.poll(cx)
    }
}
