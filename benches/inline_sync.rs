//! Sync retries: a direct call, a hand-written loop with `std::thread::sleep`, `#[retry]`,
//! `backon`, `retry` and `backoff`, on the same operation under the same policies.
//!
//! IDs are `sync/<scenario>/<contestant>`; `benches/run.sh` turns them into BENCHMARKS.md.

mod inline_common;

use core::time::Duration;

use backon::{BlockingRetryable, ConstantBuilder, ExponentialBuilder};
use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use inline_common::{arm, left, op, Pol, Transient, DELAY_MS, MAX_RETRIES};
use retry_runtime::retry;

/// The loop one would write by hand: the same policy, as constants.
fn hand<const DELAY_MS: u64, const EXP: bool>() -> Result<u64, Transient> {
    let mut retries = 0;
    let mut wait = Duration::from_millis(DELAY_MS);
    loop {
        match op() {
            Ok(v) => return Ok(v),
            Err(e) if retries == MAX_RETRIES => return Err(e),
            Err(_) => {
                retries += 1;
                std::thread::sleep(wait);
                if EXP {
                    wait *= 2;
                }
            }
        }
    }
}

#[retry(max = 5, backoff = "fixed", delay = "0ms")]
fn retry_zero() -> Result<u64, Transient> {
    op()
}

#[retry(max = 5, backoff = "fixed", delay = "1ms")]
fn retry_fixed() -> Result<u64, Transient> {
    op()
}

#[retry(max = 5, backoff = "exp", factor = 2, delay = "1ms")]
fn retry_exp() -> Result<u64, Transient> {
    op()
}

const MAX: usize = MAX_RETRIES as usize;
const DELAY: Duration = Duration::from_millis(DELAY_MS);

fn backon_constant(d: Duration) -> Result<u64, Transient> {
    op.retry(ConstantBuilder::new().with_delay(d).with_max_times(MAX))
        .call()
}

fn backon_exp() -> Result<u64, Transient> {
    op.retry(
        ExponentialBuilder::new()
            .with_min_delay(DELAY)
            .with_factor(2.0)
            .with_max_times(MAX),
    )
    .call()
}

fn retry_crate<I: IntoIterator<Item = Duration>>(delays: I) -> Result<u64, Transient> {
    retry::retry(delays.into_iter().take(MAX), op).map_err(|e| e.error)
}

/// `backoff` has no limit on the number of retries (only on the elapsed time), so it gets
/// the adapter a user would write: at most [`MAX`] waits of the inner policy.
struct Times<B> {
    inner: B,
    left: usize,
}

impl<B: backoff::backoff::Backoff> backoff::backoff::Backoff for Times<B> {
    fn next_backoff(&mut self) -> Option<Duration> {
        self.left = self.left.checked_sub(1)?;
        self.inner.next_backoff()
    }
}

fn backoff_crate(policy: impl backoff::backoff::Backoff) -> Result<u64, Transient> {
    let policy = Times {
        inner: policy,
        left: MAX,
    };
    backoff::retry(policy, || op().map_err(backoff::Error::transient)).map_err(|e| match e {
        backoff::Error::Permanent(e) | backoff::Error::Transient { err: e, .. } => e,
    })
}

/// `backoff`'s exponential policy: from [`DELAY`], factor 2, no randomization, no time limit.
fn backoff_exp() -> Result<u64, Transient> {
    backoff_crate(
        backoff::ExponentialBackoffBuilder::new()
            .with_initial_interval(DELAY)
            .with_multiplier(2.0)
            .with_randomization_factor(0.0)
            .with_max_interval(Duration::from_secs(60))
            .with_max_elapsed_time(None)
            .build(),
    )
}

/// Checks that the contestant retries through `k` failures, then measures it.
fn run(
    g: &mut BenchmarkGroup<'_, WallTime>,
    name: &str,
    k: u32,
    f: impl Fn() -> Result<u64, Transient>,
) {
    arm(k);
    assert!(f().is_ok(), "{name} did not succeed after {k} failures");
    assert_eq!(left(), 0, "{name} did not use its {k} failures");
    g.bench_function(name, |b| {
        b.iter(|| {
            arm(k);
            f()
        });
    });
}

fn main() {
    let mut c = inline_common::criterion();
    for (scenario, k, pol) in inline_common::scenarios() {
        let mut g = c.benchmark_group(format!("sync/{scenario}"));
        if k == 0 {
            run(&mut g, "direct", k, op);
        }
        match pol {
            Pol::Zero => {
                run(&mut g, "hand", k, hand::<0, false>);
                run(&mut g, "retry", k, retry_zero);
                run(&mut g, "backon", k, || backon_constant(Duration::ZERO));
                run(&mut g, "retry-crate", k, || {
                    retry_crate(retry::delay::NoDelay)
                });
                run(&mut g, "backoff", k, || {
                    backoff_crate(backoff::backoff::Constant::new(Duration::ZERO))
                });
            }
            Pol::Fixed => {
                run(&mut g, "hand", k, hand::<DELAY_MS, false>);
                run(&mut g, "retry", k, retry_fixed);
                run(&mut g, "backon", k, || backon_constant(DELAY));
                run(&mut g, "retry-crate", k, || {
                    retry_crate(retry::delay::Fixed::from(DELAY))
                });
                run(&mut g, "backoff", k, || {
                    backoff_crate(backoff::backoff::Constant::new(DELAY))
                });
            }
            Pol::Exp => {
                run(&mut g, "hand", k, hand::<DELAY_MS, true>);
                run(&mut g, "retry", k, retry_exp);
                run(&mut g, "backon", k, backon_exp);
                run(&mut g, "retry-crate", k, || {
                    retry_crate(retry::delay::Exponential::from_millis(DELAY_MS))
                });
                run(&mut g, "backoff", k, backoff_exp);
            }
        }
        g.finish();
    }
    c.final_summary();
}
