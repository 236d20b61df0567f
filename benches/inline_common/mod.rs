//! What the inline benchmarks share: the operation, its error, the policies and the harness
//! settings. Every contestant retries the same operation under the same policy.

use core::cell::Cell;
use core::time::Duration;
use std::hint::black_box;

use criterion::Criterion;

/// The error of a failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct Transient;

/// Retries after the first attempt, for every contestant: room for the k = 4 scenarios. (The
/// `#[retry]` functions spell it as the literal `max = 5`.)
pub const MAX_RETRIES: u32 = 5;

/// The fixed delay, and the first delay of the exponential policy (factor 2: 1, 2, 4, 8 ms).
/// Milliseconds, since `retry` and `tokio-retry2` build their exponential delays from them.
pub const DELAY_MS: u64 = 1;

thread_local! {
    /// How many more attempts of [`op`] fail on this thread.
    static LEFT: Cell<u32> = const { Cell::new(0) };
}

/// Makes the next `k` calls of [`op`] on this thread fail.
pub fn arm(k: u32) {
    LEFT.with(|l| l.set(k));
}

/// How many armed failures are left (0 once a contestant has retried through all of them).
pub fn left() -> u32 {
    LEFT.with(Cell::get)
}

/// The operation: fails as often as [`arm`] said, then succeeds. Not inlinable, so every
/// contestant calls the same machine code.
#[inline(never)]
pub fn op() -> Result<u64, Transient> {
    LEFT.with(|l| {
        let n = black_box(l.get());
        if n == 0 {
            Ok(black_box(42))
        } else {
            l.set(n - 1);
            Err(Transient)
        }
    })
}

/// The policies every scenario runs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pol {
    /// Fixed, zero delay.
    Zero,
    /// Fixed, [`DELAY_MS`].
    Fixed,
    /// Exponential from [`DELAY_MS`], factor 2.
    Exp,
}

impl Pol {
    /// The name in benchmark IDs.
    pub fn name(self) -> &'static str {
        match self {
            Pol::Zero => "zero",
            Pol::Fixed => "fixed",
            Pol::Exp => "exp",
        }
    }
}

/// The scenarios: (name, failures before the success, policy). A first-attempt success never
/// waits, so it runs under one policy only (exp, the default of `#[retry]`).
pub fn scenarios() -> Vec<(String, u32, Pol)> {
    let mut v = vec![("success".to_string(), 0, Pol::Exp)];
    for k in [1, 4] {
        for p in [Pol::Zero, Pol::Fixed, Pol::Exp] {
            v.push((format!("k{k}-{}", p.name()), k, p));
        }
    }
    v
}

/// Short runs: the whole suite takes minutes on two shared cores. Command-line flags
/// (`--warm-up-time`, `--measurement-time`, `--sample-size`) override these.
pub fn criterion() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args()
}
