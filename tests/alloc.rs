//! Allocation counts of inline calls: none for a first-time success, and none for failures
//! retried with zero waits, sync and async, when the error type does not allocate; an async
//! call that waits a non-zero time allocates once, its timer, however many times it waits.
//!
//! A counting global allocator counts the allocations made on the current thread while a
//! flag is set. Each function is called once before it is measured, so that once-per-thread
//! and once-per-process set-up (thread-local destructors, `tracing` call-site registration)
//! is not counted: what is measured is the cost of a call.
use retry_runtime::retry;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

#[path = "common/alloc_count.rs"]
mod alloc_count;
use alloc_count::{allocations, block_on};

/// Pending once (waking its task at once), then ready: a suspension inside an attempt, with
/// no timer.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }
}

#[test]
fn the_counter_counts() {
    let (v, n) = allocations(|| vec![1u8, 2, 3]);
    assert_eq!((v.len(), n), (3, 1));
    let (b, n) = allocations(|| (Box::new(1u64), Box::new(2u64)));
    assert_eq!((*b.0 + *b.1, n), (3, 2));
    let ((), n) = allocations(|| ());
    assert_eq!(n, 0);
}

// ---------------------------------------------------------------- the functions

/// An error that does not allocate.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Code(u32);

fn tick(calls: &Cell<u32>) -> u32 {
    calls.set(calls.get() + 1);
    calls.get()
}

/// Fails `k` times, then succeeds.
#[retry(max = 5, backoff = "fixed", delay = "0ms")]
fn fixed_k(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let n = tick(calls);
    if n <= k {
        Err(Code(n))
    } else {
        Ok(n)
    }
}

#[retry(max = 5, backoff = "exp", delay = "0ms")]
fn exp_k(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let n = tick(calls);
    if n <= k {
        Err(Code(n))
    } else {
        Ok(n)
    }
}

#[retry(max = 5, backoff = "fixed", delay = "0ms")]
async fn fixed_k_async(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let n = tick(calls);
    YieldOnce(false).await;
    if n <= k {
        Err(Code(n))
    } else {
        Ok(n)
    }
}

#[retry(max = 5, backoff = "exp", delay = "0ms")]
async fn exp_k_async(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let n = tick(calls);
    YieldOnce(false).await;
    if n <= k {
        Err(Code(n))
    } else {
        Ok(n)
    }
}

/// A first-time success with the default policy (100 ms waits that never happen).
#[retry]
fn defaults_ok(x: u32) -> Result<u32, Code> {
    Ok(x + 1)
}

#[retry]
async fn defaults_ok_async(x: u32) -> Result<u32, Code> {
    YieldOnce(false).await;
    Ok(x + 1)
}

/// Allocations of one call that fails `k` times, after a warm-up call.
fn sync_call(f: fn(u32, &Cell<u32>) -> Result<u32, Code>, k: u32) -> u64 {
    assert_eq!(f(k, &Cell::new(0)), Ok(k + 1), "warm-up");
    let calls = Cell::new(0);
    let (out, n) = allocations(|| f(k, &calls));
    assert_eq!(out, Ok(k + 1));
    assert_eq!(calls.get(), k + 1);
    n
}

// ---------------------------------------------------------------- sync

#[test]
fn sync_first_time_success_allocates_nothing() {
    assert_eq!(defaults_ok(1), Ok(2));
    let (out, n) = allocations(|| defaults_ok(1));
    assert_eq!((out, n), (Ok(2), 0));
    assert_eq!(sync_call(fixed_k, 0), 0);
    assert_eq!(sync_call(exp_k, 0), 0);
}

#[test]
fn sync_one_failure_allocates_nothing() {
    assert_eq!(sync_call(fixed_k, 1), 0, "fixed");
    assert_eq!(sync_call(exp_k, 1), 0, "exp");
}

#[test]
fn sync_four_failures_allocate_nothing() {
    assert_eq!(sync_call(fixed_k, 4), 0, "fixed");
    assert_eq!(sync_call(exp_k, 4), 0, "exp");
}

// ---------------------------------------------------------------- async

fn async_call<'a, F, Fut>(f: F, k: u32, calls: &'a Cell<u32>, warm_up: &'a Cell<u32>) -> u64
where
    F: Fn(u32, &'a Cell<u32>) -> Fut,
    Fut: Future<Output = Result<u32, Code>>,
{
    assert_eq!(block_on(f(k, warm_up)), Ok(k + 1), "warm-up");
    let (out, n) = allocations(|| block_on(f(k, calls)));
    assert_eq!(out, Ok(k + 1));
    assert_eq!(calls.get(), k + 1);
    n
}

#[test]
fn async_first_time_success_allocates_nothing() {
    assert_eq!(block_on(defaults_ok_async(1)), Ok(2));
    let (out, n) = allocations(|| block_on(defaults_ok_async(1)));
    assert_eq!((out, n), (Ok(2), 0));
    let (a, b) = (Cell::new(0), Cell::new(0));
    assert_eq!(async_call(fixed_k_async, 0, &a, &b), 0);
}

#[test]
fn async_one_failure_allocates_nothing() {
    let (a, b) = (Cell::new(0), Cell::new(0));
    assert_eq!(async_call(fixed_k_async, 1, &a, &b), 0, "fixed");
    let (a, b) = (Cell::new(0), Cell::new(0));
    assert_eq!(async_call(exp_k_async, 1, &a, &b), 0, "exp");
}

#[test]
fn async_four_failures_allocate_nothing() {
    let (a, b) = (Cell::new(0), Cell::new(0));
    assert_eq!(async_call(fixed_k_async, 4, &a, &b), 0, "fixed");
    let (a, b) = (Cell::new(0), Cell::new(0));
    assert_eq!(async_call(exp_k_async, 4, &a, &b), 0, "exp");
}

// ---------------------------------------------------------------- async, non-zero waits

// An inline async call keeps one timer for all its waits and time limits, made at its first
// non-zero wait and re-armed in place after (`Timers`): one allocation per call that waits,
// however many times it waits; the hand-written loop below, which embeds tokio's `Sleep` in
// its future, allocates none. The timer is boxed so that the call's future stays within the
// hand loop's size (`tests/future_size.rs`).

#[retry(max = 5, backoff = "fixed", delay = "10ms")]
async fn waits_k(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let n = tick(calls);
    YieldOnce(false).await;
    if n <= k {
        Err(Code(n))
    } else {
        Ok(n)
    }
}

impl From<retry_runtime::TimedOut> for Code {
    fn from(_: retry_runtime::TimedOut) -> Self {
        Code(0)
    }
}

#[retry(max = 5, backoff = "exp", delay = "10ms", timeout = "1s")]
async fn waits_k_timeout(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let n = tick(calls);
    YieldOnce(false).await;
    if n <= k {
        Err(Code(n))
    } else {
        Ok(n)
    }
}

async fn hand_waits_k(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
    let mut retries = 0;
    loop {
        let n = tick(calls);
        YieldOnce(false).await;
        match if n <= k { Err(Code(n)) } else { Ok(n) } {
            Ok(v) => return Ok(v),
            Err(e) if retries == 5 => return Err(e),
            Err(_) => {
                retries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        }
    }
}

/// Allocations of one call that fails `k` times, on a current-thread tokio runtime with a
/// paused clock (after a warm-up call), and the paused time the call took.
fn tokio_call<F, Fut>(f: F, k: u32) -> (u64, std::time::Duration)
where
    F: Fn(u32, &'static Cell<u32>) -> Fut,
    Fut: Future<Output = Result<u32, Code>>,
{
    let (warm_up, calls) = (
        Box::leak(Box::new(Cell::new(0))),
        Box::leak(Box::new(Cell::new(0))),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .expect("runtime");
    assert_eq!(rt.block_on(f(k, warm_up)), Ok(k + 1), "warm-up");
    let start = rt.block_on(async { tokio::time::Instant::now() });
    let (out, n) = allocations(|| rt.block_on(f(k, calls)));
    let took = rt.block_on(async move { start.elapsed() });
    assert_eq!(out, Ok(k + 1));
    assert_eq!(calls.get(), k + 1);
    (n, took)
}

#[test]
fn async_waits_allocate_once_per_call_on_tokio() {
    use std::time::Duration;
    // The control: tokio's timer itself allocates nothing here.
    assert_eq!(
        tokio_call(hand_waits_k, 4),
        (0, Duration::from_millis(40)),
        "hand loop"
    );
    assert_eq!(
        tokio_call(waits_k, 1),
        (1, Duration::from_millis(10)),
        "k = 1"
    );
    assert_eq!(
        tokio_call(waits_k, 4),
        (1, Duration::from_millis(40)),
        "k = 4: the timer is re-armed, not made again"
    );
    // Waits of 10, 20, 40, 80 ms, and five attempts each under a time limit: one timer.
    assert_eq!(
        tokio_call(waits_k_timeout, 4),
        (1, Duration::from_millis(150)),
        "k = 4 with a time limit per attempt"
    );
    // A first-time success makes no timer, even with a time limit.
    assert_eq!(tokio_call(waits_k, 0), (0, Duration::ZERO), "k = 0");
}

#[test]
fn async_waits_reuse_the_timer_thread_node_outside_tokio() {
    #[retry(max = 5, backoff = "fixed", delay = "1ms")]
    async fn short_waits(k: u32, calls: &Cell<u32>) -> Result<u32, Code> {
        let n = tick(calls);
        if n <= k {
            Err(Code(n))
        } else {
            Ok(n)
        }
    }
    // Outside tokio the timer is `futures-timer`'s, which makes a shared node per timer: the
    // box and the node once, then resets of the same node.
    let (a, b) = (Cell::new(0), Cell::new(0));
    let one = async_call(short_waits, 1, &a, &b);
    let (a, b) = (Cell::new(0), Cell::new(0));
    let four = async_call(short_waits, 4, &a, &b);
    assert_eq!(one, four, "k = 1 and k = 4 allocate alike");
    assert!(one <= 2, "{one} allocations");
}
