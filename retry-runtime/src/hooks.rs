//! The hooks of `#[retry]`, as the expansion hands them to the attempt loop.
//!
//! Each hook the user gives passes through a checking function (`when`, `on_retry`, …) whose
//! `Fn` bound names the expected signature, so a closure's argument types are inferred and a
//! hook that does not fit is reported at the hook. Absent hooks are [`NoHook`].

use core::time::Duration;

use crate::__private::Returns;
use crate::background::DoneSlot;
use crate::{Report, RetryResult};

/// The error type of the function's `Result`.
pub type ErrOf<R> = <R as RetryResult>::Err;

/// No hook given.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

/// A user's hook, after its signature was checked.
#[derive(Clone, Copy, Debug)]
pub struct Hook<F>(pub F);

// Each checking function returns an opaque type that declares the slot it fills: a hook of
// the wrong signature is reported once, here, and the opaque type still satisfies the loop's
// bounds, so no second error follows at the attribute.

/// `when = f`: `Fn(&E) -> bool`.
pub fn when<R, F>(_: Returns<R>, f: F) -> impl WhenSlot<ErrOf<R>>
where
    R: RetryResult,
    F: Fn(&ErrOf<R>) -> bool,
{
    Hook(f)
}

/// `delay_from = f`: `Fn(&E) -> Option<Duration>`.
pub fn delay_from<R, F>(_: Returns<R>, f: F) -> impl DelaySlot<ErrOf<R>>
where
    R: RetryResult,
    F: Fn(&ErrOf<R>) -> Option<Duration>,
{
    Hook(f)
}

/// `on_retry = f`: `Fn(attempt: u32, error: &E, next_delay: Duration)`.
pub fn on_retry<R, F>(_: Returns<R>, f: F) -> impl RetrySlot<ErrOf<R>>
where
    R: RetryResult,
    F: Fn(u32, &ErrOf<R>, Duration),
{
    Hook(f)
}

/// `on_exhausted = f`: `Fn(&Report<E>)`.
pub fn on_exhausted<R, F>(_: Returns<R>, f: F) -> impl ReportSlot<ErrOf<R>>
where
    R: RetryResult,
    F: Fn(&Report<ErrOf<R>>),
{
    Hook(f)
}

/// `fallback = f`: `Fn(Report<E>) -> R`, the report owning the last error.
pub fn fallback<R, F>(_: Returns<R>, f: F) -> impl FallbackSlot<R>
where
    R: RetryResult,
    F: Fn(Report<ErrOf<R>>) -> R,
{
    Hook(f)
}

/// `on_done = f`: `Fn(&Report<E>)`, called once when a background or hand-off call ends.
pub fn on_done<R, F>(_: Returns<R>, f: F) -> impl DoneSlot<ErrOf<R>>
where
    R: RetryResult + 'static,
    F: Fn(&Report<ErrOf<R>>) + Send + Sync + 'static,
{
    Hook(f)
}

/// The hooks of one function, one slot each.
#[derive(Clone, Copy, Debug)]
pub struct Hooks<W, D, OR, OE, FB> {
    /// `when`
    pub when: W,
    /// `delay_from`
    pub delay_from: D,
    /// `on_retry`
    pub on_retry: OR,
    /// `on_exhausted`
    pub on_exhausted: OE,
    /// `fallback`
    pub fallback: FB,
}

/// What the attempt loop asks of the hooks.
pub trait HookSet<R: RetryResult> {
    /// Whether `e` is worth retrying.
    fn retryable(&self, e: &R::Err) -> bool;
    /// A wait the error asks for.
    fn delay_hint(&self, e: &R::Err) -> Option<Duration>;
    /// Before a wait.
    fn before_retry(&self, attempt: u32, e: &R::Err, delay: Duration);
    /// When the call ends in failure.
    fn exhausted(&self, report: &Report<R::Err>);
    /// Whether there is a fallback (reports are only built for someone who reads them).
    const HAS_FALLBACK: bool;
    /// Whether a hook reads the report (`on_exhausted` or `fallback`), which needs the clock.
    const WANTS_REPORT: bool;
    /// Turns the failure into the return value, or gives the report back.
    ///
    /// # Errors
    /// Gives the report back when there is no fallback.
    #[allow(clippy::result_large_err)] // the failure path moves the report once
    fn recover(&self, report: Report<R::Err>) -> Result<R, Report<R::Err>>;
}

/// The `when` slot.
pub trait WhenSlot<E> {
    /// The verdict, or `None` when absent.
    fn call(&self, e: &E) -> Option<bool>;
}

/// The `delay_from` slot.
pub trait DelaySlot<E> {
    /// The wait asked for (`None` also when absent).
    fn call(&self, e: &E) -> Option<Duration>;
}

/// The `on_retry` slot.
pub trait RetrySlot<E> {
    /// Calls the hook, if present.
    fn call(&self, attempt: u32, e: &E, delay: Duration);
}

/// The `on_exhausted` slot.
pub trait ReportSlot<E> {
    /// Whether a hook is there.
    const PRESENT: bool;
    /// Calls the hook, if present.
    fn call(&self, report: &Report<E>);
}

impl<E> WhenSlot<E> for NoHook {
    #[inline]
    fn call(&self, _: &E) -> Option<bool> {
        None
    }
}

impl<E, F: Fn(&E) -> bool> WhenSlot<E> for Hook<F> {
    #[inline]
    fn call(&self, e: &E) -> Option<bool> {
        Some((self.0)(e))
    }
}

impl<E> DelaySlot<E> for NoHook {
    #[inline]
    fn call(&self, _: &E) -> Option<Duration> {
        None
    }
}

impl<E, F: Fn(&E) -> Option<Duration>> DelaySlot<E> for Hook<F> {
    #[inline]
    fn call(&self, e: &E) -> Option<Duration> {
        (self.0)(e)
    }
}

impl<E> RetrySlot<E> for NoHook {
    #[inline]
    fn call(&self, _: u32, _: &E, _: Duration) {}
}

impl<E, F: Fn(u32, &E, Duration)> RetrySlot<E> for Hook<F> {
    #[inline]
    fn call(&self, attempt: u32, e: &E, delay: Duration) {
        (self.0)(attempt, e, delay);
    }
}

impl<E> ReportSlot<E> for NoHook {
    const PRESENT: bool = false;
    #[inline]
    fn call(&self, _: &Report<E>) {}
}

impl<E, F: Fn(&Report<E>)> ReportSlot<E> for Hook<F> {
    const PRESENT: bool = true;
    #[inline]
    fn call(&self, report: &Report<E>) {
        (self.0)(report);
    }
}

/// The fallback slot (it returns the function's own type).
pub trait FallbackSlot<R: RetryResult> {
    /// Whether a fallback is there.
    const PRESENT: bool;
    /// Calls the fallback, or gives the report back.
    ///
    /// # Errors
    /// Gives the report back when there is no fallback.
    #[allow(clippy::result_large_err)]
    fn call(&self, r: Report<R::Err>) -> Result<R, Report<R::Err>>;
}

impl<R: RetryResult> FallbackSlot<R> for NoHook {
    const PRESENT: bool = false;
    #[inline]
    #[allow(clippy::result_large_err)]
    fn call(&self, r: Report<R::Err>) -> Result<R, Report<R::Err>> {
        Err(r)
    }
}

impl<R: RetryResult, F: Fn(Report<R::Err>) -> R> FallbackSlot<R> for Hook<F> {
    const PRESENT: bool = true;
    #[inline]
    #[allow(clippy::result_large_err)]
    fn call(&self, r: Report<R::Err>) -> Result<R, Report<R::Err>> {
        Ok((self.0)(r))
    }
}

impl<R, W, D, OR, OE, FB> HookSet<R> for Hooks<W, D, OR, OE, FB>
where
    R: RetryResult,
    W: WhenSlot<R::Err>,
    D: DelaySlot<R::Err>,
    OR: RetrySlot<R::Err>,
    OE: ReportSlot<R::Err>,
    FB: FallbackSlot<R>,
{
    #[inline]
    fn retryable(&self, e: &R::Err) -> bool {
        self.when.call(e).unwrap_or(true)
    }
    #[inline]
    fn delay_hint(&self, e: &R::Err) -> Option<Duration> {
        self.delay_from.call(e)
    }
    #[inline]
    fn before_retry(&self, attempt: u32, e: &R::Err, delay: Duration) {
        self.on_retry.call(attempt, e, delay);
    }
    #[inline]
    fn exhausted(&self, report: &Report<R::Err>) {
        self.on_exhausted.call(report);
    }
    const HAS_FALLBACK: bool = FB::PRESENT;
    const WANTS_REPORT: bool = FB::PRESENT || OE::PRESENT;
    #[inline]
    #[allow(clippy::result_large_err)]
    fn recover(&self, report: Report<R::Err>) -> Result<R, Report<R::Err>> {
        self.fallback.call(report)
    }
}
