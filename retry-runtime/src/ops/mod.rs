//! What operators act on at run time: metrics, overrides of policies, retry throttling.

#[cfg(feature = "metrics")]
pub(crate) mod metrics;
pub mod overrides;
pub(crate) mod throttle;
