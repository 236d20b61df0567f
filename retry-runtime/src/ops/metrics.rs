//! The metrics of calls and retries, through the `metrics` facade (feature `metrics`).
//!
//! Each function's handles are registered once, on its first call, and kept in its
//! [`Site`](crate::events::Site): a call then costs atomic operations on them and nothing
//! else (no key is built, no label allocated). A first-attempt success costs one counter
//! increment. The names and labels are listed in the crate docs ("For operators").

use std::sync::Once;

use metrics::{Counter, Gauge, Histogram, Unit};

use crate::Reason;

/// Counts calls, by outcome and reason.
pub(crate) const CALLS: &str = "retry_calls_total";
/// Counts retries: attempts after the first, counted when the engine decides them.
pub(crate) const RETRIES: &str = "retry_retries_total";
/// Attempts per finished call.
pub(crate) const ATTEMPTS: &str = "retry_call_attempts";
/// Seconds from the first attempt to the outcome.
pub(crate) const DURATION: &str = "retry_call_duration_seconds";
/// Background and hand-off calls in progress.
pub(crate) const IN_FLIGHT: &str = "retry_in_flight";

/// The `reason` label of each way a call can fail, in the order of `Handles::failed`.
const FAILED: [(Reason, &str); 8] = [
    (Reason::Exhausted, "exhausted"),
    (Reason::BudgetSpent, "budget"),
    (Reason::NotRetryable, "not_retryable"),
    (Reason::TimedOut, "timed_out"),
    (Reason::Panicked, "panicked"),
    (Reason::Throttled, "throttled"),
    (Reason::Disabled, "disabled"),
    (Reason::ShutDown, "shut_down"),
];

/// One function's metric handles.
#[derive(Debug)]
pub(crate) struct Handles {
    succeeded: Counter,
    recovered: Counter,
    cancelled: Counter,
    failed: [Counter; FAILED.len()],
    retries: Counter,
    attempts: Histogram,
    duration: Histogram,
    in_flight: Gauge,
}

/// How a call ended, for its `outcome` label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    /// An attempt succeeded.
    Succeeded,
    /// The fallback answered with a success.
    Recovered,
    /// The call failed (or was cancelled) for this reason.
    Failed(Reason),
}

impl Handles {
    /// Registers the handles of the function `name` run in `mode`, with the recorder
    /// installed now (install it before the first call).
    pub(crate) fn new(name: &'static str, mode: &'static str) -> Self {
        static DESCRIBED: Once = Once::new();
        DESCRIBED.call_once(describe);
        let calls = |outcome: &'static str| metrics::counter!(CALLS, "function" => name, "mode" => mode, "outcome" => outcome);
        Self {
            succeeded: calls("succeeded"),
            recovered: calls("recovered"),
            cancelled: calls("cancelled"),
            failed: FAILED.map(|(_, reason)| {
                metrics::counter!(
                    CALLS,
                    "function" => name,
                    "mode" => mode,
                    "outcome" => "failed",
                    "reason" => reason
                )
            }),
            retries: metrics::counter!(RETRIES, "function" => name, "mode" => mode),
            attempts: metrics::histogram!(ATTEMPTS, "function" => name, "mode" => mode),
            duration: metrics::histogram!(DURATION, "function" => name, "mode" => mode),
            in_flight: metrics::gauge!(IN_FLIGHT, "function" => name, "mode" => mode),
        }
    }

    /// A retry decided.
    #[inline]
    pub(crate) fn retry(&self) {
        self.retries.increment(1);
    }

    /// A call ended after `attempts` attempts; `seconds` from its first attempt, read only
    /// for a call that failed at least once. A first-attempt success is one increment.
    #[inline]
    pub(crate) fn ended(&self, end: End, attempts: u32, seconds: impl FnOnce() -> f64) {
        let counter = match end {
            End::Succeeded => &self.succeeded,
            End::Recovered => &self.recovered,
            End::Failed(Reason::Cancelled) => &self.cancelled,
            End::Failed(reason) => FAILED
                .iter()
                .position(|(r, _)| *r == reason)
                .map_or(&self.failed[0], |i| &self.failed[i]),
        };
        counter.increment(1);
        if attempts > 1 || !matches!(end, End::Succeeded) {
            self.attempts.record(f64::from(attempts));
            self.duration.record(seconds());
        }
    }

    /// A spawned call in progress, until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlightGauge {
        self.in_flight.increment(1.0);
        InFlightGauge(self.in_flight.clone())
    }
}

/// Decrements `retry_in_flight` when the spawned call ends (or its task is dropped).
#[derive(Debug)]
pub(crate) struct InFlightGauge(Gauge);

impl Drop for InFlightGauge {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

fn describe() {
    metrics::describe_counter!(
        CALLS,
        Unit::Count,
        "Calls of #[retry] functions that ended, by outcome (succeeded, failed, recovered, cancelled) and, for failed calls, reason."
    );
    metrics::describe_counter!(
        RETRIES,
        Unit::Count,
        "Retries decided: attempts after the first."
    );
    metrics::describe_histogram!(
        ATTEMPTS,
        Unit::Count,
        "Attempts per finished call that failed at least once."
    );
    metrics::describe_histogram!(
        DURATION,
        Unit::Seconds,
        "Seconds from the first attempt to the outcome, for calls that failed at least once."
    );
    metrics::describe_gauge!(
        IN_FLIGHT,
        Unit::Count,
        "Background and hand-off calls in progress."
    );
}
