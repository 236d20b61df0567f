//! The state of a function's retry throttle: its calls and retries over a sliding window.
//!
//! The window ([`Throttle::WINDOW`]) is cut in one-second buckets, each stamped with the
//! second it counts, so a bucket left from an earlier turn of the ring is recognised as stale
//! and counted as empty. Times come from the clock the engine is given, so tests on a paused
//! or virtual clock are exact.

use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use crate::policy::Throttle;

const BUCKETS: usize = 10;
const BUCKET_SECS: u64 = Throttle::WINDOW.as_secs() / BUCKETS as u64;

#[derive(Clone, Copy, Debug)]
struct Bucket {
    /// The bucket's second (since the Unix epoch, in units of `BUCKET_SECS`).
    tick: u64,
    calls: u64,
    retries: u64,
}

const EMPTY: Bucket = Bucket {
    tick: 0,
    calls: 0,
    retries: 0,
};

/// The calls and retries of one function over the last [`Throttle::WINDOW`]. Touched only by
/// functions with a throttle: once when a call starts, once when it would retry.
#[derive(Debug)]
pub(crate) struct Window(Mutex<[Bucket; BUCKETS]>);

impl Window {
    pub(crate) const fn new() -> Self {
        Self(Mutex::new([EMPTY; BUCKETS]))
    }

    /// Counts a call starting at `now`.
    pub(crate) fn call(&self, now: SystemTime) {
        self.with_current(now, |_, b| b.calls += 1);
    }

    /// Counts a retry at `now` if the throttle allows it; `false` if it refuses.
    pub(crate) fn try_retry(&self, throttle: Throttle, now: SystemTime) -> bool {
        self.with_current(now, |(calls, retries), b| {
            let allowed = throttle.allows(calls + b.calls, retries + b.retries);
            if allowed {
                b.retries += 1;
            }
            allowed
        })
    }

    /// Runs `f` on the calls and retries of the other buckets in the window and on the
    /// bucket of `now` (cleared if stale).
    fn with_current<T>(&self, now: SystemTime, f: impl FnOnce((u64, u64), &mut Bucket) -> T) -> T {
        let tick = now
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() / BUCKET_SECS);
        let mut ring = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        #[allow(clippy::cast_possible_truncation)] // the remainder is below BUCKETS
        let i = (tick % BUCKETS as u64) as usize;
        if ring[i].tick != tick {
            ring[i] = Bucket {
                tick,
                calls: 0,
                retries: 0,
            };
        }
        let mut current = ring[i];
        // The other buckets still in the window (a later tick is there only if the clock went
        // back; it is counted, which errs on the side of fewer retries).
        let others = ring
            .iter()
            .enumerate()
            .filter(|&(j, b)| j != i && b.tick + BUCKETS as u64 > tick)
            .fold((0, 0), |(c, r), (_, b)| (c + b.calls, r + b.retries));
        let out = f(others, &mut current);
        ring[i] = current;
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::time::Duration;

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(1_700_000_000 + secs)
    }

    #[test]
    fn retries_are_a_share_of_calls_plus_a_floor() {
        let w = Window::new();
        let t = Throttle::percent(20);
        for _ in 0..100 {
            w.call(at(0));
        }
        let allowed = (0..100).filter(|_| w.try_retry(t, at(1))).count();
        assert_eq!(allowed, 20 + Throttle::FLOOR as usize);
    }

    #[test]
    fn the_window_slides() {
        let w = Window::new();
        let t = Throttle::percent(10);
        for _ in 0..100 {
            w.call(at(0));
        }
        assert_eq!((0..50).filter(|_| w.try_retry(t, at(0))).count(), 20);
        // Still inside the window 9 s later: nothing more.
        assert!(!w.try_retry(t, at(9)));
        // 10 s later the first second has left the window: the floor again.
        assert_eq!(
            (0..50).filter(|_| w.try_retry(t, at(10))).count(),
            Throttle::FLOOR as usize
        );
        // Long after, an old bucket at the same slot is stale, not counted.
        assert!(w.try_retry(t, at(1000)));
    }
}
