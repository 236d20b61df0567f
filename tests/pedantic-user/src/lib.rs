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
