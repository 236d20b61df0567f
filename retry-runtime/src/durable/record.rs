//! The values the durable store keeps and returns: a call's state and record, a new call, a
//! claim, a list filter, the counts.

use core::fmt;
use core::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;

use crate::{Attempts, CorrelationId};

/// Where a durable call is in its life.
///
/// ```text
/// pending ──claim──▶ running ──complete──▶ succeeded
///                     │  ▲  └──bury──────▶ dead ──requeue──▶ pending
///          reschedule │  │ claim (due, or lease expired)
///                     ▼  │
///                   waiting
/// pending, waiting, running ──cancel──▶ cancelled ──requeue──▶ pending
/// ```
///
/// Stored and printed as the lowercase name:
///
/// ```
/// use retry_runtime::durable::CallState;
///
/// assert_eq!(CallState::Waiting.as_str(), "waiting");
/// assert_eq!("dead".parse::<CallState>(), Ok(CallState::Dead));
/// assert!("finished".parse::<CallState>().is_err());
/// assert!(CallState::Cancelled.is_finished() && !CallState::Running.is_finished());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallState {
    /// Enqueued, no attempt yet; due at its `next_due_at`.
    Pending,
    /// Claimed by a worker, which holds a lease until `lease_until`.
    Running,
    /// An attempt failed and the policy allows another, due at `next_due_at`.
    Waiting,
    /// An attempt succeeded. Finished.
    Succeeded,
    /// The policy gave up, or the call could not be run (its arguments no longer decode).
    /// Finished; an operator can requeue it.
    Dead,
    /// Cancelled by an operator or by the program. Finished; it can be requeued.
    Cancelled,
}

impl CallState {
    /// Every state, in the order of the enum.
    pub const ALL: [CallState; 6] = [
        CallState::Pending,
        CallState::Running,
        CallState::Waiting,
        CallState::Succeeded,
        CallState::Dead,
        CallState::Cancelled,
    ];

    /// The lowercase name, as stored and printed.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            CallState::Pending => "pending",
            CallState::Running => "running",
            CallState::Waiting => "waiting",
            CallState::Succeeded => "succeeded",
            CallState::Dead => "dead",
            CallState::Cancelled => "cancelled",
        }
    }

    /// Whether the call has ended (succeeded, dead or cancelled): no worker will run it again
    /// unless it is requeued, and it may be purged.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            CallState::Succeeded | CallState::Dead | CallState::Cancelled
        )
    }
}

impl fmt::Display for CallState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not one of the six state names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseStateError(pub String);

impl fmt::Display for ParseStateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown call state `{}`: expected one of pending, running, waiting, succeeded, dead, cancelled",
            self.0
        )
    }
}

impl std::error::Error for ParseStateError {}

impl FromStr for CallState {
    type Err = ParseStateError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CallState::ALL
            .into_iter()
            .find(|state| state.as_str() == s)
            .ok_or_else(|| ParseStateError(s.to_owned()))
    }
}

/// Everything the store knows about one durable call.
///
/// Times are kept to the millisecond. Serialized (for the operator's tool) with IDs as their
/// 26 characters and times as RFC 3339 UTC text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallRecord {
    /// The call's ID; also the idempotency key a durable function should use.
    #[serde(serialize_with = "ser::cid")]
    pub cid: CorrelationId,
    /// The ID of the call that enqueued this one, if any.
    #[serde(serialize_with = "ser::opt_cid")]
    pub parent: Option<CorrelationId>,
    /// The registered name of the function to run.
    pub function: String,
    /// The arguments, as JSON text.
    pub args: String,
    /// Where the call is in its life.
    pub state: CallState,
    /// Attempts made so far, as reported by workers.
    pub attempts: u32,
    /// When the call was enqueued.
    #[serde(serialize_with = "ser::time")]
    pub created_at: SystemTime,
    /// When the call started for the purpose of its budget (set by the worker).
    #[serde(serialize_with = "ser::opt_time")]
    pub started_at: Option<SystemTime>,
    /// When the first attempt started.
    #[serde(serialize_with = "ser::opt_time")]
    pub first_attempt_at: Option<SystemTime>,
    /// When the latest attempt started.
    #[serde(serialize_with = "ser::opt_time")]
    pub last_attempt_at: Option<SystemTime>,
    /// When a pending or waiting call is due; `None` for running and finished calls.
    #[serde(serialize_with = "ser::opt_time")]
    pub next_due_at: Option<SystemTime>,
    /// The error of the latest failed attempt, as the function shows it in its events and
    /// reports (its `error_format` hook, else its `Display`, else its `Debug`).
    pub last_error: Option<String>,
    /// Why a dead call was given up.
    pub dead_reason: Option<String>,
    /// The worker holding the lease of a running call.
    pub worker: Option<String>,
    /// When the lease of a running call expires; another worker may then claim it.
    #[serde(serialize_with = "ser::opt_time")]
    pub lease_until: Option<SystemTime>,
    /// The fencing token: raised by every claim, release and cancel; an outcome carrying an
    /// older one is refused.
    pub fence: u64,
    /// The engine's latest wait in nanoseconds (for backoffs that grow from the previous wait).
    pub last_wait_ns: u64,
    /// When the record last changed (lease renewals aside).
    #[serde(serialize_with = "ser::time")]
    pub updated_at: SystemTime,
    /// The enqueuer's W3C trace context (`traceparent`, then `tracestate` after a newline),
    /// stored with the feature `opentelemetry`; the worker's attempt spans are its children.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_context: Option<String>,
    /// A succeeded call's result: its function's `Ok` value as JSON text, when its type
    /// implements serde's `Serialize` (`None` otherwise, for `()`, for a call not succeeded,
    /// and for calls that succeeded before results were kept). [`Store::wait`] and
    /// [`Store::wait_for`] read it.
    ///
    /// [`Store::wait`]: super::Store::wait
    /// [`Store::wait_for`]: super::Store::wait_for
    pub result: Option<String>,
}

/// A call to enqueue.
///
/// ```
/// use retry_runtime::durable::NewCall;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let call = NewCall::new("billing::charge", r#"{"invoice":42}"#)
///     .due_at(UNIX_EPOCH + Duration::from_secs(1_800_000_000));
/// assert_eq!(call.function, "billing::charge");
/// assert_eq!(call.cid.to_string().len(), 26);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCall {
    /// The call's ID (fresh from [`NewCall::new`]); enqueueing an ID twice is an error.
    pub cid: CorrelationId,
    /// The enqueuing call's ID, if any.
    pub parent: Option<CorrelationId>,
    /// The registered name of the function to run.
    pub function: String,
    /// The arguments as JSON text; checked to be JSON when enqueued.
    pub args: String,
    /// When the first attempt is due; `None`: at once (the enqueue's `now`).
    pub due: Option<SystemTime>,
    /// Attempts already made before the call was stored (`persist = "on_failure"`): the
    /// call is stored `waiting` with this progress and error, not `pending`.
    pub tried: Option<Tried>,
    /// The enqueuer's W3C trace context, `traceparent` then `tracestate` after a newline
    /// (set by a durable function's call with the feature `opentelemetry`, or by
    /// `NewCall::traced`); `None`: the attempts start traces of their own.
    pub trace_context: Option<String>,
    /// What makes this call the same as another of its function, if anything; enqueued with
    /// [`Store::enqueue_unique`](super::Store::enqueue_unique).
    pub unique: Option<super::Unique>,
}

/// The attempts a call made in its caller before it was stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tried {
    /// The progress so far (attempts, the call's start, the engine's last wait).
    pub progress: Progress,
    /// The error of the last attempt.
    pub error: String,
}

impl NewCall {
    /// A call of `function` with `args` (JSON text), a fresh ID, no parent, due at once.
    #[must_use]
    pub fn new(function: impl Into<String>, args: impl Into<String>) -> Self {
        Self {
            cid: CorrelationId::new(),
            parent: None,
            function: function.into(),
            args: args.into(),
            due: None,
            tried: None,
            trace_context: None,
            unique: None,
        }
    }

    /// Sets the call's ID.
    #[must_use]
    pub fn with_cid(mut self, cid: CorrelationId) -> Self {
        self.cid = cid;
        self
    }

    /// Sets the parent call's ID.
    #[must_use]
    pub fn with_parent(mut self, parent: CorrelationId) -> Self {
        self.parent = Some(parent);
        self
    }

    /// Makes the first attempt due at `due` rather than at once.
    #[must_use]
    pub fn due_at(mut self, due: SystemTime) -> Self {
        self.due = Some(due);
        self
    }

    /// Gives the call a uniqueness key (see [`Unique`](super::Unique)); enqueue it with
    /// [`Store::enqueue_unique`](super::Store::enqueue_unique).
    #[must_use]
    pub fn unique(mut self, unique: super::Unique) -> Self {
        self.unique = Some(unique);
        self
    }

    /// Records attempts the caller already made: the call is stored `waiting`.
    #[must_use]
    pub fn tried(mut self, progress: Progress, error: impl Into<String>) -> Self {
        self.tried = Some(Tried {
            progress,
            error: error.into(),
        });
        self
    }
}

/// A call a worker has claimed: its record (already `Running`, leased to the worker) and the
/// fencing token every later write about this attempt must carry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Claim {
    /// The record as it is after the claim.
    pub record: CallRecord,
    /// The fencing token of this claim (equal to `record.fence`).
    pub fence: u64,
}

impl From<CallRecord> for Claim {
    /// The claim a claiming statement returned: the record as claimed, with its fence.
    fn from(record: CallRecord) -> Self {
        Self {
            fence: record.fence,
            record,
        }
    }
}

/// What the engine has to say about a call when an attempt ends without success, so that a
/// worker in another process can carry on where this one stopped: the stored form of the
/// engine's [`Attempts`], converted here and nowhere else
/// ([`Progress::after_attempt`], [`Progress::attempts`], [`CallRecord::progress`]).
///
/// ```
/// use retry_runtime::durable::Progress;
/// use retry_runtime::Attempts;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let start = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let engine = Attempts { made: 2, last_wait_ns: 40, started: Some(start) };
/// let stored = Progress::after_attempt(engine, start + Duration::from_secs(1));
/// assert_eq!(stored.attempts, 2);
/// assert_eq!(stored.attempts(), engine);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Progress {
    /// Attempts made so far, this one included.
    pub attempts: u32,
    /// When the call started, for its budget.
    pub started_at: Option<SystemTime>,
    /// The engine's latest wait, in nanoseconds.
    pub last_wait_ns: u64,
    /// When the attempt that just ended started.
    pub attempt_started: SystemTime,
}

impl Progress {
    /// The stored form of the engine's progress `state` after an attempt that started at
    /// `attempt_started`.
    #[must_use]
    pub fn after_attempt(state: Attempts, attempt_started: SystemTime) -> Self {
        Self {
            attempts: state.made,
            started_at: state.started,
            last_wait_ns: state.last_wait_ns,
            attempt_started,
        }
    }

    /// The engine's progress, to carry the call on.
    #[must_use]
    pub fn attempts(&self) -> Attempts {
        Attempts {
            made: self.attempts,
            last_wait_ns: self.last_wait_ns,
            started: self.started_at,
        }
    }
}

impl CallRecord {
    /// The engine's progress of the stored call, to carry it on.
    #[must_use]
    pub fn progress(&self) -> Attempts {
        Attempts {
            made: self.attempts,
            last_wait_ns: self.last_wait_ns,
            started: self.started_at,
        }
    }
}

/// Which records [`list`](crate::durable::Store::list) returns; every field narrows the list.
///
/// ```
/// use retry_runtime::durable::{CallState, ListFilter};
/// use std::time::Duration;
///
/// let stuck = ListFilter {
///     state: Some(CallState::Waiting),
///     older_than: Some(Duration::from_secs(3600)),
///     ..ListFilter::default()
/// };
/// assert_eq!(stuck.limit, None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// Only calls in this state.
    pub state: Option<CallState>,
    /// Only calls of this function.
    pub function: Option<String>,
    /// Only calls whose record last changed at least this long ago.
    pub older_than: Option<Duration>,
    /// At most this many records (the oldest changes first).
    pub limit: Option<usize>,
}

/// The number of calls of one function in one state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatsRow {
    /// The function's registered name.
    pub function: String,
    /// The state.
    pub state: CallState,
    /// How many calls of `function` are in `state`.
    pub count: u64,
}

/// Counts of calls per function and state; pairs with no calls are left out.
///
/// ```
/// use retry_runtime::durable::{CallState, Stats, StatsRow};
///
/// let stats = Stats {
///     rows: vec![
///         StatsRow { function: "a".into(), state: CallState::Dead, count: 2 },
///         StatsRow { function: "b".into(), state: CallState::Pending, count: 5 },
///     ],
/// };
/// assert_eq!(stats.total(), 7);
/// assert_eq!(stats.count("a", CallState::Dead), 2);
/// assert_eq!(stats.count("a", CallState::Pending), 0);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Stats {
    /// One row per (function, state) with calls, sorted by function then state.
    pub rows: Vec<StatsRow>,
}

impl Stats {
    /// All calls in the store.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.rows.iter().map(|r| r.count).sum()
    }

    /// The calls of `function` in `state`.
    #[must_use]
    pub fn count(&self, function: &str, state: CallState) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.function == function && r.state == state)
            .map(|r| r.count)
            .sum()
    }

    /// The calls in `state`, whatever their function.
    #[must_use]
    pub fn count_state(&self, state: CallState) -> u64 {
        self.rows
            .iter()
            .filter(|r| r.state == state)
            .map(|r| r.count)
            .sum()
    }

    /// Unfinished calls of functions not in `known`: calls no worker of a program that knows
    /// only those functions will run (a function renamed without a pinned `name`, or
    /// removed). [`durable::orphans`](crate::durable::orphans) asks it with the functions
    /// of this program.
    ///
    /// ```
    /// use retry_runtime::durable::{CallState, Stats, StatsRow};
    ///
    /// let stats = Stats {
    ///     rows: vec![
    ///         StatsRow { function: "billing::push".into(), state: CallState::Pending, count: 3 },
    ///         StatsRow { function: "billing::old".into(), state: CallState::Waiting, count: 2 },
    ///         StatsRow { function: "billing::old".into(), state: CallState::Dead, count: 9 },
    ///     ],
    /// };
    /// assert_eq!(stats.orphaned(&["billing::push"]), 2);
    /// ```
    #[must_use]
    pub fn orphaned(&self, known: &[&str]) -> u64 {
        self.rows
            .iter()
            .filter(|r| !r.state.is_finished() && !known.contains(&r.function.as_str()))
            .map(|r| r.count)
            .sum()
    }
}

/// Formats a time as RFC 3339 UTC text to the millisecond, as records are serialized:
///
/// ```
/// use retry_runtime::durable::format_time;
/// use std::time::{Duration, UNIX_EPOCH};
///
/// let t = UNIX_EPOCH + Duration::from_millis(1_700_000_000_123);
/// assert_eq!(format_time(t), "2023-11-14T22:13:20.123Z");
/// ```
#[must_use]
pub fn format_time(t: SystemTime) -> String {
    let ms = match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i128::try_from(d.as_millis()).unwrap_or(i128::MAX),
        Err(e) => -i128::try_from(e.duration().as_millis()).unwrap_or(i128::MAX),
    };
    let days = ms.div_euclid(86_400_000);
    let rem = ms.rem_euclid(86_400_000);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

/// The proleptic Gregorian date of a day count from 1970-01-01.
fn civil_from_days(days: i128) -> (i128, i128, i128) {
    // Shift the epoch to 0000-03-01, so that leap days end a year; 146_097 days per 400 years.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i128::from(m <= 2);
    (y, m, d)
}

/// Serializers for the fields serde cannot do as we want: IDs as text, times as RFC 3339.
mod ser {
    use super::{format_time, CorrelationId, SystemTime};
    use serde::Serializer;

    #[allow(clippy::trivially_copy_pass_by_ref)] // serde's `serialize_with` passes a reference
    pub(super) fn cid<S: Serializer>(cid: &CorrelationId, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(cid)
    }

    #[allow(clippy::ref_option)] // serde's `serialize_with` passes a reference
    pub(super) fn opt_cid<S: Serializer>(
        cid: &Option<CorrelationId>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match cid {
            Some(cid) => s.collect_str(cid),
            None => s.serialize_none(),
        }
    }

    #[allow(clippy::trivially_copy_pass_by_ref)]
    pub(super) fn time<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format_time(*t))
    }

    #[allow(clippy::ref_option)]
    pub(super) fn opt_time<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => s.serialize_str(&format_time(*t)),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{civil_from_days, format_time};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn dates_around_leap_days_and_the_epoch() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(11_017), (2000, 3, 1));
        assert_eq!(
            format_time(UNIX_EPOCH + Duration::from_millis(951_868_799_999)),
            "2000-02-29T23:59:59.999Z"
        );
    }
}

/// A function paused in the store ([`Store::pause`](super::Store::pause)): no worker of the
/// store claims its calls until it is resumed.
///
/// ```
/// use retry_runtime::durable::Store;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("sqlite::memory:").await?;
/// assert!(store.pause("mail::send", "ops").await?);
/// let paused = store.paused().await?;
/// assert_eq!(paused[0].function, "mail::send");
/// assert_eq!(paused[0].paused_by, "ops");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PausedFunction {
    /// The function's registered name.
    pub function: String,
    /// When it was paused.
    pub paused_at: SystemTime,
    /// Who paused it, as the pausing operator or tool gave it.
    pub paused_by: String,
}
