//! The metrics of calls and retries, through the `metrics` facade (feature `metrics`).
//!
//! Each function's handles are registered once, when it first produces the series, and kept in its
//! [`Site`](crate::site::Site): a call then costs atomic operations on them and nothing
//! else (no key is built, no label allocated). A first-attempt success costs one counter
//! increment. The names and labels are listed in the crate docs ("For operators").

use std::sync::{Once, OnceLock};

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

/// One function's metric handles. Each series is registered when the function first
/// produces it, so a function exports only the series its mode and its calls can have (an
/// inline function no `retry_in_flight`, a function that never failed no failure reasons).
#[derive(Debug)]
pub(crate) struct Handles {
    name: &'static str,
    mode: &'static str,
    /// `retry_calls_total` of each end, indexed by [`Reason::index`]; recovered calls apart.
    calls: [OnceLock<Counter>; Reason::ALL.len()],
    recovered: OnceLock<Counter>,
    retries: OnceLock<Counter>,
    attempts: OnceLock<Histogram>,
    duration: OnceLock<Histogram>,
    in_flight: OnceLock<Gauge>,
}

/// How a call ended, for its `outcome` label.
#[derive(Clone, Copy, Debug)]
pub(crate) enum End {
    /// The fallback answered with a success.
    Recovered,
    /// The call ended for this reason: an attempt succeeded, it was cancelled, or it failed.
    Reason(Reason),
}

impl Handles {
    /// The handles of the function `name` run in `mode`, registered with the recorder
    /// installed when each is first used (install it before the first call).
    pub(crate) fn new(name: &'static str, mode: &'static str) -> Self {
        static DESCRIBED: Once = Once::new();
        DESCRIBED.call_once(describe);
        Self {
            name,
            mode,
            calls: [const { OnceLock::new() }; Reason::ALL.len()],
            recovered: OnceLock::new(),
            retries: OnceLock::new(),
            attempts: OnceLock::new(),
            duration: OnceLock::new(),
            in_flight: OnceLock::new(),
        }
    }

    /// `retry_calls_total` of a call that ended so.
    fn calls(&self, end: End) -> &Counter {
        let (name, mode) = (self.name, self.mode);
        match end {
            End::Recovered => self.recovered.get_or_init(|| {
                metrics::counter!(CALLS, "function" => name, "mode" => mode, "outcome" => "recovered")
            }),
            End::Reason(reason) => self.calls[reason.index()].get_or_init(|| match reason {
                Reason::Succeeded | Reason::Cancelled => metrics::counter!(
                    CALLS, "function" => name, "mode" => mode, "outcome" => reason.label()
                ),
                failed => metrics::counter!(
                    CALLS,
                    "function" => name,
                    "mode" => mode,
                    "outcome" => "failed",
                    "reason" => failed.label()
                ),
            }),
        }
    }

    /// A retry decided.
    #[inline]
    pub(crate) fn retry(&self) {
        let (name, mode) = (self.name, self.mode);
        self.retries
            .get_or_init(|| metrics::counter!(RETRIES, "function" => name, "mode" => mode))
            .increment(1);
    }

    /// A call ended after `attempts` attempts; `seconds` from its first attempt, read only
    /// for a call that failed at least once. A first-attempt success is one increment.
    #[inline]
    pub(crate) fn ended(&self, end: End, attempts: u32, seconds: impl FnOnce() -> f64) {
        self.calls(end).increment(1);
        if attempts > 1 || !matches!(end, End::Reason(Reason::Succeeded)) {
            let (name, mode) = (self.name, self.mode);
            self.attempts
                .get_or_init(|| metrics::histogram!(ATTEMPTS, "function" => name, "mode" => mode))
                .record(f64::from(attempts));
            self.duration
                .get_or_init(|| metrics::histogram!(DURATION, "function" => name, "mode" => mode))
                .record(seconds());
        }
    }

    /// A spawned call in progress, until the guard drops.
    pub(crate) fn in_flight(&self) -> InFlightGauge {
        let (name, mode) = (self.name, self.mode);
        let gauge = self
            .in_flight
            .get_or_init(|| metrics::gauge!(IN_FLIGHT, "function" => name, "mode" => mode));
        gauge.increment(1.0);
        InFlightGauge(gauge.clone())
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
