//! What the background benchmarks share: N calls that each fail twice, waiting 1 ms after
//! each failure, as `#[retry(mode = "background")]` and as a hand-written `tokio::spawn` loop.

use core::time::Duration;
use std::hint::black_box;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use retry_runtime::{retry, RetryHandle};
use tokio::task::JoinHandle;

/// Calls per round.
pub const N: usize = 10_000;

/// Failures of each call before its success.
pub const FAILURES: u32 = 2;

/// The error of a failed attempt.
#[derive(Debug, Clone, Copy)]
pub struct Transient;

/// The operation: fails while `left` is above zero, counting it down.
#[inline(never)]
pub fn op(left: &AtomicU32) -> Result<u64, Transient> {
    let n = black_box(left).load(Ordering::Relaxed);
    if n == 0 {
        Ok(black_box(42))
    } else {
        left.store(n - 1, Ordering::Relaxed);
        Err(Transient)
    }
}

/// The arguments of one round: one counter per call, made before the clock starts.
pub fn args() -> Vec<Arc<AtomicU32>> {
    (0..N).map(|_| Arc::new(AtomicU32::new(FAILURES))).collect()
}

/// `#[retry]` in background mode: returns a handle at once.
#[retry(max = 3, backoff = "fixed", delay = "1ms", mode = "background")]
pub async fn with_retry(left: Arc<AtomicU32>) -> Result<u64, Transient> {
    op(&left)
}

/// The hand-written equivalent: the same loop in a spawned task.
pub fn by_hand(left: Arc<AtomicU32>) -> JoinHandle<Result<u64, Transient>> {
    tokio::spawn(async move {
        let mut retries = 0;
        loop {
            match op(&left) {
                Ok(v) => return Ok(v),
                Err(e) if retries == 3 => return Err(e),
                Err(_) => {
                    retries += 1;
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
        }
    })
}

/// The contestants.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Who {
    /// `tokio::spawn` and a loop.
    Hand,
    /// `#[retry(mode = "background")]`.
    Retry,
}

impl Who {
    /// The name in benchmark IDs.
    pub fn name(self) -> &'static str {
        match self {
            Who::Hand => "hand",
            Who::Retry => "retry",
        }
    }
}

/// Handles of either contestant, stored with the room for all of them made beforehand.
pub enum Handles {
    /// Tokio's.
    Hand(Vec<JoinHandle<Result<u64, Transient>>>),
    /// `#[retry]`'s.
    Retry(Vec<RetryHandle<u64, Transient>>),
}

impl Handles {
    /// Room for `N` handles of `who`.
    pub fn with_capacity(who: Who) -> Self {
        match who {
            Who::Hand => Handles::Hand(Vec::with_capacity(N)),
            Who::Retry => Handles::Retry(Vec::with_capacity(N)),
        }
    }

    /// Starts one call per argument; must run inside a tokio runtime.
    pub fn start(&mut self, args: Vec<Arc<AtomicU32>>) {
        match self {
            Handles::Hand(v) => v.extend(args.into_iter().map(by_hand)),
            Handles::Retry(v) => v.extend(args.into_iter().map(with_retry)),
        }
    }

    /// Waits for every call and checks that each succeeded.
    pub async fn finish(self) {
        match self {
            Handles::Hand(v) => {
                for h in v {
                    assert!(matches!(h.await, Ok(Ok(42))), "a hand-written call failed");
                }
            }
            Handles::Retry(v) => {
                for h in v {
                    assert!(matches!(h.await, Ok(42)), "a #[retry] call failed");
                }
            }
        }
    }
}
