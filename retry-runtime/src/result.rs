//! The return type of a retried function: a `Result` under any name, and the marker that
//! carries it through the expansion.

/// A return type `#[retry]` can retry: `Result<T, E>` under any name.
///
/// The expansion never looks at how the return type is spelled; it asks this trait, so
/// `std::io::Result<T>`, `anyhow::Result<T>` and your own aliases all work.
///
/// ```
/// use retry_runtime::RetryResult;
/// let r: std::io::Result<u8> = RetryResult::from_ok(1);
/// assert_eq!(r.into_result().unwrap(), 1);
/// ```
#[diagnostic::on_unimplemented(
    message = "`#[retry]` needs a function that returns `Result<T, E>` with `E: Debug`, but this one returns `{Self}`",
    label = "not a `Result` whose error implements `Debug`",
    note = "return `Result<T, E>` (an alias such as `std::io::Result<T>` or `anyhow::Result<T>` works too): its `Err` is what gets retried",
    note = "the error type must implement `Debug`, since every failed attempt is logged: add `#[derive(Debug)]` to it"
)]
pub trait RetryResult: Sized {
    /// The success type.
    type Ok;
    /// The error type; failed attempts are logged as the function shows it (its `Display` when
    /// it has one, its `Debug` otherwise, or the `error_format` hook), so it needs `Debug`.
    type Err: core::fmt::Debug;
    /// `Self`, named through the trait: the expansion writes the return type as
    /// `<R as RetryResult>::Itself`, so a return type that is not a `Result` is reported once,
    /// at the return type, and not again at every use.
    type Itself;
    /// Splits into success or error.
    ///
    /// # Errors
    /// The error, when it is one.
    fn into_result(self) -> Result<Self::Ok, Self::Err>;
    /// Wraps a success.
    fn from_ok(v: Self::Ok) -> Self;
    /// Wraps an error.
    fn from_err(e: Self::Err) -> Self;
}

impl<T, E: core::fmt::Debug> RetryResult for Result<T, E> {
    type Ok = T;
    type Err = E;
    type Itself = Self;
    #[inline]
    fn into_result(self) -> Result<T, E> {
        self
    }
    #[inline]
    fn from_ok(v: T) -> Self {
        Ok(v)
    }
    #[inline]
    fn from_err(e: E) -> Self {
        Err(e)
    }
}

/// The function's return type, carried from the one place that names it to every runtime
/// call that needs it (hooks, the attempt loop), so a wrong return type is reported once.
pub struct Returns<R>(core::marker::PhantomData<fn() -> R>);

impl<R> Clone for Returns<R> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<R> Copy for Returns<R> {}

impl<R: RetryResult> Default for Returns<R> {
    fn default() -> Self {
        Self::new()
    }
}

impl<R: RetryResult> Returns<R> {
    /// The marker of a return type.
    #[must_use]
    #[inline]
    pub const fn new() -> Self {
        Self(core::marker::PhantomData)
    }
}

impl<R> Returns<R> {
    /// The marker of `<R as RetryResult>::Itself` as the expansion writes it: that projection
    /// is where a return type that is not a `Result` is reported, so this constructor adds no
    /// bound of its own (which would report it a second time).
    #[must_use]
    #[inline]
    pub const fn named() -> Self {
        Self(core::marker::PhantomData)
    }
}

/// A value of the return type, for a method call that the expansion writes in dead code
/// (`if false { returned(__retry_r).retry_resolve_return(); }`) right where it makes the
/// marker: a method call makes rustc settle the receiver's type on the spot. When the return
/// type is not a `Result`, `<R as RetryResult>::Itself` has failed and been reported at the
/// return type just before, so rustc settles it to its error type, which every later use
/// accepts without a second error (it would otherwise be inferred from the body, `{integer}`
/// say, and be reported again at each use). For a `Result`, nothing changes. (A closure
/// argument does not do it: rustc checks closure arguments later.)
///
/// # Panics
/// Always: it is never called.
#[must_use]
pub fn returned<R>(_: Returns<R>) -> R {
    unreachable!("`#[retry]` only names it in dead code")
}

/// The method the expansion calls on [`returned`]: any type has it.
pub trait ResolveReturn {
    /// Does nothing.
    #[inline]
    fn retry_resolve_return(&self) {}
}

impl<T: ?Sized> ResolveReturn for T {}
