//! One call's rules: the outcome of an attempt in, the next step out.
//!
//! The engine decides everything that follows an attempt: whether the error is worth
//! retrying, how long to wait (the policy, a wait the error asks for, the budget), which
//! events are logged, which hooks run and in what order, and what the report says. It never
//! sleeps, spawns, or reads a clock of its own: the executors (inline sync, inline async,
//! background, hand-off, and the durable worker) run the attempts, pass the clock in, and do
//! what the returned [`Step`] says. This is the shape of the sans-I/O protocol crates: state
//! in, event in, action out.
//!
//! ```
//! use retry_runtime::{Attempts, Decision, Policy, Reason};
//! use std::time::{Duration, SystemTime};
//!
//! let policy = Policy::new().max_retries(Some(1)).delay(Duration::from_millis(5));
//! let mut a = Attempts::new();
//! a.start_attempt();
//! assert_eq!(a.decide(&policy, true, None, None), Decision::Retry(Duration::from_millis(5)));
//! a.start_attempt();
//! assert_eq!(a.decide(&policy, true, None, None), Decision::Stop(Reason::Exhausted));
//! ```

use core::marker::PhantomData;
use core::time::Duration;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::cid::CallCtx;
use crate::hooks::HookSet;
use crate::report::{Reason, Report};
use crate::site::Site;
use crate::{Policy, RetryResult};

/// The progress of one call, as plain numbers: attempts made, the last wait (for
/// decorrelated jitter) and the wall-clock time the call started, if it was read.
///
/// Nothing in it is local to a process, so a worker in another process can store it, load
/// it and carry the call on where it stopped, budget included.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct Attempts {
    /// Attempts started.
    pub made: u32,
    /// The last wait in nanoseconds; kept for decorrelated jitter only.
    pub last_wait_ns: u64,
    /// When the call started (wall clock), if anything needed it read.
    pub started: Option<SystemTime>,
}

/// How an inline call keeps its [`Attempts`] between two steps of the engine: as they are (a
/// sync call, whose state the optimizer keeps in registers), or [`PackedAttempts`] (an async
/// call, whose state is in its future).
#[doc(hidden)]
pub trait CallState: Copy + core::fmt::Debug {
    /// The progress, to give to the engine.
    fn load(self) -> Attempts;
    /// The progress, as the engine left it.
    fn store(a: Attempts) -> Self;
    /// Counts an attempt about to start; see [`Attempts::start_attempt`].
    fn start_attempt(&mut self);
    /// Attempts started.
    fn made(&self) -> u32;
    /// Whether the call's start was read (something observes the call).
    fn observed(&self) -> bool;
}

impl CallState for Attempts {
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn load(self) -> Attempts {
        self
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn store(a: Attempts) -> Self {
        a
    }
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn start_attempt(&mut self) {
        Attempts::start_attempt(self);
    }
    #[inline]
    fn made(&self) -> u32 {
        self.made
    }
    #[inline]
    fn observed(&self) -> bool {
        self.started.is_some()
    }
}

/// [`Attempts`] in 24 bytes instead of 32: the start as seconds and nanoseconds from the Unix
/// epoch, with the attempt count in what would be the padding of a `SystemTime`. An async
/// call keeps its progress so, which leaves room in its future for the one timer it reuses
/// for every wait (see `run::wait::Timers`) without growing past a hand-written loop's.
#[doc(hidden)]
#[derive(Clone, Copy, Debug)]
pub struct PackedAttempts {
    made: u32,
    /// `NO_START` when the start was not read.
    nanos: u32,
    secs: i64,
    last_wait_ns: u64,
}

impl PackedAttempts {
    const NO_START: u32 = u32::MAX;
}

impl CallState for PackedAttempts {
    #[inline]
    fn load(self) -> Attempts {
        let started = (self.nanos != Self::NO_START).then(|| {
            let after = Duration::new(0, self.nanos);
            match u64::try_from(self.secs) {
                Ok(secs) => UNIX_EPOCH + Duration::from_secs(secs) + after,
                Err(_) => UNIX_EPOCH - Duration::from_secs(self.secs.unsigned_abs()) + after,
            }
        });
        Attempts {
            made: self.made,
            last_wait_ns: self.last_wait_ns,
            started,
        }
    }
    #[inline]
    fn store(a: Attempts) -> Self {
        let (secs, nanos) = match a.started {
            None => (0, Self::NO_START),
            Some(start) => match start.duration_since(UNIX_EPOCH) {
                Ok(since) => (
                    i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
                    since.subsec_nanos(),
                ),
                // Before the epoch: whole seconds down, nanoseconds up from there.
                Err(before) => {
                    let before = before.duration();
                    let secs = i64::try_from(before.as_secs()).unwrap_or(i64::MAX);
                    match before.subsec_nanos() {
                        0 => (-secs, 0),
                        n => (-secs - 1, 1_000_000_000 - n),
                    }
                }
            },
        };
        Self {
            made: a.made,
            nanos,
            secs,
            last_wait_ns: a.last_wait_ns,
        }
    }
    #[inline]
    fn start_attempt(&mut self) {
        self.made = self.made.saturating_add(1);
    }
    #[inline]
    fn made(&self) -> u32 {
        self.made
    }
    #[inline]
    fn observed(&self) -> bool {
        self.nanos != Self::NO_START
    }
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
    /// A call with no attempt yet and no clock reading.
    #[must_use]
    #[inline]
    pub const fn new() -> Self {
        Self {
            made: 0,
            last_wait_ns: 0,
            started: None,
        }
    }

    /// A call that started at `now`.
    #[must_use]
    #[inline]
    pub const fn started_at(now: SystemTime) -> Self {
        Self {
            made: 0,
            last_wait_ns: 0,
            started: Some(now),
        }
    }

    /// The progress of a call that is kept (stored, or carried on from a store): its start
    /// read at `now` if nothing read it yet. A kept call always has its start, for its budget
    /// and its record, whether or not anything observed it; the durable executor and a
    /// `persist = "on_failure"` store both ask here.
    ///
    /// ```
    /// use retry_runtime::Attempts;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let (t0, t1) = (UNIX_EPOCH + Duration::from_secs(10), UNIX_EPOCH + Duration::from_secs(20));
    /// assert_eq!(Attempts::new().kept_from(t1).started, Some(t1));
    /// assert_eq!(Attempts::started_at(t0).kept_from(t1).started, Some(t0));
    /// ```
    #[must_use]
    #[inline]
    pub const fn kept_from(self, now: SystemTime) -> Self {
        Self {
            started: match self.started {
                Some(s) => Some(s),
                None => Some(now),
            },
            ..self
        }
    }

    /// Rebuilds the progress of a stored call from its numbers.
    ///
    /// ```
    /// # #![allow(deprecated)]
    /// use retry_runtime::Attempts;
    /// let a = Attempts::from_parts(3, 0, Some(1_700_000_000_000));
    /// assert_eq!(a.made, 3);
    /// assert_eq!(a.started_unix_ms(), Some(1_700_000_000_000));
    /// ```
    #[deprecated(
        note = "build `Attempts { made, last_wait_ns, started }`; a stored call's \
                         progress converts through `durable::Progress`"
    )]
    #[must_use]
    pub fn from_parts(made: u32, last_wait_ns: u64, started_unix_ms: Option<u64>) -> Self {
        Self {
            made,
            last_wait_ns,
            started: started_unix_ms.map(|ms| UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }

    /// The start time in Unix milliseconds, for storing.
    #[deprecated(note = "read `started`; a stored call's progress converts through \
                         `durable::Progress`")]
    #[must_use]
    pub fn started_unix_ms(&self) -> Option<u64> {
        self.started.map(|s| {
            s.duration_since(UNIX_EPOCH)
                .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        })
    }

    /// Counts an attempt about to start and returns its number (1 for the first).
    #[inline]
    pub fn start_attempt(&mut self) -> u32 {
        self.made = self.made.saturating_add(1);
        self.made
    }

    /// Whether the policy allows no further attempt.
    #[must_use]
    #[inline]
    pub fn out_of_attempts(&self, policy: &Policy) -> bool {
        policy.max_attempts().is_some_and(|max| self.made >= max)
    }

    /// Decides what follows a failed attempt. `retryable` is the verdict of `when` (or
    /// `true`), `hint` a wait the error asked for, `now` the time, needed only when the policy
    /// has a budget.
    ///
    /// A wait the error asks for is honoured as asked: `max_delay` caps only computed waits.
    /// When an asked-for wait would end past the budget, the call stops with
    /// [`Reason::BudgetSpent`] rather than retry early; a computed wait is shortened to fit.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn decide(
        &mut self,
        policy: &Policy,
        retryable: bool,
        hint: Option<Duration>,
        now: Option<SystemTime>,
    ) -> Decision {
        if !retryable {
            return Decision::Stop(Reason::NotRetryable);
        }
        if self.out_of_attempts(policy) {
            return Decision::Stop(Reason::Exhausted);
        }
        let mut wait = match hint {
            Some(h) => h,
            None => policy.jittered(
                policy.base_delay(self.made),
                Duration::from_nanos(self.last_wait_ns),
            ),
        };
        if let Some(budget) = policy.budget {
            let elapsed = match (self.started, now) {
                (Some(s), Some(n)) => n.duration_since(s).unwrap_or(Duration::ZERO),
                _ => Duration::ZERO,
            };
            let Some(left) = budget.checked_sub(elapsed).filter(|l| !l.is_zero()) else {
                return Decision::Stop(Reason::BudgetSpent);
            };
            if hint.is_some() && wait > left {
                return Decision::Stop(Reason::BudgetSpent);
            }
            wait = wait.min(left);
        }
        if policy.jitter == crate::Jitter::Decorrelated {
            self.last_wait_ns = u64::try_from(wait.as_nanos()).unwrap_or(u64::MAX);
        }
        Decision::Retry(wait)
    }

    /// Time since the call started (zero if its start was never read).
    #[must_use]
    pub fn elapsed(&self, now: SystemTime) -> Duration {
        self.started.map_or(Duration::ZERO, |s| {
            now.duration_since(s).unwrap_or_default()
        })
    }
}

/// The clock an executor passes to the engine.
pub trait Clock {
    /// The time now.
    fn now(&self) -> SystemTime;
}

/// The start of a call that something observes: the time, and the call counted by the
/// throttle's window if it has one. Out of line, with its arguments in registers, so that the
/// start of an unobserved call is one check.
#[inline(never)]
fn start_observed(
    clock: &impl Clock,
    throttle: Option<&crate::ops::throttle::Window>,
) -> SystemTime {
    let now = clock.now();
    if let Some(window) = throttle {
        window.call(now);
    }
    now
}

/// What an attempt came to.
pub enum AttemptOutcome<R: RetryResult> {
    /// The body returned.
    Returned(R),
    /// The attempt ran into the per-attempt timeout and failed with this error.
    TimedOut(R::Err),
    /// The attempt panicked, with this message.
    Panicked(String),
    /// The call was stopped from outside ([`Reason::Cancelled`], [`Reason::ShutDown`]), or
    /// a sync attempt failed after a cancel.
    Stopped(Reason, Option<R::Err>),
}

/// What the executor does next.
pub enum Step<R: RetryResult> {
    /// Wait this long, then attempt again. The failed attempt's error comes back, for an
    /// executor that reports it if the call is stopped during the wait.
    Retry {
        /// The wait.
        wait: Duration,
        /// The error of the attempt that failed.
        error: R::Err,
    },
    /// The call is over.
    Done(End<R>),
}

/// How a call ended. Every hook and event of the ending has already run.
pub enum End<R: RetryResult> {
    /// An attempt succeeded, or the fallback answered with a success.
    Ok(R::Ok),
    /// The call failed; the report owns the error to return (the last attempt's, or the
    /// fallback's), when there is one.
    Failed(Report<R::Err>),
}

/// The old name of [`AttemptOutcome`].
#[deprecated(note = "renamed `AttemptOutcome` (the durable `Outcome` is another thing)")]
pub type Outcome<R> = AttemptOutcome<R>;

/// The old name of [`End`].
#[deprecated(note = "renamed `End`: a call's `Step::Done(End::Ok(v))`")]
pub type Done<R> = End<R>;

/// The rules of one function's calls: its site, policy and hooks.
///
/// Three references, copied by value into the code out of line (the end of a call, an
/// override, the clock at the start), so that no address of the caller's reaches it: the
/// caller's loop keeps its state in registers, and a constant policy folds into it.
#[derive(Debug)]
pub struct Engine<'a, R, H> {
    site: &'a Site,
    policy: &'a Policy,
    hooks: &'a H,
    _returns: PhantomData<fn() -> R>,
}

impl<R, H> Clone for Engine<'_, R, H> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R, H> Copy for Engine<'_, R, H> {}

impl<'a, R: RetryResult, H: HookSet<R>> Engine<'a, R, H> {
    /// The engine of a function.
    #[inline]
    pub fn new(site: &'a Site, policy: &'a Policy, hooks: &'a H) -> Self {
        Self {
            site,
            policy,
            hooks,
            _returns: PhantomData,
        }
    }

    /// The function's name, as reported.
    #[must_use]
    pub fn name(&self) -> &'static str {
        self.site.name(self.hooks.type_name())
    }

    /// The policy in force.
    #[must_use]
    pub fn policy(&self) -> &Policy {
        self.policy
    }

    /// The progress of a call starting now. The clock is read only when something will see
    /// the call's elapsed time: a budget, a hook that reads the report, a subscriber that
    /// wants the failure event, or the metrics (feature `metrics`); a call that nothing
    /// observes reads no clock. A function with a `throttle` counts the call in its window.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn start(&self, clock: &impl Clock) -> Attempts {
        // With a constant policy and no hooks that read the report, all but the level check
        // folds away; the clock is read out of line.
        if self.policy.throttle.is_some()
            || self.policy.budget.is_some()
            || H::WANTS_REPORT
            || cfg!(feature = "metrics")
            || tracing::level_enabled!(tracing::Level::WARN)
        {
            let throttle = self
                .policy
                .throttle
                .is_some()
                .then_some(&self.site.throttle);
            Attempts::started_at(start_observed(clock, throttle))
        } else {
            Attempts::new()
        }
    }

    /// Takes the outcome of the attempt `state.made` and returns what follows. `previous` is
    /// the error of the attempt before, which an executor that keeps it passes in: a success
    /// or a stop from outside reports it as the last error.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn on_outcome(
        &self,
        ctx: &CallCtx,
        state: &mut Attempts,
        outcome: AttemptOutcome<R>,
        previous: Option<R::Err>,
        clock: &impl Clock,
    ) -> Step<R> {
        match outcome {
            AttemptOutcome::Returned(r) => match r.into_result() {
                Ok(v) => self.succeeded(ctx, state, v, previous, clock),
                Err(e) => self.failed(ctx, state, e, false, clock),
            },
            AttemptOutcome::TimedOut(e) => self.failed(ctx, state, e, true, clock),
            AttemptOutcome::Panicked(msg) => self.panicked(ctx, state, &msg, previous, clock),
            AttemptOutcome::Stopped(reason, e) => {
                Step::Done(self.end(ctx, state, reason, e.or(previous), clock))
            }
        }
    }

    /// The old name of [`Engine::on_outcome`].
    #[deprecated(note = "renamed `on_outcome`")]
    pub fn settle(
        &self,
        ctx: &CallCtx,
        state: &mut Attempts,
        outcome: AttemptOutcome<R>,
        previous: Option<R::Err>,
        clock: &impl Clock,
    ) -> Step<R> {
        self.on_outcome(ctx, state, outcome, previous, clock)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn succeeded(
        &self,
        ctx: &CallCtx,
        state: &Attempts,
        v: R::Ok,
        previous: Option<R::Err>,
        clock: &impl Clock,
    ) -> Step<R> {
        self.count(state, Reason::Succeeded, false, || {
            state.elapsed(clock.now())
        });
        if H::HAS_ON_DONE {
            let report = self.report(ctx, state, Reason::Succeeded, previous, clock);
            let _in = ctx.enter();
            self.hooks.done(&report);
        }
        Step::Done(End::Ok(v))
    }

    /// A failed attempt. The common path (a retry) is inline, so that with a constant policy
    /// the decision folds into the caller's loop; the end of the call is out of line.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn failed(
        &self,
        ctx: &CallCtx,
        state: &mut Attempts,
        e: R::Err,
        timed_out: bool,
        clock: &impl Clock,
    ) -> Step<R> {
        let decision = {
            // The hooks run inside the call's context (they may ask for `current_cid()`).
            let _in = H::HOOKS_ON_FAILURE.then(|| ctx.enter());
            // A timed-out attempt's error goes through `when` like any other; `delay_from` is
            // asked only when a retry may follow.
            let retryable = self.hooks.retryable(&e);
            let hint = if retryable && !state.out_of_attempts(self.policy) {
                self.hooks.delay_hint(&e)
            } else {
                None
            };
            self.decide(state, retryable, hint, clock)
        };
        match decision {
            Decision::Retry(wait) => {
                #[cfg(feature = "metrics")]
                self.site.metrics(self.name()).retry();
                // The event and `on_retry` see the call's context; with neither, nothing is
                // entered.
                if H::HOOKS_ON_FAILURE || tracing::level_enabled!(tracing::Level::INFO) {
                    let _in = ctx.enter();
                    self.site
                        .retrying(self.hooks, || ctx.cid(), state.made, &e, wait);
                    self.hooks.before_retry(state.made, &e, wait);
                }
                Step::Retry { wait, error: e }
            }
            Decision::Stop(reason) => {
                self.stopped(ctx, *state, reason.given_timeout(timed_out), e, clock)
            }
        }
    }

    #[inline(never)]
    fn stopped(
        self,
        ctx: &CallCtx,
        state: Attempts,
        reason: Reason,
        e: R::Err,
        clock: &impl Clock,
    ) -> Step<R> {
        Step::Done(self.end(ctx, &state, reason, Some(e), clock))
    }

    /// The decision after a failed attempt, the one place an operator's settings enter: the
    /// policy in force (the function's, or an override of it), the kill switch (an override
    /// with `max = 0`), the policy's rules, then the retry throttle.
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn decide(
        &self,
        state: &mut Attempts,
        retryable: bool,
        hint: Option<Duration>,
        clock: &impl Clock,
    ) -> Decision {
        if crate::ops::overrides::any() {
            let (decision, after) = self.decide_overridden(*state, retryable, hint, clock);
            *state = after;
            return decision;
        }
        self.decide_with(self.policy, state, retryable, hint, clock)
    }

    #[inline(never)]
    fn decide_overridden(
        self,
        mut state: Attempts,
        retryable: bool,
        hint: Option<Duration>,
        clock: &impl Clock,
    ) -> (Decision, Attempts) {
        let decision = match crate::ops::overrides::applied(self.name(), self.policy) {
            Some(p) if retryable && p.max_retries == Some(0) => Decision::Stop(Reason::Disabled),
            Some(p) => self.decide_with(&p, &mut state, retryable, hint, clock),
            None => self.decide_with(self.policy, &mut state, retryable, hint, clock),
        };
        (decision, state)
    }

    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    fn decide_with(
        &self,
        policy: &Policy,
        state: &mut Attempts,
        retryable: bool,
        hint: Option<Duration>,
        clock: &impl Clock,
    ) -> Decision {
        let now = (policy.budget.is_some() || policy.throttle.is_some()).then(|| clock.now());
        let decision = state.decide(policy, retryable, hint, now);
        match (decision, policy.throttle, now) {
            (Decision::Retry(_), Some(throttle), Some(now))
                if !self.site.throttle.try_retry(throttle, now) =>
            {
                Decision::Stop(Reason::Throttled)
            }
            _ => decision,
        }
    }

    /// The metrics of a call's end (feature `metrics`; nothing without it). `elapsed` is
    /// asked only of a call that failed at least once.
    #[inline]
    #[cfg_attr(not(feature = "metrics"), allow(clippy::unused_self))]
    fn count(
        &self,
        state: &Attempts,
        reason: Reason,
        recovered: bool,
        elapsed: impl FnOnce() -> Duration,
    ) {
        #[cfg(feature = "metrics")]
        {
            use crate::ops::metrics::End;
            let end = if recovered {
                End::Recovered
            } else {
                End::Reason(reason)
            };
            self.site
                .metrics(self.name())
                .ended(end, state.made, || elapsed().as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = (state, reason, recovered, elapsed);
    }

    #[cold]
    fn panicked(
        &self,
        ctx: &CallCtx,
        state: &Attempts,
        msg: &str,
        previous: Option<R::Err>,
        clock: &impl Clock,
    ) -> Step<R> {
        let report = self.report(ctx, state, Reason::Panicked, previous, clock);
        self.count(state, Reason::Panicked, false, || report.elapsed);
        let _in = ctx.enter();
        self.site.panicked(self.hooks, &report, msg);
        self.hooks.done(&report);
        Step::Done(End::Failed(report))
    }

    /// Ends a call that did not succeed: `on_exhausted` and `fallback` (for the ends of
    /// retrying: exhausted, budget, not retryable, timed out), then the event (none of
    /// failure when the fallback recovered), then `on_done`.
    fn end(
        &self,
        ctx: &CallCtx,
        state: &Attempts,
        reason: Reason,
        error: Option<R::Err>,
        clock: &impl Clock,
    ) -> End<R> {
        let mut report = self.report(ctx, state, reason, error, clock);
        let _in = ctx.enter();
        if reason.ends_retrying() {
            self.hooks.exhausted(&report);
            if H::HAS_FALLBACK {
                let facts = report.facts();
                report = match self.hooks.recover(report).map(RetryResult::into_result) {
                    Ok(Ok(v)) => {
                        self.count(state, reason, true, || facts.elapsed);
                        self.site.recovered(self.hooks.type_name(), &facts);
                        self.hooks.done(&facts.with_error(None));
                        return End::Ok(v);
                    }
                    Ok(Err(e)) => facts
                        .with_error(Some(e))
                        .with_format(self.hooks.error_formatter()),
                    Err(report) => report,
                };
            }
        }
        self.count(state, reason, false, || report.elapsed);
        self.site.ended(self.hooks, &report);
        self.hooks.done(&report);
        End::Failed(report)
    }

    fn report(
        &self,
        ctx: &CallCtx,
        state: &Attempts,
        reason: Reason,
        error: Option<R::Err>,
        clock: &impl Clock,
    ) -> Report<R::Err> {
        Report::new(
            self.name(),
            (ctx.cid(), ctx.parent()),
            state,
            clock.now(),
            reason,
            *self.policy,
            error,
        )
        .with_format(self.hooks.error_formatter())
    }
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
