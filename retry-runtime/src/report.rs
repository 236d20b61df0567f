//! What a finished call reports: who it was, how it went, why it stopped.

use core::fmt;
use core::time::Duration;
use std::time::SystemTime;

use crate::{CorrelationId, Policy};

/// Why a call ended.
///
/// ```
/// use retry_runtime::{retry, Reason, Report};
///
/// #[retry(max = 5, delay = "0ms", when = |e: &String| e != "fatal", fallback = |r| Err(format!("{}", r.reason)))]
/// fn call(err: String) -> Result<(), String> {
///     Err(err)
/// }
///
/// assert_eq!(call("fatal".into()), Err(Reason::NotRetryable.to_string()));
/// assert_eq!(call("busy".into()), Err(Reason::Exhausted.to_string()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// An attempt succeeded.
    Succeeded,
    /// Every attempt the policy allows failed.
    Exhausted,
    /// The time budget ran out before the next attempt could start.
    BudgetSpent,
    /// The `when` predicate rejected the error.
    NotRetryable,
    /// The last attempt ran into the per-attempt timeout.
    TimedOut,
    /// The call was cancelled through its handle.
    Cancelled,
    /// An attempt panicked (background calls only; inline panics unwind to the caller).
    Panicked,
    /// The runtime shut down before the call finished.
    ShutDown,
    /// The function's retry throttle (`throttle = "20%"`) refused the retry: too many of its
    /// calls were retrying already.
    Throttled,
    /// An operator disabled the function's retries (an override with `max = 0`, the kill
    /// switch): the failure that met it was final.
    Disabled,
}

impl Reason {
    /// A short, stable, lower-case name, as logged.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Exhausted => "retries exhausted",
            Self::BudgetSpent => "budget spent",
            Self::NotRetryable => "error not retryable",
            Self::TimedOut => "attempt timed out",
            Self::Cancelled => "cancelled",
            Self::Panicked => "panicked",
            Self::ShutDown => "shut down",
            Self::Throttled => "retries throttled",
            Self::Disabled => "retries disabled",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The facts of one finished call, handed to `on_exhausted`, `fallback` and `on_done`.
///
/// ```
/// use retry_runtime::{retry, Reason, Report};
/// use std::sync::Mutex;
///
/// static SEEN: Mutex<Option<(u32, Reason, String)>> = Mutex::new(None);
///
/// fn alert(r: &Report<std::io::Error>) {
///     let err = r.last_error.as_ref().map(ToString::to_string).unwrap_or_default();
///     *SEEN.lock().unwrap() = Some((r.attempts, r.reason, err));
/// }
///
/// #[retry(max = 2, delay = "0ms", on_exhausted = alert)]
/// fn always_fails() -> std::io::Result<()> {
///     Err(std::io::Error::other("down"))
/// }
///
/// assert!(always_fails().is_err());
/// assert_eq!(
///     SEEN.lock().unwrap().take(),
///     Some((3, Reason::Exhausted, "down".to_string()))
/// );
/// ```
///
/// Its one-line form (`{report}`) shows the last error as the function shows it in its
/// events: with the `error_format` hook when the attribute gives one, else with the error's
/// `Display` when it has one (every `std::error::Error`, and `anyhow::Error` without its
/// backtrace), else with its `Debug`. A report built by hand ([`Report::new`]) shows its
/// error with `Debug` unless given a format ([`Report::with_format`]).
#[derive(Clone)]
#[non_exhaustive]
pub struct Report<E> {
    /// The function's stable name (`module::function` unless `name = "..."` was given).
    pub name: &'static str,
    /// This call's correlation ID.
    pub cid: CorrelationId,
    /// The ID of the retried call this one was started from, if any.
    pub parent: Option<CorrelationId>,
    /// When the call began (UTC). The start is read whenever anything will see it (a budget,
    /// a hook that reads the report, a subscriber that wants the failure event); a call that
    /// nothing observes reads no clock, and its report gives its end as its start.
    pub started_at: SystemTime,
    /// Attempts made.
    pub attempts: u32,
    /// Time from `started_at` to the end of the call, the first attempt included.
    pub elapsed: Duration,
    /// Why the call ended.
    pub reason: Reason,
    /// The policy in force.
    pub policy: Policy,
    /// The error of the last attempt, if an attempt ran and failed.
    pub last_error: Option<E>,
    /// How the one-line form writes `last_error` (the function's error format).
    format: Option<ErrorFormatter<E>>,
}

/// How an error is written: the function's error format, which the one-line form of a
/// [`Report`] and the events use (`error_format = path` in the attribute gives one).
pub type ErrorFormatter<E> = fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result;

impl<E: fmt::Debug> fmt::Debug for Report<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Report")
            .field("name", &self.name)
            .field("cid", &self.cid)
            .field("parent", &self.parent)
            .field("started_at", &self.started_at)
            .field("attempts", &self.attempts)
            .field("elapsed", &self.elapsed)
            .field("reason", &self.reason)
            .field("policy", &self.policy)
            .field("last_error", &self.last_error)
            .finish_non_exhaustive()
    }
}

impl Reason {
    /// The reason a policy's stop gets when the last attempt timed out: running out of
    /// attempts by timeouts is reported as [`Reason::TimedOut`].
    #[must_use]
    pub(crate) fn given_timeout(self, timed_out: bool) -> Self {
        if timed_out && self == Self::Exhausted {
            Self::TimedOut
        } else {
            self
        }
    }

    /// Whether this is an end of retrying (the ends `on_exhausted` and `fallback` see), as
    /// opposed to success or a stop from outside (cancel, shutdown, panic).
    #[must_use]
    pub const fn ends_retrying(self) -> bool {
        matches!(
            self,
            Self::Exhausted
                | Self::BudgetSpent
                | Self::NotRetryable
                | Self::TimedOut
                | Self::Throttled
                | Self::Disabled
        )
    }

    /// Whether a call that ends so failed after retrying (exhausted, budget spent, timed out,
    /// throttled): its end is logged at WARN. Every other end (success, an error `when`
    /// rejected, a cancel, a shutdown, the kill switch) is expected, and logged at INFO.
    ///
    /// ```
    /// use retry_runtime::Reason;
    /// assert!(Reason::Exhausted.warns());
    /// assert!(!Reason::Cancelled.warns());
    /// ```
    #[must_use]
    pub const fn warns(self) -> bool {
        matches!(
            self,
            Self::Exhausted | Self::BudgetSpent | Self::TimedOut | Self::Throttled
        )
    }

    /// The metrics' name of this end: the `outcome` label of `retry_calls_total` for a
    /// success or a cancel, its `reason` label (with `outcome="failed"`) for the others.
    ///
    /// ```
    /// use retry_runtime::Reason;
    /// assert_eq!(Reason::BudgetSpent.label(), "budget");
    /// assert_eq!(Reason::NotRetryable.label(), "not_retryable");
    /// ```
    #[must_use]
    pub const fn label(self) -> &'static str {
        match self {
            Self::Succeeded => "succeeded",
            Self::Exhausted => "exhausted",
            Self::BudgetSpent => "budget",
            Self::NotRetryable => "not_retryable",
            Self::TimedOut => "timed_out",
            Self::Cancelled => "cancelled",
            Self::Panicked => "panicked",
            Self::ShutDown => "shut_down",
            Self::Throttled => "throttled",
            Self::Disabled => "disabled",
        }
    }

    /// Every reason, in declaration order: `Reason::ALL[r.index()] == r`.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const ALL: [Reason; 10] = [
        Self::Succeeded,
        Self::Exhausted,
        Self::BudgetSpent,
        Self::NotRetryable,
        Self::TimedOut,
        Self::Cancelled,
        Self::Panicked,
        Self::ShutDown,
        Self::Throttled,
        Self::Disabled,
    ];

    /// This reason's place in [`Reason::ALL`].
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const fn index(self) -> usize {
        self as usize
    }
}

impl<E> Report<E> {
    /// The report of a call that ends at `now`, from its progress. The elapsed time counts
    /// from the call's start; a call whose start was never read (nothing observed it) reports
    /// `now` as its start and no elapsed time. This is the one constructor of a report.
    ///
    /// ```
    /// use retry_runtime::{Attempts, CorrelationId, Policy, Reason, Report};
    /// use std::time::{Duration, SystemTime};
    ///
    /// let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    /// let mut progress = Attempts::started_at(start);
    /// progress.start_attempt();
    /// let r: Report<String> = Report::new(
    ///     "billing::push",
    ///     (CorrelationId::new(), None),
    ///     &progress,
    ///     start + Duration::from_millis(205),
    ///     Reason::Exhausted,
    ///     Policy::new(),
    ///     Some("down".to_string()),
    /// );
    /// assert_eq!(r.elapsed, Duration::from_millis(205));
    /// assert_eq!(r.started_at, start);
    /// assert_eq!(r.attempts, 1);
    /// ```
    #[must_use]
    pub fn new(
        name: &'static str,
        (cid, parent): (CorrelationId, Option<CorrelationId>),
        progress: &crate::Attempts,
        now: SystemTime,
        reason: Reason,
        policy: Policy,
        last_error: Option<E>,
    ) -> Self {
        Self {
            name,
            cid,
            parent,
            started_at: progress.started.unwrap_or(now),
            attempts: progress.made,
            elapsed: progress.elapsed(now),
            reason,
            policy,
            last_error,
            format: None,
        }
    }

    /// The same report, its error shown in the one-line form with `format` (the function's
    /// error format; `#[retry]` sets it on every report it hands out).
    ///
    /// ```
    /// use retry_runtime::{Attempts, CorrelationId, Policy, Reason, Report};
    /// use std::time::SystemTime;
    ///
    /// let now = SystemTime::now();
    /// let r = Report::new("jobs::sync", (CorrelationId::new(), None), &Attempts::started_at(now),
    ///     now, Reason::Exhausted, Policy::new(), Some("token=abc: refused".to_string()));
    /// assert!(r.to_string().ends_with(": \"token=abc: refused\""), "Debug by default: {r}");
    /// let r = r.with_format(|e, f| f.write_str(&e.replace("abc", "***")));
    /// assert!(r.to_string().ends_with(": token=***: refused"), "{r}");
    /// ```
    #[must_use]
    pub fn with_format(mut self, format: ErrorFormatter<E>) -> Self {
        self.format = Some(format);
        self
    }

    /// The same report with another error (or none): what a fallback's error or a formatted
    /// error becomes.
    #[must_use]
    pub fn with_error<F>(&self, last_error: Option<F>) -> Report<F> {
        Report {
            name: self.name,
            cid: self.cid,
            parent: self.parent,
            started_at: self.started_at,
            attempts: self.attempts,
            elapsed: self.elapsed,
            reason: self.reason,
            policy: self.policy,
            last_error,
            format: None,
        }
    }

    /// The same report with its error written out as its one-line form shows it (what a
    /// report kept after its call becomes).
    #[must_use]
    pub fn shown(&self) -> Report<String>
    where
        E: fmt::Debug,
    {
        let text = self
            .last_error
            .as_ref()
            .map(|e| Shown(e, self.format).to_string());
        self.with_error(text).with_format(|e, f| f.write_str(e))
    }

    /// Whether the call ended in success.
    #[must_use]
    pub fn is_ok(&self) -> bool {
        self.reason == Reason::Succeeded
    }

    /// The report without its error, for keeping or sending elsewhere.
    #[must_use]
    pub fn facts(&self) -> Report<()> {
        self.with_error(self.last_error.as_ref().map(|_| ()))
    }
}

impl<E: fmt::Debug> fmt::Display for Report<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} [cid {}] {} after {} attempt(s) in {:?}",
            self.name, self.cid, self.reason, self.attempts, self.elapsed
        )?;
        if let Some(p) = self.parent {
            write!(f, " (parent {p})")?;
        }
        match (&self.last_error, self.reason) {
            (Some(e), Reason::Succeeded) => write!(f, " (last error: {})", Shown(e, self.format))?,
            (Some(e), _) => write!(f, ": {}", Shown(e, self.format))?,
            (None, _) => {}
        }
        Ok(())
    }
}

/// An error written with a format, or with `Debug` when there is none.
struct Shown<'a, E>(&'a E, Option<ErrorFormatter<E>>);

impl<E: fmt::Debug> fmt::Display for Shown<'_, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.1 {
            Some(format) => format(self.0, f),
            None => fmt::Debug::fmt(self.0, f),
        }
    }
}

/// The error a timed-out attempt produces; the function's error type must convert from it
/// (`From<TimedOut>`) to use `timeout = ...`. `std::io::Error` and `anyhow::Error` already do.
///
/// ```
/// let e: std::io::Error = retry_runtime::TimedOut.into();
/// assert_eq!(e.kind(), std::io::ErrorKind::TimedOut);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct TimedOut;

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the attempt timed out")
    }
}

impl std::error::Error for TimedOut {}

impl From<TimedOut> for std::io::Error {
    fn from(e: TimedOut) -> Self {
        Self::new(std::io::ErrorKind::TimedOut, e)
    }
}

#[cfg(test)]
mod tests {
    use super::Reason;

    #[test]
    fn every_reason_is_listed_at_its_index_with_its_own_label() {
        let mut labels = std::collections::HashSet::new();
        for (i, r) in Reason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i, "{r:?}");
            assert!(labels.insert(r.label()), "{r:?} shares its label");
        }
    }
}
