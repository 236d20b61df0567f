//! Testing code that uses `#[retry]` without waiting.
//!
//! Async functions wait with `tokio::time::sleep`, so a test on tokio's paused clock
//! (`#[tokio::test(start_paused = true)]`) runs their waits instantly and exactly. Sync
//! functions wait with `std::thread::sleep`; [`instant_sleeps`] makes their waits on the
//! current thread instant, advances a virtual clock instead (so budgets still work), and
//! records every wait.
//!
//! ```
//! use retry_runtime::{retry, testing};
//! use std::time::Duration;
//!
//! #[retry(max = 3, backoff = "linear", delay = "1s")]
//! fn flaky() -> Result<(), &'static str> {
//!     Err("down")
//! }
//!
//! let sleeps = testing::instant_sleeps();
//! assert!(flaky().is_err());
//! assert_eq!(sleeps.delays(), [1, 2, 3].map(Duration::from_secs));
//! assert_eq!(sleeps.elapsed(), Duration::from_secs(6));
//! ```

use core::cell::{Cell, RefCell};
use core::marker::PhantomData;
use core::time::Duration;

#[derive(Default)]
struct Virtual {
    delays: Vec<Duration>,
    elapsed: Duration,
    depth: usize,
}

thread_local! {
    static VIRTUAL: RefCell<Option<Virtual>> = const { RefCell::new(None) };
    // Whether a guard is alive: a plain flag, so the real waits and clock reads check it with
    // one load instead of borrowing `VIRTUAL`.
    static ACTIVE: Cell<bool> = const { Cell::new(false) };
}

/// While alive, sync `#[retry]` waits on this thread are instant and recorded.
///
/// Made by [`instant_sleeps`]. Not `Send`: it acts on the thread that made it.
#[derive(Debug)]
#[must_use = "waits are instant only while the guard lives"]
pub struct InstantSleeps {
    _not_send: PhantomData<*const ()>,
}

/// Makes the sync waits of `#[retry]` functions on this thread instant until the guard drops,
/// recording them; see the [module docs](self).
pub fn instant_sleeps() -> InstantSleeps {
    VIRTUAL.with(|v| {
        let mut v = v.borrow_mut();
        v.get_or_insert_with(Virtual::default).depth += 1;
    });
    ACTIVE.with(|a| a.set(true));
    InstantSleeps {
        _not_send: PhantomData,
    }
}

impl InstantSleeps {
    /// Every wait so far, in order.
    #[must_use]
    pub fn delays(&self) -> Vec<Duration> {
        VIRTUAL.with(|v| {
            v.borrow()
                .as_ref()
                .map(|v| v.delays.clone())
                .unwrap_or_default()
        })
    }

    /// The sum of the waits so far: how far the virtual clock has moved.
    #[must_use]
    pub fn elapsed(&self) -> Duration {
        VIRTUAL.with(|v| v.borrow().as_ref().map_or(Duration::ZERO, |v| v.elapsed))
    }

    /// Moves the virtual clock forward without a wait, as if work had taken `d`.
    pub fn advance(&self, d: Duration) {
        VIRTUAL.with(|v| {
            if let Some(v) = v.borrow_mut().as_mut() {
                v.elapsed += d;
            }
        });
    }

    /// Forgets the waits recorded so far (the virtual clock keeps its time).
    pub fn clear(&self) {
        VIRTUAL.with(|v| {
            if let Some(v) = v.borrow_mut().as_mut() {
                v.delays.clear();
            }
        });
    }
}

impl Drop for InstantSleeps {
    fn drop(&mut self) {
        VIRTUAL.with(|v| {
            let mut v = v.borrow_mut();
            if let Some(inner) = v.as_mut() {
                inner.depth -= 1;
                if inner.depth == 0 {
                    *v = None;
                    ACTIVE.with(|a| a.set(false));
                }
            }
        });
    }
}

/// Takes a sync wait on the virtual clock of [`instant_sleeps`], recording it; `false` when
/// no guard is alive on this thread (the executor then really waits).
#[inline]
pub(crate) fn took_wait(d: Duration) -> bool {
    if !ACTIVE.with(Cell::get) {
        return false;
    }
    VIRTUAL.with(|v| match v.borrow_mut().as_mut() {
        Some(v) => {
            v.delays.push(d);
            v.elapsed += d;
            true
        }
        None => false,
    })
}

/// How far the virtual clock of [`instant_sleeps`] is ahead of the real one on this thread
/// (zero without a guard).
#[inline]
pub(crate) fn clock_shift() -> Duration {
    if !ACTIVE.with(Cell::get) {
        return Duration::ZERO;
    }
    VIRTUAL.with(|v| v.borrow().as_ref().map_or(Duration::ZERO, |v| v.elapsed))
}
