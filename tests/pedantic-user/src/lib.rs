//! A user crate under the strictest lints: every shape of `#[retry]` must expand warning-free.
#![deny(
    warnings,
    clippy::all,
    clippy::pedantic,
    unused_qualifications,
    missing_docs,
    unused_results
)]

use retry_runtime::{retry, Report};
use std::time::Duration;

/// An error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed(pub u32);

impl From<retry_runtime::TimedOut> for Failed {
    fn from(_: retry_runtime::TimedOut) -> Self {
        Self(0)
    }
}

fn transient(e: &Failed) -> bool {
    e.0 < 10
}

fn alert(r: &Report<Failed>) {
    eprintln!("{r}");
}

/// A free function with every kind of key.
///
/// # Errors
/// When every attempt failed.
#[retry(
    max = 4,
    backoff = "exp",
    delay = "1ms",
    factor = 1.5,
    max_delay = "10ms",
    jitter = "full",
    budget = "1s",
    when = transient,
    delay_from = |e: &Failed| (e.0 == 7).then(|| Duration::from_millis(2)),
    on_retry = |n, e, d| eprintln!("{n} {e:?} {d:?} {id}"),
    on_exhausted = alert,
    name = "pedantic::free",
)]
pub fn free(id: u64, label: String) -> Result<String, Failed> {
    if id == 0 {
        return Err(Failed(1));
    }
    Ok(format!("{label}{id}"))
}

/// With a fallback and a duration expression.
///
/// # Errors
/// Never: the fallback answers.
#[retry(attempts = 2, delay = Duration::from_millis(u64::from(wait_ms)), fallback = |r| Ok(r.attempts))]
pub fn with_fallback(wait_ms: u8) -> Result<u32, Failed> {
    Err(Failed(u32::from(wait_ms)))
}

/// A service.
#[derive(Debug, Default, Clone)]
pub struct Service {
    hits: u32,
    name: String,
}

impl Service {
    /// A `&self` method returning a borrow.
    ///
    /// # Errors
    /// Never.
    #[retry(max = 1, delay = "0ms")]
    pub fn name(&self) -> std::io::Result<&str> {
        Ok(&self.name)
    }

    /// A `&mut self` async method with a timeout.
    ///
    /// # Errors
    /// When every attempt failed.
    #[retry(
        max = "forever",
        backoff = "linear",
        delay = "1ms",
        timeout = "1s",
        budget = "5s"
    )]
    pub async fn hit(&mut self, by: u32) -> Result<u32, Failed> {
        self.hits += by;
        tokio::task::yield_now().await;
        if self.hits < 3 {
            Err(Failed(self.hits))?;
        }
        Ok(self.hits)
    }

    /// A by-value receiver.
    ///
    /// # Errors
    /// Never.
    #[retry(backoff = "fixed", delay = "0ms")]
    pub fn into_hits(self) -> anyhow::Result<u32> {
        Ok(self.hits)
    }
}

/// Generics, lifetimes, `impl Trait` and a pattern argument.
///
/// # Errors
/// Never.
#[retry(jitter = "decorrelated", delay = "0ms")]
pub async fn generic<'a, T>(
    value: T,
    text: &'a str,
    shown: impl std::fmt::Display + Clone,
    (a, b): (u32, u32),
) -> Result<String, std::io::Error>
where
    T: Clone + std::fmt::Debug,
{
    Ok(format!("{value:?}{text}{shown}{a}{b}"))
}

/// An `unsafe fn`.
///
/// # Safety
/// None needed; it only proves the shape.
///
/// # Errors
/// Never.
#[retry(delay = "0ms")]
pub unsafe fn unsafe_fn(p: *const u8) -> Result<bool, Failed> {
    Ok(p.is_null())
}

/// The retries of the functions below, from a `const`.
pub const RETRIES: u32 = 2;

/// An error implementing `std::error::Error`: logged with its `Display`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unavailable {
    /// What was unavailable.
    pub what: String,
}

impl std::fmt::Display for Unavailable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} is unavailable", self.what)
    }
}

impl std::error::Error for Unavailable {}

/// A one-line sync body.
///
/// # Errors
/// Never.
// Kept on one line: the body is written as users write it.
#[rustfmt::skip]
#[retry(delay = "0ms")]
pub fn one_line_sync() -> Result<(), Unavailable> { Ok(()) }

/// A one-line async body.
///
/// # Errors
/// Never.
// Kept on one line: the body is written as users write it.
#[rustfmt::skip]
#[retry(delay = "0ms")]
pub async fn one_line_async() -> Result<(), Unavailable> { Ok(()) }

/// A one-line sync body in the background.
// Kept on one line: the body is written as users write it.
#[rustfmt::skip]
#[retry(delay = "0ms", mode = "background")]
pub fn one_line_background() -> Result<(), Unavailable> { Ok(()) }

/// A one-line async body in the background.
// Kept on one line: the body is written as users write it.
#[rustfmt::skip]
#[retry(delay = "0ms", mode = "background")]
pub async fn one_line_background_async() -> Result<(), Unavailable> { Ok(()) }

/// A one-line sync body handed off after a first failure.
// Kept on one line: the body is written as users write it.
#[rustfmt::skip]
#[retry(delay = "0ms", mode = "handoff")]
pub fn one_line_handoff() -> Result<(), Unavailable> { Ok(()) }

/// A one-line async body handed off after a first failure.
// Kept on one line: the body is written as users write it.
#[rustfmt::skip]
#[retry(delay = "0ms", mode = "handoff")]
pub async fn one_line_handoff_async() -> Result<(), Unavailable> { Ok(()) }

/// `max` from a `const`, with an error logged by its `Display`.
///
/// # Errors
/// When every attempt failed.
#[retry(max = RETRIES, delay = "0ms")]
pub fn max_from_const(what: String) -> Result<u32, Unavailable> {
    Err(Unavailable { what })
}

/// `attempts` from a `const` expression.
///
/// # Errors
/// When every attempt failed.
#[retry(attempts = RETRIES + 1, delay = "0ms")]
pub async fn attempts_from_const(what: String) -> Result<u32, Unavailable> {
    Err(Unavailable { what })
}

/// A client shared behind an `Arc` or owned in a `Box`.
#[derive(Debug, Clone, Default)]
pub struct Client {
    base: u32,
}

impl Client {
    /// A background method on `self: Arc<Self>`.
    #[retry(max = RETRIES, delay = "0ms", mode = "background")]
    pub fn fetch_shared(self: std::sync::Arc<Self>, id: u32) -> Result<u32, Unavailable> {
        Ok(self.base + id)
    }

    /// A background method on `self: Box<Self>`.
    #[retry(max = RETRIES, delay = "0ms", mode = "background")]
    pub fn fetch_boxed(self: Box<Self>, id: u32) -> Result<u32, Unavailable> {
        Ok(self.base + id)
    }
}

/// One of two types with a `&self` method of the same name.
#[derive(Debug, Default)]
pub struct Orders {
    count: u32,
}

/// The other type with a `&self` method of the same name.
#[derive(Debug, Default)]
pub struct Invoices {
    count: u32,
}

impl Orders {
    /// The default name: `pedantic_user::Orders::count`.
    ///
    /// # Errors
    /// Never.
    #[retry(delay = "0ms")]
    pub fn count(&self) -> Result<u32, Unavailable> {
        Ok(self.count)
    }
}

impl Invoices {
    /// The default name: `pedantic_user::Invoices::count`.
    ///
    /// # Errors
    /// Never.
    #[retry(delay = "0ms")]
    pub fn count(&self) -> Result<u32, Unavailable> {
        Ok(self.count)
    }
}

fn show_failed(e: &Failed, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    write!(f, "failed with code {}", e.0)
}

/// An error shown through `error_format`, in events and reports.
///
/// # Errors
/// When every attempt failed.
#[retry(delay = "0ms", error_format = show_failed, on_exhausted = alert)]
pub fn shown_with_error_format(code: u32) -> Result<u32, Failed> {
    Err(Failed(code))
}
