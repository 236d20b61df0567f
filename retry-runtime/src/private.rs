//! Not public API: what the expansion of `#[retry]` calls.

pub use crate::cid::CallCtx;
pub use crate::engine::AttemptOutcome;
pub use crate::hooks::{
    delay_from, error_format, fallback, hooks, on_done, on_exhausted, on_retry, when,
    ErrorFormatOf, Hook, HookSet, Hooks, NoHook, ViaDebug, ViaDisplay,
};
#[cfg(feature = "overrides-file")]
pub use crate::ops::overrides::Known;
pub use crate::policy::{Backoff, Jitter, Policy, Throttle};
pub use crate::run::attempter::{
    async_attempts, sync_attempts, AsyncAttempts, Attempter, SyncAttempts,
};
pub use crate::run::background::{background, Spec};
pub use crate::run::clock::{CallClock, SyncClock, TokioClock};
pub use crate::run::handoff::{handoff, handoff_sync};
pub use crate::run::inline::{Call, InCall, Loop, Setup};
pub use crate::run::wait::Wait;
pub use crate::site::Site;
pub use crate::RetryResult;
pub use core;
#[cfg(feature = "overrides-file")]
pub use inventory;

/// Registers a `#[retry]` function's name for the override file's check (feature
/// `overrides-file`); without the feature, nothing: no constructor per function.
#[cfg(feature = "overrides-file")]
#[doc(hidden)]
#[macro_export]
macro_rules! __retry_register_name {
    ($name:expr, $typed:expr, $module:expr) => {
        $crate::__private::inventory::submit! {
            $crate::__private::Known::new($name, $typed, $module)
        }
    };
}

/// Registers a `#[retry]` function's name for the override file's check (feature
/// `overrides-file`); without the feature, nothing: no constructor per function.
#[cfg(not(feature = "overrides-file"))]
#[doc(hidden)]
#[macro_export]
macro_rules! __retry_register_name {
    ($name:expr, $typed:expr, $module:expr) => {};
}

/// What the expansion of `mode = "durable"` calls.
#[cfg(feature = "sqlite")]
pub mod durable {
    pub use crate::durable::args::{checked, ArgsIn, ArgsOut, Probe, ViaNothing, ViaSerde};
    pub use crate::durable::enqueue::{
        enqueue, enqueue_blocking, store_first, store_first_blocking,
    };
    pub use crate::durable::kept::{ok_probe, Keep, KeepNothing, KeepViaSerde};
    pub use crate::durable::registry::Registration;
    pub use crate::durable::unique::expand::{
        enqueue_unique, enqueue_unique_blocking, key_of_args, key_of_value, UniqueKeyValue,
    };
    pub use crate::durable::{BoxFuture, StoreError};
    pub use crate::run::durable::{attempt_async, attempt_sync, Job, Verdict};
    pub use inventory;
}

pub use crate::result::{returned, ResolveReturn, Returns};

/// The error type can be made from [`crate::TimedOut`] (for `timeout = ...`).
#[diagnostic::on_unimplemented(
    message = "`timeout` needs the error type `{Self}` to convert from `retry_runtime::TimedOut`",
    label = "`{Self}` does not implement `From<retry_runtime::TimedOut>`",
    note = "a timed-out attempt fails with `TimedOut.into()`: implement `From<retry_runtime::TimedOut> for {Self}` (`std::io::Error` and `anyhow::Error` already do)"
)]
pub trait FromTimedOut {
    /// The error of a timed-out attempt.
    fn timed_out() -> Self;
}

impl<E: From<crate::TimedOut>> FromTimedOut for E {
    fn timed_out() -> Self {
        crate::TimedOut.into()
    }
}

/// The maker of a timed-out attempt's error, checked once where `timeout` is written.
#[must_use]
#[inline]
pub fn timeout_error<R>(_: Returns<R>) -> fn() -> R::Err
where
    R: RetryResult,
    R::Err: FromTimedOut,
{
    <R::Err as FromTimedOut>::timed_out
}

/// An argument of a background or hand-off call, moved to another thread.
#[diagnostic::on_unimplemented(
    message = "background and hand-off attempts run on other threads, so each argument must be `Send`; `{Self}` is not",
    label = "not `Send`",
    note = "use a thread-safe type (`Arc` instead of `Rc`, `Mutex` instead of `RefCell`), or `mode = \"inline\"`"
)]
pub trait SendArg {}

impl<T: Send> SendArg for T {}

/// Checks that a background argument can move to another thread.
#[inline]
pub fn send_arg<T: SendArg>(_: &T) {}

/// A by-value argument, cloned for each attempt.
#[diagnostic::on_unimplemented(
    message = "`#[retry]` clones each by-value argument for every attempt, but `{Self}` is not `Clone`",
    label = "this argument is not `Clone`",
    note = "derive or implement `Clone` for it, or take it by reference (`&{Self}`)"
)]
pub trait RetryArg: Sized {
    /// A fresh copy for the next attempt.
    #[must_use]
    fn fresh(&self) -> Self;
}

impl<T: Clone> RetryArg for T {
    #[inline]
    fn fresh(&self) -> Self {
        self.clone()
    }
}

/// Clones an argument for one attempt.
#[inline]
pub fn fresh<T: RetryArg>(v: &T) -> T {
    v.fresh()
}
