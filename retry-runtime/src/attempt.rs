//! The attempt loop: a small state machine that decides, after each failure, whether to wait
//! and try again or to stop, and the per-call driver the expansion of `#[retry]` runs.
//!
//! [`Attempts`] holds nothing but plain numbers, so a worker that loads a call from a store can
//! rebuild it and carry on where the last process stopped.

use core::future::Future;
use core::marker::PhantomData;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;
use std::time::Instant;

use crate::cid::CallCtx;
use crate::hooks::HookSet;
use crate::report::{Reason, Report};
use crate::{testing, Policy, RetryResult};

/// The progress of one call: how many attempts were made, the last wait, and when the clock
/// was first read.
///
/// ```
/// use retry_runtime::{Attempts, Decision, Policy, Reason};
/// use std::time::{Duration, Instant};
///
/// let policy = Policy::new().max_retries(Some(1)).delay(Duration::from_millis(5));
/// let mut a = Attempts::new(&policy, || Instant::now());
/// a.start_attempt();
/// assert_eq!(a.after_failure(&policy, true, None, Instant::now, false), Decision::Retry(Duration::from_millis(5)));
/// a.start_attempt();
/// assert_eq!(a.after_failure(&policy, true, None, Instant::now, false), Decision::Stop(Reason::Exhausted));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Attempts {
    /// Attempts started.
    pub made: u32,
    /// Whether the last attempt ran into the per-attempt timeout.
    pub timed_out: bool,
    /// The last wait in nanoseconds; kept for decorrelated jitter only.
    pub last_wait_ns: u64,
    /// When the clock was first read for this call.
    pub started: Option<Instant>,
}

/// What to do after a failed attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Wait this long, then attempt again.
    Retry(Duration),
    /// Stop, for this reason.
    Stop(Reason),
}

impl Attempts {
    /// A new call. The clock is read now only when the policy has a budget (which counts from
    /// the call's start); otherwise not before the first failure.
    #[inline]
    pub fn new(policy: &Policy, now: impl FnOnce() -> Instant) -> Self {
        Self {
            made: 0,
            timed_out: false,
            last_wait_ns: 0,
            started: if policy.budget.is_some() {
                Some(now())
            } else {
                None
            },
        }
    }

    /// Counts an attempt about to start and returns its number (1 for the first).
    #[inline]
    pub fn start_attempt(&mut self) -> u32 {
        self.made = self.made.saturating_add(1);
        self.made
    }

    /// Decides what follows a failed attempt. `retryable` is the verdict of `when` (or `true`),
    /// `hint` a wait the error asked for. Reads the clock only when a budget needs it, or at
    /// the first failure when `keep_time` says that someone will read the call's elapsed time
    /// (a report hook, a log subscriber).
    #[inline]
    pub fn after_failure(
        &mut self,
        policy: &Policy,
        retryable: bool,
        hint: Option<Duration>,
        now: impl FnOnce() -> Instant,
        keep_time: bool,
    ) -> Decision {
        let now = if policy.budget.is_some() {
            Some(now())
        } else {
            if keep_time && self.started.is_none() {
                self.started = Some(now());
            }
            None
        };
        self.decide(policy, retryable, hint, now)
    }

    #[inline]
    fn decide(
        &mut self,
        policy: &Policy,
        retryable: bool,
        hint: Option<Duration>,
        now: Option<Instant>,
    ) -> Decision {
        if !retryable {
            return Decision::Stop(Reason::NotRetryable);
        }
        if let Some(max) = policy.max_attempts() {
            if self.made >= max {
                return Decision::Stop(Reason::Exhausted);
            }
        }
        let mut wait = match hint {
            Some(h) => policy.cap(h),
            None => policy.jittered(
                policy.base_delay(self.made),
                Duration::from_nanos(self.last_wait_ns),
            ),
        };
        if let (Some(budget), Some(start)) = (policy.budget, self.started) {
            let elapsed = now.map_or(Duration::ZERO, |n| n.saturating_duration_since(start));
            let Some(left) = budget.checked_sub(elapsed).filter(|l| !l.is_zero()) else {
                return Decision::Stop(Reason::BudgetSpent);
            };
            wait = wait.min(left);
        }
        if policy.jitter == crate::Jitter::Decorrelated {
            self.last_wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        }
        Decision::Retry(wait)
    }

    /// Time since the clock was first read.
    #[must_use]
    pub fn elapsed(&self, now: Instant) -> Duration {
        self.started
            .map_or(Duration::ZERO, |s| now.saturating_duration_since(s))
    }
}

/// A clock and a way to wait: the real thread clock for sync functions, tokio's for async.
pub trait Clock {
    /// The time now.
    fn now() -> Instant;
}

/// Sync functions: `std` time, virtual under [`crate::testing::instant_sleeps`].
#[derive(Debug)]
pub enum SyncClock {}

/// Async functions: tokio's clock, which a paused test runtime controls.
#[derive(Debug)]
pub enum TokioClock {}

impl Clock for SyncClock {
    fn now() -> Instant {
        testing::now()
    }
}

impl Clock for TokioClock {
    fn now() -> Instant {
        tokio::time::Instant::now().into_std()
    }
}

/// The static facts of one `#[retry]` function.
#[derive(Debug)]
pub struct Site {
    /// The stable name.
    pub name: &'static str,
    /// The call site of the function's attempt spans (its metadata names the span after the
    /// function). The expansion declares only this static and its metadata; the span itself is
    /// made here, which keeps each expansion small.
    pub callsite: &'static tracing::callsite::DefaultCallsite,
}

/// The metadata of a function's attempt spans: named after the function, with the fields
/// `cid` and `attempt`, at INFO.
#[must_use]
pub const fn span_metadata(
    name: &'static str,
    target: &'static str,
    file: &'static str,
    line: u32,
    callsite: &'static tracing::callsite::DefaultCallsite,
) -> tracing::Metadata<'static> {
    tracing::Metadata::new(
        name,
        target,
        tracing::Level::INFO,
        Some(file),
        Some(line),
        Some(target),
        tracing::field::FieldSet::new(&["cid", "attempt"], tracing::callsite::Identifier(callsite)),
        tracing::metadata::Kind::SPAN,
    )
}

impl Site {
    /// The span of one attempt, or `None` when no subscriber wants it. The cheap static and
    /// global level checks come first, inline; the call site is asked only after them.
    #[inline]
    pub(crate) fn span(
        &self,
        cid: impl FnOnce() -> crate::CorrelationId,
        attempt: u32,
    ) -> Option<tracing::Span> {
        if !tracing::level_enabled!(tracing::Level::INFO) {
            return None;
        }
        self.enabled_span(cid(), attempt)
    }

    fn enabled_span(&self, cid: crate::CorrelationId, attempt: u32) -> Option<tracing::Span> {
        let interest = self.callsite.interest();
        if interest.is_never() {
            return None;
        }
        let meta = tracing::callsite::Callsite::metadata(self.callsite);
        if !interest.is_always() && !tracing::dispatcher::get_default(|d| d.enabled(meta)) {
            return None;
        }
        let fields = meta.fields();
        let (Some(cid_field), Some(attempt_field)) = (fields.field("cid"), fields.field("attempt"))
        else {
            return None;
        };
        let cid = tracing::field::display(cid);
        let values: [(&tracing::field::Field, Option<&dyn tracing::Value>); 2] =
            [(&cid_field, Some(&cid)), (&attempt_field, Some(&attempt))];
        Some(tracing::Span::new(meta, &fields.value_set(&values)))
    }
}

/// A function's site and policy together, so a call holds one reference to both: a `static`
/// when every value of the attribute is a literal, a local otherwise.
#[derive(Debug)]
pub struct Setup {
    /// The site.
    pub site: &'static Site,
    /// The policy.
    pub policy: Policy,
}

/// What the loop does next.
#[derive(Debug)]
pub enum Step<R> {
    /// The call is over; this is its value.
    Done(R),
    /// Wait this long, then attempt again.
    Wait(Duration),
}

/// One call of a `#[retry]` function, as the expansion drives it.
#[derive(Debug)]
pub struct Call<'p, R, C> {
    setup: &'p Setup,
    ctx: CallCtx,
    state: Attempts,
    _marker: PhantomData<(fn() -> R, C)>,
}

impl<'p, R: RetryResult, C: Clock> Call<'p, R, C> {
    /// Starts a call.
    #[inline]
    pub fn new(_: crate::__private::Returns<R>, setup: &'p Setup) -> Self {
        Self {
            setup,
            ctx: CallCtx::new(),
            state: Attempts::new(&setup.policy, C::now),
            _marker: PhantomData,
        }
    }

    #[inline]
    fn span(&self, attempt: u32) -> Option<Box<tracing::Span>> {
        // Boxed, so that the attempt's future carries 8 bytes for it, not 40: a span is only
        // there when a subscriber wants it, and then the subscriber allocates for it anyway.
        self.setup
            .site
            .span(|| self.ctx.cid(), attempt)
            .map(Box::new)
    }

    /// Runs one sync attempt inside the call's context and span.
    #[inline]
    pub fn attempt(&mut self, body: impl FnOnce() -> R) -> R {
        let n = self.state.start_attempt();
        // Two paths, so that the common one (no subscriber) has no span to drop.
        if let Some(span) = self.setup.site.span(|| self.ctx.cid(), n) {
            let _span = span.enter();
            let _ctx = self.ctx.enter();
            body()
        } else {
            let _ctx = self.ctx.enter();
            body()
        }
    }

    /// Runs one async attempt inside the call's context and span.
    #[inline]
    pub fn attempt_async<F: Future<Output = R>>(&mut self, fut: F) -> InCall<&CallCtx, F> {
        let n = self.state.start_attempt();
        InCall {
            ctx: &self.ctx,
            span: self.span(n),
            fut,
        }
    }

    /// Runs one async attempt with the policy's time limit; a timed-out attempt fails with
    /// the error `timed_out` makes.
    pub async fn attempt_timeout<F: Future<Output = R>>(
        &mut self,
        timed_out: fn() -> R::Err,
        fut: F,
    ) -> R {
        let Some(limit) = self.setup.policy.timeout else {
            return self.attempt_async(fut).await;
        };
        if let Ok(r) = tokio::time::timeout(limit, self.attempt_async(fut)).await {
            r
        } else {
            self.state.timed_out = true;
            R::from_err(timed_out())
        }
    }

    /// Decides what follows an attempt's outcome.
    #[inline]
    pub fn settle<H: HookSet<R>>(&mut self, out: R, hooks: &H) -> Step<R> {
        match out.into_result() {
            Ok(v) => Step::Done(R::from_ok(v)),
            Err(e) => self.failed(e, hooks),
        }
    }

    #[inline(never)]
    fn failed<H: HookSet<R>>(&mut self, e: R::Err, hooks: &H) -> Step<R> {
        let timed_out = core::mem::take(&mut self.state.timed_out);
        let retryable = timed_out || hooks.retryable(&e);
        let hint = if retryable {
            hooks.delay_hint(&e)
        } else {
            None
        };
        let n = self.state.made;
        let keep_time = H::WANTS_REPORT || tracing::level_enabled!(tracing::Level::WARN);
        match self
            .state
            .after_failure(&self.setup.policy, retryable, hint, C::now, keep_time)
        {
            Decision::Retry(wait) => {
                crate::report::log_retry(self.setup.site.name, || self.ctx.cid(), n, &e, wait);
                hooks.before_retry(n, &e, wait);
                Step::Wait(wait)
            }
            Decision::Stop(reason) => {
                let report = self.report(reason.given_timeout(timed_out), Some(e));
                report.log_failure();
                hooks.exhausted(&report);
                match hooks.recover(report) {
                    Ok(r) => Step::Done(r),
                    Err(mut report) => match report.last_error.take() {
                        Some(e) => Step::Done(R::from_err(e)),
                        None => unreachable!("a failed inline call has an error"),
                    },
                }
            }
        }
    }

    fn report(&self, reason: Reason, last_error: Option<R::Err>) -> Report<R::Err> {
        Report::ending(
            self.setup.site.name,
            (self.ctx.cid(), self.ctx.parent()),
            &self.state,
            C::now(),
            reason,
            self.setup.policy,
            last_error,
        )
    }
}

impl<R: RetryResult> Call<'_, R, SyncClock> {
    /// Waits before the next sync attempt.
    #[inline]
    pub fn wait(&self, d: Duration) {
        testing::sleep(d);
    }
}

impl<R: RetryResult> Call<'_, R, TokioClock> {
    /// Waits before the next async attempt. A zero wait registers no timer; a non-zero one
    /// boxes its tokio `Sleep`, so the call's future does not carry the timer's 112 bytes
    /// through every attempt (one allocation per real wait, next to a timer registration).
    #[inline]
    pub fn wait(&self, d: Duration) -> Wait {
        Wait((!d.is_zero()).then(|| Box::pin(tokio::time::sleep(d))))
    }
}

/// The wait between two async attempts.
#[derive(Debug)]
#[must_use = "a wait does nothing unless awaited"]
pub struct Wait(Option<Pin<Box<tokio::time::Sleep>>>);

impl Future for Wait {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            None => Poll::Ready(()),
            Some(s) => s.as_mut().poll(cx),
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
