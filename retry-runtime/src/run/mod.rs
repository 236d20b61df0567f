//! The executors of the engine: each runs attempts, feeds their outcomes to the
//! [engine](crate::engine) and sleeps or spawns as told.
//!
//! - [`inline`]: every attempt in the caller, sync or async;
//! - [`background`]: every attempt in a spawned task, watched through a [`handle`];
//! - [`handoff`]: the first attempt in the caller, the rest in the background;
//! - `durable` (feature `sqlite`): one attempt of a stored call, for a durable worker;
//! - [`shutdown`]: which spawned calls are in flight, and stopping them gracefully.

pub(crate) mod attempter;
pub(crate) mod background;
pub(crate) mod cancel;
pub(crate) mod clock;
#[cfg(feature = "sqlite")]
pub(crate) mod durable;
pub(crate) mod handle;
pub(crate) mod handoff;
pub(crate) mod inline;
pub(crate) mod race;
pub(crate) mod shutdown;
pub(crate) mod wait;
