//! The clocks the executors pass to the engine: wall-clock times, read from a monotonic
//! clock so that waits and budgets follow tokio's paused clock and the test clock of
//! [`crate::testing::instant_sleeps`].

use std::sync::OnceLock;
use std::time::{Instant, SystemTime};

use crate::engine::{Attempts, CallState, Clock, PackedAttempts};
use crate::testing;

/// Sync functions: `std` time, virtual under [`crate::testing::instant_sleeps`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SyncClock;

/// Async functions: tokio's clock (its paused clock in tests), the system's outside a
/// tokio runtime.
#[derive(Clone, Copy, Debug, Default)]
pub struct TokioClock;

impl Clock for SyncClock {
    #[inline]
    fn now(&self) -> SystemTime {
        wall(Instant::now() + testing::clock_shift())
    }
}

impl Clock for TokioClock {
    #[inline]
    fn now(&self) -> SystemTime {
        wall(tokio::time::Instant::now().into_std())
    }
}

/// The clock of an inline [`Call`](crate::run::inline::Call), and how the call keeps its
/// state: a sync call its progress as it is and nothing for its waits (it sleeps); an async
/// call its progress packed and the one timer it reuses for every wait, so that its future
/// stays as small as a hand-written loop's without an allocation per wait.
pub trait CallClock: Clock + Default {
    /// The call's progress between two steps.
    type State: CallState;
    /// What the call keeps for its waits.
    type Timers: Default + core::fmt::Debug;
}

impl CallClock for SyncClock {
    type State = Attempts;
    type Timers = ();
}

impl CallClock for TokioClock {
    type State = PackedAttempts;
    type Timers = crate::run::wait::Timers;
}

/// Durable calls: the system's wall clock, which every process shares.
#[cfg(feature = "sqlite")]
#[derive(Clone, Copy, Debug, Default)]
pub struct WallClock;

#[cfg(feature = "sqlite")]
impl Clock for WallClock {
    #[inline]
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// The wall-clock time of a monotonic instant: both clocks are read once, together, and
/// every later instant is placed by its distance from that reading.
pub(crate) fn wall(t: Instant) -> SystemTime {
    static ANCHOR: OnceLock<(Instant, SystemTime)> = OnceLock::new();
    let (i0, s0) = *ANCHOR.get_or_init(|| (Instant::now(), SystemTime::now()));
    match t.checked_duration_since(i0) {
        Some(d) => s0 + d,
        None => s0 - (i0 - t),
    }
}
