//! The hooks of `#[retry]`, as the expansion hands them to the attempt loop.
//!
//! Each hook the user gives passes through a checking function (`when`, `on_retry`, …) whose
//! `Fn` bound names the expected signature, so a closure's argument types are inferred and a
//! hook that does not fit is reported at the hook. Absent hooks are [`NoHook`]. The
//! expansion starts from [`Hooks::new`] and sets only the hooks the user wrote.

use core::fmt;
use core::time::Duration;

use crate::report::ErrorFormatter;
use crate::result::Returns;
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
// bounds, so no second error follows at the attribute. It comes wrapped in a [`Checked`]
// with the hook's output type `O` (see there), which the opaque type captures too.

/// A checked hook: its slot `S` and, as a type, the hook's output `O`.
///
/// `O` is what the hook returns when called as its slot calls it (`F: FnOnce(..) -> O`, by a
/// blanket impl such as [`RefOutput`]'s). When the hook cannot be called so (a function
/// path of the wrong signature, a value that is not a function), rustc reports that once, at
/// the hook, and `O` is left unknown; the expansion then calls a method on a value of type
/// `O` in dead code ([`Checked::output`]), which makes rustc settle `O` to its error type. The
/// slot's opaque type captures `O`, so its later uses, which rustc would otherwise check
/// against the hook's bound again (a second error at the attribute), are silent.
#[derive(Clone, Copy, Debug)]
pub struct Checked<S, O>(S, core::marker::PhantomData<fn() -> O>);

impl<S, O> Checked<S, O> {
    const fn new(slot: S) -> Self {
        Self(slot, core::marker::PhantomData)
    }

    /// The slot.
    #[inline]
    pub fn slot(self) -> S {
        self.0
    }

    /// A value of the hook's output type, for the expansion's dead code.
    ///
    /// # Panics
    /// Always: it is never called.
    #[must_use]
    #[allow(clippy::unused_self)] // the receiver is how the expansion names `O`
    pub fn output(&self) -> O {
        unreachable!("`#[retry]` only names it in dead code")
    }
}

/// The output of a hook called with one borrowed argument (`Fn(&T) -> O`).
pub trait RefOutput<T> {
    /// `O`.
    type Output;
}

impl<T, F: FnOnce(&T) -> O, O> RefOutput<T> for F {
    type Output = O;
}

/// The output of a hook called with one argument by value (`Fn(T) -> O`).
pub trait ValOutput<T> {
    /// `O`.
    type Output;
}

impl<T, F: FnOnce(T) -> O, O> ValOutput<T> for F {
    type Output = O;
}

/// The output of an `on_retry` hook (`Fn(u32, &E, Duration) -> O`).
pub trait RetryOutput<E> {
    /// `O`.
    type Output;
}

impl<E, F: FnOnce(u32, &E, Duration) -> O, O> RetryOutput<E> for F {
    type Output = O;
}

/// `when = f`: `Fn(&E) -> bool`.
pub fn when<R, F, O>(_: Returns<R>, f: F) -> Checked<impl WhenSlot<ErrOf<R>>, O>
where
    R: RetryResult,
    F: Fn(&ErrOf<R>) -> bool + RefOutput<ErrOf<R>, Output = O>,
{
    Checked::new(Hook(f))
}

/// `delay_from = f`: `Fn(&E) -> Option<Duration>`.
pub fn delay_from<R, F, O>(_: Returns<R>, f: F) -> Checked<impl DelaySlot<ErrOf<R>>, O>
where
    R: RetryResult,
    F: Fn(&ErrOf<R>) -> Option<Duration> + RefOutput<ErrOf<R>, Output = O>,
{
    Checked::new(Hook(f))
}

/// `on_retry = f`: `Fn(attempt: u32, error: &E, next_delay: Duration)`.
pub fn on_retry<R, F, O>(_: Returns<R>, f: F) -> Checked<impl RetrySlot<ErrOf<R>>, O>
where
    R: RetryResult,
    F: Fn(u32, &ErrOf<R>, Duration) + RetryOutput<ErrOf<R>, Output = O>,
{
    Checked::new(Hook(f))
}

/// `on_exhausted = f`: `Fn(&Report<E>)`.
pub fn on_exhausted<R, F, O>(_: Returns<R>, f: F) -> Checked<impl ReportSlot<ErrOf<R>>, O>
where
    R: RetryResult,
    F: Fn(&Report<ErrOf<R>>) + RefOutput<Report<ErrOf<R>>, Output = O>,
{
    Checked::new(Hook(f))
}

/// `fallback = f`: `Fn(Report<E>) -> R`, the report owning the last error.
pub fn fallback<R, F, O>(_: Returns<R>, f: F) -> Checked<impl FallbackSlot<R>, O>
where
    R: RetryResult,
    F: Fn(Report<ErrOf<R>>) -> R + ValOutput<Report<ErrOf<R>>, Output = O>,
{
    Checked::new(Hook(f))
}

/// `on_done = f`: `Fn(&Report<E>)`, called once when a background or hand-off call ends.
pub fn on_done<R, F, O>(_: Returns<R>, f: F) -> Checked<impl DoneSlot<ErrOf<R>>, O>
where
    R: RetryResult + 'static,
    F: Fn(&Report<ErrOf<R>>) + Send + Sync + 'static + RefOutput<Report<ErrOf<R>>, Output = O>,
{
    Checked::new(Hook(f))
}

/// The hooks of one function, one slot each, with the way its errors are logged and, for a
/// method, its `Self` type name.
#[derive(Clone, Copy, Debug)]
pub struct Hooks<W, D, OR, OE, FB, OD, F, T> {
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
    /// `on_done`
    pub on_done: OD,
    /// How errors are shown in events (an `ErrorFormat`).
    pub format: F,
    /// The `Self` type name of a method (a `TypeSlot`).
    pub ty: T,
}

/// The hooks of a function with none: errors shown with `format`.
pub const fn hooks<F>(
    format: F,
) -> Hooks<NoHook, NoHook, NoHook, NoHook, NoHook, NoHook, F, NoHook> {
    Hooks {
        when: NoHook,
        delay_from: NoHook,
        on_retry: NoHook,
        on_exhausted: NoHook,
        fallback: NoHook,
        on_done: NoHook,
        format,
        ty: NoHook,
    }
}

/// A builder method that sets one slot (`$set`) and keeps the others.
macro_rules! setter {
    ($name:ident: $set:ident, keeps $($keep:ident),* => Hooks<$($p:ident),*>) => {
        #[doc = concat!("Sets the `", stringify!($set), "` slot.")]
        #[must_use]
        #[inline]
        pub fn $name<X>(self, x: X) -> Hooks<$($p),*> {
            Hooks { $set: x, $($keep: self.$keep),* }
        }
    };
}

impl<W, D, OR, OE, FB, OD, F, T> Hooks<W, D, OR, OE, FB, OD, F, T> {
    setter!(with_when: when, keeps delay_from, on_retry, on_exhausted, fallback, on_done, format, ty
        => Hooks<X, D, OR, OE, FB, OD, F, T>);
    setter!(with_delay_from: delay_from, keeps when, on_retry, on_exhausted, fallback, on_done, format, ty
        => Hooks<W, X, OR, OE, FB, OD, F, T>);
    setter!(with_on_retry: on_retry, keeps when, delay_from, on_exhausted, fallback, on_done, format, ty
        => Hooks<W, D, X, OE, FB, OD, F, T>);
    setter!(with_on_exhausted: on_exhausted, keeps when, delay_from, on_retry, fallback, on_done, format, ty
        => Hooks<W, D, OR, X, FB, OD, F, T>);
    setter!(with_fallback: fallback, keeps when, delay_from, on_retry, on_exhausted, on_done, format, ty
        => Hooks<W, D, OR, OE, X, OD, F, T>);
    setter!(with_on_done: on_done, keeps when, delay_from, on_retry, on_exhausted, fallback, format, ty
        => Hooks<W, D, OR, OE, FB, X, F, T>);
    setter!(with_type: ty, keeps when, delay_from, on_retry, on_exhausted, fallback, on_done, format
        => Hooks<W, D, OR, OE, FB, OD, F, X>);
}

/// What the engine asks of the hooks.
pub trait HookSet<R: RetryResult>: TypeSlot {
    /// Whether `e` is worth retrying.
    fn retryable(&self, e: &R::Err) -> bool;
    /// A wait the error asks for.
    fn delay_hint(&self, e: &R::Err) -> Option<Duration>;
    /// Before a wait.
    fn before_retry(&self, attempt: u32, e: &R::Err, delay: Duration);
    /// When the call ends in failure.
    fn exhausted(&self, report: &Report<R::Err>);
    /// When the call ends, whatever the outcome.
    fn done(&self, report: &Report<R::Err>);
    /// Shows an error in an event.
    ///
    /// # Errors
    /// When the formatter fails.
    fn fmt_error(&self, e: &R::Err, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        (self.error_formatter())(e, f)
    }
    /// The function's error format, which its reports carry.
    fn error_formatter(&self) -> ErrorFormatter<R::Err>;
    /// Whether there is a fallback (reports are only built for someone who reads them).
    const HAS_FALLBACK: bool;
    /// Whether there is an `on_done` hook.
    const HAS_ON_DONE: bool;
    /// Whether a hook reads the report (`on_exhausted`, `fallback`, `on_done`), which needs
    /// the clock at the call's start.
    const WANTS_REPORT: bool;
    /// Whether a hook runs after a failed attempt (`when`, `delay_from`, `on_retry`), which
    /// then runs inside the call's context.
    const HOOKS_ON_FAILURE: bool;
    /// Turns the failure into the return value, or gives the report back.
    ///
    /// # Errors
    /// Gives the report back when there is no fallback.
    #[allow(clippy::result_large_err)] // the failure path moves the report once
    fn recover(&self, report: Report<R::Err>) -> Result<R, Report<R::Err>>;
}

/// The `when` slot.
pub trait WhenSlot<E> {
    /// Whether a hook is there.
    const PRESENT: bool;
    /// The verdict, or `None` when absent.
    fn call(&self, e: &E) -> Option<bool>;
}

/// The `delay_from` slot.
pub trait DelaySlot<E> {
    /// Whether a hook is there.
    const PRESENT: bool;
    /// The wait asked for (`None` also when absent).
    fn call(&self, e: &E) -> Option<Duration>;
}

/// The `on_retry` slot.
pub trait RetrySlot<E> {
    /// Whether a hook is there.
    const PRESENT: bool;
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
    const PRESENT: bool = false;
    #[inline]
    fn call(&self, _: &E) -> Option<bool> {
        None
    }
}

impl<E, F: Fn(&E) -> bool> WhenSlot<E> for Hook<F> {
    const PRESENT: bool = true;
    #[inline]
    fn call(&self, e: &E) -> Option<bool> {
        Some((self.0)(e))
    }
}

impl<E> DelaySlot<E> for NoHook {
    const PRESENT: bool = false;
    #[inline]
    fn call(&self, _: &E) -> Option<Duration> {
        None
    }
}

impl<E, F: Fn(&E) -> Option<Duration>> DelaySlot<E> for Hook<F> {
    const PRESENT: bool = true;
    #[inline]
    fn call(&self, e: &E) -> Option<Duration> {
        (self.0)(e)
    }
}

impl<E> RetrySlot<E> for NoHook {
    const PRESENT: bool = false;
    #[inline]
    fn call(&self, _: u32, _: &E, _: Duration) {}
}

impl<E, F: Fn(u32, &E, Duration)> RetrySlot<E> for Hook<F> {
    const PRESENT: bool = true;
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

impl<R, W, D, OR, OE, FB, OD, F, T> HookSet<R> for Hooks<W, D, OR, OE, FB, OD, F, T>
where
    R: RetryResult,
    W: WhenSlot<R::Err>,
    D: DelaySlot<R::Err>,
    OR: RetrySlot<R::Err>,
    OE: ReportSlot<R::Err>,
    FB: FallbackSlot<R>,
    OD: DoneSlot<R::Err>,
    F: ErrorFormat<R>,
    T: TypeSlot,
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
    #[inline]
    fn done(&self, report: &Report<R::Err>) {
        self.on_done.done(report);
    }
    #[inline]
    fn error_formatter(&self) -> ErrorFormatter<R::Err> {
        self.format.formatter()
    }
    const HAS_FALLBACK: bool = FB::PRESENT;
    const HAS_ON_DONE: bool = OD::PRESENT;
    const WANTS_REPORT: bool = FB::PRESENT || OE::PRESENT || OD::PRESENT;
    const HOOKS_ON_FAILURE: bool = W::PRESENT || D::PRESENT || OR::PRESENT;
    #[inline]
    #[allow(clippy::result_large_err)]
    fn recover(&self, report: Report<R::Err>) -> Result<R, Report<R::Err>> {
        self.fallback.call(report)
    }
}

/// The `on_done` slot.
pub trait DoneSlot<E> {
    /// Calls the hook.
    fn done(&self, report: &Report<E>);
    /// Whether there is a hook.
    const PRESENT: bool;
}

impl<E> DoneSlot<E> for NoHook {
    #[inline]
    fn done(&self, _: &Report<E>) {}
    const PRESENT: bool = false;
}

impl<E, F: Fn(&Report<E>)> DoneSlot<E> for Hook<F> {
    fn done(&self, report: &Report<E>) {
        (self.0)(report);
    }
    const PRESENT: bool = true;
}

/// The `Self` type name of a method (`Hook(core::any::type_name::<Self>)`), or [`NoHook`];
/// the hooks answer with theirs.
pub trait TypeSlot {
    /// The type name, if any.
    fn type_name(&self) -> Option<&'static str>;
}

impl TypeSlot for NoHook {
    #[inline]
    fn type_name(&self) -> Option<&'static str> {
        None
    }
}

impl<F: Fn() -> &'static str> TypeSlot for Hook<F> {
    #[inline]
    fn type_name(&self) -> Option<&'static str> {
        Some((self.0)())
    }
}

/// How an error is shown in events, reports and the durable store: the `error_format` hook
/// when given ([`WithFormat`]), else `Display` when the error has one (every
/// `std::error::Error` does, and so does `anyhow::Error`, which then reads as its message
/// without its backtrace), `Debug` otherwise.
pub trait ErrorFormat<R: RetryResult> {
    /// The function that writes the error.
    fn formatter(&self) -> ErrorFormatter<R::Err>;
}

/// Shows errors with `Display`.
#[derive(Clone, Copy, Debug, Default)]
pub struct WithDisplay;

/// Shows errors with `Debug`.
#[derive(Clone, Copy, Debug, Default)]
pub struct WithDebug;

/// Shows errors with the function given as `error_format = path`.
pub struct WithFormat<E>(ErrorFormatter<E>);

impl<E> Clone for WithFormat<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for WithFormat<E> {}

impl<E> fmt::Debug for WithFormat<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WithFormat")
    }
}

/// `error_format = f`: `fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result`, a function or a
/// closure that captures nothing.
pub fn error_format<R: RetryResult>(
    _: Returns<R>,
    f: ErrorFormatter<R::Err>,
) -> WithFormat<R::Err> {
    WithFormat(f)
}

impl<R: RetryResult> ErrorFormat<R> for WithDisplay
where
    R::Err: fmt::Display,
{
    fn formatter(&self) -> ErrorFormatter<R::Err> {
        |e, f| fmt::Display::fmt(e, f)
    }
}

impl<R: RetryResult> ErrorFormat<R> for WithDebug {
    fn formatter(&self) -> ErrorFormatter<R::Err> {
        |e, f| fmt::Debug::fmt(e, f)
    }
}

impl<R: RetryResult> ErrorFormat<R> for WithFormat<R::Err> {
    fn formatter(&self) -> ErrorFormatter<R::Err> {
        self.0
    }
}

/// Picks the error format of a return type by autoref: the expansion writes
/// `(&ErrorFormatOf(returns)).error_format()`, which finds [`ViaDisplay`] when the error
/// implements `Display` and [`ViaDebug`] otherwise.
pub struct ErrorFormatOf<R>(pub Returns<R>);

/// The error implements `Display`: shown with it.
pub trait ViaDisplay {
    /// The format.
    fn error_format(&self) -> WithDisplay {
        WithDisplay
    }
}

/// Any other error: shown with `Debug`.
pub trait ViaDebug {
    /// The format.
    fn error_format(&self) -> WithDebug {
        WithDebug
    }
}

impl<R: RetryResult> ViaDisplay for ErrorFormatOf<R> where R::Err: fmt::Display {}

impl<R> ViaDebug for &ErrorFormatOf<R> {}

impl<W, D, OR, OE, FB, OD, F, T: TypeSlot> TypeSlot for Hooks<W, D, OR, OE, FB, OD, F, T> {
    #[inline]
    fn type_name(&self) -> Option<&'static str> {
        self.ty.type_name()
    }
}
