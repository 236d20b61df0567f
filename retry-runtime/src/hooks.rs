//! The hooks of `#[retry]`, as the expansion hands them to the attempt loop.
//!
//! Each hook the user gives passes through a checking function (`when`, `on_retry`, …) whose
//! `Fn` bound names the expected signature, so a closure's argument types are inferred and a
//! hook that does not fit is reported at the hook. Absent hooks are [`NoHook`].

use core::time::Duration;

use crate::{Report, RetryResult};

/// The error type of the function's `Result`.
pub type ErrOf<R> = <R as RetryResult>::Err;

/// No hook given.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoHook;

/// A user's hook, after its signature was checked.
#[derive(Clone, Copy, Debug)]
pub struct Hook<F>(pub F);

/// `when = f`: `Fn(&E) -> bool`.
pub fn when<R: RetryResult, F: Fn(&ErrOf<R>) -> bool>(f: F) -> Hook<F> {
    Hook(f)
}

/// `delay_from = f`: `Fn(&E) -> Option<Duration>`.
pub fn delay_from<R: RetryResult, F: Fn(&ErrOf<R>) -> Option<Duration>>(f: F) -> Hook<F> {
    Hook(f)
}

/// `on_retry = f`: `Fn(attempt: u32, error: &E, next_delay: Duration)`.
pub fn on_retry<R: RetryResult, F: Fn(u32, &ErrOf<R>, Duration)>(f: F) -> Hook<F> {
    Hook(f)
}

/// `on_exhausted = f`: `Fn(&Report<E>)`.
pub fn on_exhausted<R: RetryResult, F: Fn(&Report<ErrOf<R>>)>(f: F) -> Hook<F> {
    Hook(f)
}

/// `fallback = f`: `Fn(Report<E>) -> R`, the report owning the last error.
pub fn fallback<R: RetryResult, F: Fn(Report<ErrOf<R>>) -> R>(f: F) -> Hook<F> {
    Hook(f)
}

/// `on_done = f`: `Fn(&Report<E>)`, called once when a background or hand-off call ends.
pub fn on_done<R: RetryResult, F: Fn(&Report<ErrOf<R>>)>(f: F) -> Hook<F> {
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
    /// Turns the failure into the return value, or gives the report back.
    ///
    /// # Errors
    /// Gives the report back when there is no fallback.
    #[allow(clippy::result_large_err)] // the failure path moves the report once
    fn recover(&self, report: Report<R::Err>) -> Result<R, Report<R::Err>>;
}

/// One slot's behaviour, present or absent.
pub trait Slot<A, O> {
    /// Calls the hook, or returns `None` when absent.
    fn call(&self, a: A) -> Option<O>;
}

impl<A, O> Slot<A, O> for NoHook {
    #[inline]
    fn call(&self, _: A) -> Option<O> {
        None
    }
}

macro_rules! slot {
    ($($arg:ident: $ty:ty),* => $out:ty) => {
        #[allow(clippy::unused_unit)]
        impl<'a, E: 'a, F: Fn($($ty),*) -> $out> Slot<($($ty,)*), $out> for Hook<F> {
            #[inline]
            fn call(&self, ($($arg,)*): ($($ty,)*)) -> Option<$out> {
                Some((self.0)($($arg),*))
            }
        }
    };
}
slot!(e: &'a E => bool);
slot!(e: &'a E => Option<Duration>);
slot!(n: u32, e: &'a E, d: Duration => ());
slot!(r: &'a Report<E> => ());

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
    W: for<'a> Slot<(&'a R::Err,), bool>,
    D: for<'a> Slot<(&'a R::Err,), Option<Duration>>,
    OR: for<'a> Slot<(u32, &'a R::Err, Duration), ()>,
    OE: for<'a> Slot<(&'a Report<R::Err>,), ()>,
    FB: FallbackSlot<R>,
{
    #[inline]
    fn retryable(&self, e: &R::Err) -> bool {
        self.when.call((e,)).unwrap_or(true)
    }
    #[inline]
    fn delay_hint(&self, e: &R::Err) -> Option<Duration> {
        self.delay_from.call((e,)).flatten()
    }
    #[inline]
    fn before_retry(&self, attempt: u32, e: &R::Err, delay: Duration) {
        self.on_retry.call((attempt, e, delay));
    }
    #[inline]
    fn exhausted(&self, report: &Report<R::Err>) {
        self.on_exhausted.call((report,));
    }
    const HAS_FALLBACK: bool = FB::PRESENT;
    #[inline]
    #[allow(clippy::result_large_err)]
    fn recover(&self, report: Report<R::Err>) -> Result<R, Report<R::Err>> {
        self.fallback.call(report)
    }
}
