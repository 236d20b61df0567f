//! Async retries: a direct call, two hand-written loops with `tokio::time::sleep` (one that
//! always sleeps, one that skips zero waits), `#[retry]`, `backon`, `tryhard`,
//! `tokio-retry2` and `tokio-retry`, each on the same operation under the same policies.
//!
//! Every contestant runs the same way: one current-thread runtime, made once, and one
//! `rt.block_on` per iteration. Two runtimes: the real clock (`async-real/...`, waits round up
//! to tokio's 1 ms timer tick) and a paused clock (`async-paused/...`, waits are skipped by
//! auto-advance, so the per-attempt machinery shows).

mod inline_common;

use core::future::Future;
use core::time::Duration;

use backon::{ConstantBuilder, ExponentialBuilder, Retryable};
use criterion::measurement::WallTime;
use criterion::BenchmarkGroup;
use inline_common::{arm, left, op, Pol, Transient, DELAY_MS, MAX_RETRIES};
use retry_runtime::retry;
use tokio::runtime::Runtime;
use tokio_retry2::strategy::{ExponentialFactorBackoff, FixedInterval};
use tokio_retry2::{MapErr, Retry};

/// The async operation: [`op`] behind an `async fn`.
async fn op_async() -> Result<u64, Transient> {
    op()
}

/// The loop one would write by hand. `SKIP_ZERO = false` sleeps even for a zero wait (a
/// timer registration and a trip through the timer driver); `true` skips it, as `#[retry]`
/// does.
async fn hand<const DELAY_MS: u64, const EXP: bool, const SKIP_ZERO: bool>(
) -> Result<u64, Transient> {
    let mut retries = 0;
    let mut wait = Duration::from_millis(DELAY_MS);
    loop {
        match op_async().await {
            Ok(v) => return Ok(v),
            Err(e) if retries == MAX_RETRIES => return Err(e),
            Err(_) => {
                retries += 1;
                if !(SKIP_ZERO && wait.is_zero()) {
                    tokio::time::sleep(wait).await;
                }
                if EXP {
                    wait *= 2;
                }
            }
        }
    }
}

#[retry(max = 5, backoff = "fixed", delay = "0ms")]
async fn retry_zero() -> Result<u64, Transient> {
    op_async().await
}

#[retry(max = 5, backoff = "fixed", delay = "1ms")]
async fn retry_fixed() -> Result<u64, Transient> {
    op_async().await
}

#[retry(max = 5, backoff = "exp", factor = 2, delay = "1ms")]
async fn retry_exp() -> Result<u64, Transient> {
    op_async().await
}

const MAX: usize = MAX_RETRIES as usize;
const DELAY: Duration = Duration::from_millis(DELAY_MS);

async fn backon_constant(d: Duration) -> Result<u64, Transient> {
    op_async
        .retry(ConstantBuilder::new().with_delay(d).with_max_times(MAX))
        .await
}

async fn backon_exp() -> Result<u64, Transient> {
    op_async
        .retry(
            ExponentialBuilder::new()
                .with_min_delay(DELAY)
                .with_factor(2.0)
                .with_max_times(MAX),
        )
        .await
}

async fn tryhard_zero() -> Result<u64, Transient> {
    tryhard::retry_fn(op_async).retries(MAX_RETRIES).await
}

async fn tryhard_fixed() -> Result<u64, Transient> {
    tryhard::retry_fn(op_async)
        .retries(MAX_RETRIES)
        .fixed_backoff(DELAY)
        .await
}

async fn tryhard_exp() -> Result<u64, Transient> {
    tryhard::retry_fn(op_async)
        .retries(MAX_RETRIES)
        .exponential_backoff(DELAY)
        .await
}

/// tokio-retry2 wants the action to say which errors are transient.
async fn tokio_retry2<I: Iterator<Item = Duration>>(delays: I) -> Result<u64, Transient> {
    Retry::spawn(delays.take(MAX), || async {
        op_async().await.map_transient_err()
    })
    .await
}

/// The original tokio-retry: every error is retried. Its `ExponentialBackoff` waits
/// `base^n` ms (2, 4, 8, ... from a base of 2), so the 1, 2, 4, 8 ms policy is given as the
/// plain iterator of waits, which `Retry::start` takes as well.
async fn tokio_retry<I: Iterator<Item = Duration>>(delays: I) -> Result<u64, Transient> {
    tokio_retry::Retry::start(delays.take(MAX), op_async).await
}

fn doubling() -> impl Iterator<Item = Duration> {
    core::iter::successors(Some(DELAY), |d| Some(*d * 2))
}

/// Checks that the contestant retries through `k` failures, then measures it.
fn run<F, Fut>(g: &mut BenchmarkGroup<'_, WallTime>, rt: &Runtime, name: &str, k: u32, f: F)
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<u64, Transient>>,
{
    arm(k);
    assert!(
        rt.block_on(f()).is_ok(),
        "{name} did not succeed after {k} failures"
    );
    assert_eq!(left(), 0, "{name} did not use its {k} failures");
    g.bench_function(name, |b| {
        b.iter(|| {
            arm(k);
            rt.block_on(f())
        });
    });
}

fn main() {
    let mut c = inline_common::criterion();
    let real = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let paused = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("a paused current-thread runtime");
    for (clock, rt) in [("real", &real), ("paused", &paused)] {
        for (scenario, k, pol) in inline_common::scenarios() {
            let mut g = c.benchmark_group(format!("async-{clock}/{scenario}"));
            if k == 0 {
                run(&mut g, rt, "direct", k, op_async);
            }
            match pol {
                Pol::Zero => {
                    run(&mut g, rt, "hand", k, hand::<0, false, false>);
                    run(&mut g, rt, "hand-skip0", k, hand::<0, false, true>);
                    run(&mut g, rt, "retry", k, retry_zero);
                    run(&mut g, rt, "backon", k, || backon_constant(Duration::ZERO));
                    run(&mut g, rt, "tryhard", k, tryhard_zero);
                    run(&mut g, rt, "tokio-retry2", k, || {
                        tokio_retry2(FixedInterval::new(Duration::ZERO))
                    });
                    run(&mut g, rt, "tokio-retry", k, || {
                        tokio_retry(tokio_retry::strategy::FixedInterval::new(Duration::ZERO))
                    });
                }
                Pol::Fixed => {
                    run(&mut g, rt, "hand", k, hand::<DELAY_MS, false, false>);
                    run(&mut g, rt, "retry", k, retry_fixed);
                    run(&mut g, rt, "backon", k, || backon_constant(DELAY));
                    run(&mut g, rt, "tryhard", k, tryhard_fixed);
                    run(&mut g, rt, "tokio-retry2", k, || {
                        tokio_retry2(FixedInterval::new(DELAY))
                    });
                    run(&mut g, rt, "tokio-retry", k, || {
                        tokio_retry(tokio_retry::strategy::FixedInterval::new(DELAY))
                    });
                }
                Pol::Exp => {
                    run(&mut g, rt, "hand", k, hand::<DELAY_MS, true, false>);
                    run(&mut g, rt, "retry", k, retry_exp);
                    run(&mut g, rt, "backon", k, backon_exp);
                    run(&mut g, rt, "tryhard", k, tryhard_exp);
                    run(&mut g, rt, "tokio-retry2", k, || {
                        tokio_retry2(ExponentialFactorBackoff::from_millis(DELAY_MS, 2.0))
                    });
                    run(&mut g, rt, "tokio-retry", k, || tokio_retry(doubling()));
                }
            }
            g.finish();
        }
    }
    c.final_summary();
}
