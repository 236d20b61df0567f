//! The attempt history of each call: every attempt a worker runs is written, with its outcome,
//! in the same transaction as the outcome itself (success, retry, dead letter), fenced as the
//! outcome is: an attempt whose claim is stale writes nothing. A running call cancelled writes
//! its interrupted attempt. The store keeps the last [`ATTEMPTS_KEPT`] attempts of a call and
//! deletes them with it when it is purged. The console's call page shows them.
//!
//! Each statement is written once for both SQL stores (`{attempts}` is `call_attempts` on
//! SQLite, `retry_attempts` on PostgreSQL); the insert reads the worker from the call's row
//! while it is still running under the claim's fence, and on PostgreSQL locks that row
//! (`FOR UPDATE`) so the outcome written next in the transaction cannot find it changed.

use core::fmt;
use core::str::FromStr;
use std::time::{Duration, SystemTime};

use super::millis::{earlier, from_millis, saturating_i64, to_millis};
use super::record::CallState;
use super::rows::StoredRow;
use super::statements::{Dialect, Param, Sql, Statement};
use super::store::{BoxFuture, StoreError};
use crate::CorrelationId;

/// How many attempts of a call the store keeps: the latest ones.
pub const ATTEMPTS_KEPT: u32 = 20;

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum AttemptOutcome {
    /// The function returned `Ok`: the call succeeded.
    Succeeded,
    /// The attempt failed and the policy retries it: the call waits for its next attempt.
    Failed,
    /// The attempt failed and the call went to the dead letters (policy exhausted, or an
    /// error it does not retry).
    Dead,
    /// The call was cancelled while the attempt ran.
    Cancelled,
}

impl AttemptOutcome {
    /// The name stored: `succeeded`, `failed`, `dead` or `cancelled`.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Succeeded => "succeeded",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Cancelled => "cancelled",
        }
    }
}

impl fmt::Display for AttemptOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for AttemptOutcome {
    type Err = StoreError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "succeeded" => Ok(AttemptOutcome::Succeeded),
            "failed" => Ok(AttemptOutcome::Failed),
            "dead" => Ok(AttemptOutcome::Dead),
            "cancelled" => Ok(AttemptOutcome::Cancelled),
            other => Err(malformed(&format!("`{other}` is not an attempt's outcome"))),
        }
    }
}

/// One attempt of a call, as the store keeps it ([`Store::attempts`](super::Store::attempts)).
///
/// ```
/// use retry_runtime::durable::{AttemptOutcome, NewCall, Store};
/// use std::time::{Duration, UNIX_EPOCH};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("sqlite::memory:").await?;
/// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
/// let call = NewCall::new("mail::send", "[]");
/// store.backend().enqueue(vec![call.clone()], now).await?;
/// let lease = Duration::from_secs(30);
/// let claim = store.backend().claim("w1", &["mail::send".into()], 1, lease, now).await?.remove(0);
/// let end = now + Duration::from_millis(250);
/// store.backend().complete(call.cid, claim.fence, 1, now, end).await?;
///
/// let attempts = store.attempts(call.cid).await?;
/// assert_eq!(attempts.len(), 1);
/// assert_eq!(attempts[0].attempt, 1);
/// assert_eq!(attempts[0].worker.as_deref(), Some("w1"));
/// assert_eq!(attempts[0].outcome, AttemptOutcome::Succeeded);
/// assert_eq!(attempts[0].duration(), Duration::from_millis(250));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The call.
    pub cid: CorrelationId,
    /// The attempt's number among the call's recorded attempts, from 1; it goes on counting
    /// after a requeue (which starts the call's own count again).
    pub attempt: u32,
    /// When the attempt started.
    pub started_at: SystemTime,
    /// When its outcome was recorded.
    pub ended_at: SystemTime,
    /// The worker that ran it (`None`: the caller, before the call was stored).
    pub worker: Option<String>,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Its error, as the call's last error is stored.
    pub error: Option<String>,
}

impl AttemptRecord {
    /// How long it ran (zero if the clocks disagree).
    #[must_use]
    pub fn duration(&self) -> Duration {
        self.ended_at
            .duration_since(self.started_at)
            .unwrap_or_default()
    }
}

impl Dialect {
    /// `text` with the tables of the history and the audit named (`{attempts}`, `{audit}`),
    /// and ` {lock}` as `FOR UPDATE` where the database locks rows (PostgreSQL).
    pub(crate) fn history_tables(self, text: &str) -> String {
        let (attempts, audit, lock) = match self {
            Dialect::Sqlite => ("call_attempts", "audit", ""),
            Dialect::Postgres => ("retry_attempts", "retry_audit", " FOR UPDATE"),
        };
        text.replace("{attempts}", attempts)
            .replace("{audit}", audit)
            .replace(" {lock}", lock)
    }
}

/// The next number of a call's attempts (`$1` is the call).
macro_rules! next_attempt {
    () => {
        "COALESCE((SELECT max(a.attempt) FROM {attempts} a WHERE a.cid = $1), 0) + 1"
    };
}

/// An attempt that ended with an outcome, written before the outcome (whose statement clears
/// the worker) and only if the call still runs under the claim's fence: `$1` call, `$2`
/// fence, `$3` start, `$4` end, `$5` outcome, `$6` error.
///
/// SQLite's form is one row of `VALUES`, not `INSERT ... SELECT`: an `INSERT ... SELECT`
/// reading the table it inserts into (the next number) first copies its rows into a
/// temporary b-tree, and runs in a statement journal. The fence is in the attempt's number,
/// NULL unless the call runs under the claim's fence, which `OR IGNORE` skips (the column is
/// `NOT NULL`) as it skips an attempt already written (`ON CONFLICT DO NOTHING`).
static ATTEMPT: Sql = Sql::per_dialect(
    concat!(
        "INSERT INTO {attempts} (cid, attempt, started_at, ended_at, worker, outcome, error) \
         SELECT cid, ",
        next_attempt!(),
        ", CAST($3 AS BIGINT), CAST($4 AS BIGINT), worker, CAST($5 AS TEXT), CAST($6 AS TEXT) \
         FROM {calls} WHERE cid = $1 AND fence = $2 AND state = 'running' {lock} \
         ON CONFLICT (cid, attempt) DO NOTHING"
    ),
    concat!(
        "INSERT OR IGNORE INTO {attempts} \
         (cid, attempt, started_at, ended_at, worker, outcome, error) VALUES ($1, \
         (SELECT ",
        next_attempt!(),
        " FROM {calls} WHERE cid = $1 AND fence = $2 AND state = 'running'), \
         $3, $4, (SELECT worker FROM {calls} WHERE cid = $1), $5, $6)"
    ),
);

pub(crate) fn attempt(
    cid: CorrelationId,
    fence: u64,
    started: SystemTime,
    now: SystemTime,
    outcome: AttemptOutcome,
    error: Option<String>,
) -> Statement {
    Statement {
        sql: &ATTEMPT,
        params: vec![
            Param::Text(cid.to_string()),
            Param::BigInt(saturating_i64(fence)),
            Param::BigInt(to_millis(started)),
            Param::BigInt(to_millis(now)),
            Param::Text(outcome.as_str().to_owned()),
            Param::MaybeText(error),
        ],
    }
}

/// The attempt a cancel interrupts, written before the cancel if the call is running: it
/// started when the call was claimed (a running call's last change), by the claiming
/// worker. `$1` call, `$2` now.
///
/// SQLite's form: as [`ATTEMPT`]'s.
static CANCELLED_ATTEMPT: Sql = Sql::per_dialect(
    concat!(
        "INSERT INTO {attempts} (cid, attempt, started_at, ended_at, worker, outcome, error) \
         SELECT cid, ",
        next_attempt!(),
        ", updated_at, CAST($2 AS BIGINT), worker, 'cancelled', NULL \
         FROM {calls} WHERE cid = $1 AND state = 'running' {lock} \
         ON CONFLICT (cid, attempt) DO NOTHING"
    ),
    concat!(
        "INSERT OR IGNORE INTO {attempts} \
         (cid, attempt, started_at, ended_at, worker, outcome, error) VALUES ($1, \
         (SELECT ",
        next_attempt!(),
        " FROM {calls} WHERE cid = $1 AND state = 'running'), \
         (SELECT updated_at FROM {calls} WHERE cid = $1), $2, \
         (SELECT worker FROM {calls} WHERE cid = $1), 'cancelled', NULL)"
    ),
);

pub(crate) fn cancelled_attempt(cid: CorrelationId, now: SystemTime) -> Statement {
    Statement {
        sql: &CANCELLED_ATTEMPT,
        params: vec![Param::Text(cid.to_string()), Param::BigInt(to_millis(now))],
    }
}

/// The caller's own failed attempt of a call stored after it (`persist = "on_failure"`),
/// written with the call: no worker ran it. `$1` call, `$2` start, `$3` end, `$4` error.
static TRIED: Sql = Sql::new(
    "INSERT INTO {attempts} (cid, attempt, started_at, ended_at, worker, outcome, error) \
     VALUES ($1, 1, $2, $3, NULL, 'failed', $4)",
);

pub(crate) fn tried(cid: CorrelationId, tried: &super::Tried, now: SystemTime) -> Statement {
    Statement {
        sql: &TRIED,
        params: vec![
            Param::Text(cid.to_string()),
            Param::BigInt(to_millis(tried.progress.attempt_started)),
            Param::BigInt(to_millis(now)),
            Param::MaybeText(Some(tried.error.clone())),
        ],
    }
}

/// Keeps the call's latest `$2` attempts, deleting older ones.
static TRIM: Sql = Sql::new(
    "DELETE FROM {attempts} WHERE cid = $1 \
     AND attempt <= (SELECT max(b.attempt) FROM {attempts} b WHERE b.cid = $1) - $2",
);

pub(crate) fn trim(cid: CorrelationId) -> Statement {
    Statement {
        sql: &TRIM,
        params: vec![
            Param::Text(cid.to_string()),
            Param::Int(i32::try_from(ATTEMPTS_KEPT).unwrap_or(i32::MAX)),
        ],
    }
}

/// A call's attempts, oldest first, read by [`decode`].
static ATTEMPTS: Sql = Sql::new(
    "SELECT cid, attempt, started_at, ended_at, worker, outcome, error FROM {attempts} \
     WHERE cid = $1 ORDER BY attempt",
);

pub(crate) fn attempts(cid: CorrelationId) -> Statement {
    Statement {
        sql: &ATTEMPTS,
        params: vec![Param::Text(cid.to_string())],
    }
}

/// The attempts of the calls a purge deletes (the same values as the purge's own
/// statement), run before it in its transaction.
static PURGE_ATTEMPTS: Sql = Sql::new(
    "DELETE FROM {attempts} WHERE cid IN \
     (SELECT cid FROM {calls} WHERE state = $1 AND updated_at <= $2)",
);

pub(crate) fn purge_attempts(state: CallState, older_than: Duration, now: SystemTime) -> Statement {
    Statement {
        sql: &PURGE_ATTEMPTS,
        params: vec![
            Param::Text(state.as_str().to_owned()),
            Param::BigInt(earlier(now, older_than)),
        ],
    }
}

/// What a SQL store supplies for the history and the audit.
pub(crate) trait HistoryRunner {
    /// Runs the statements in one transaction, all or none; returns how many rows each
    /// changed.
    fn execute_all(
        &self,
        statements: Vec<Statement>,
    ) -> BoxFuture<'_, Result<Vec<u64>, StoreError>>;
    /// Runs the [`attempts`] query.
    fn attempt_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<AttemptRecord>, StoreError>>;
    /// Runs the [`page`](super::audit::page) query of the audit.
    fn audit_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<super::audit::AuditRecord>, StoreError>>;
}

/// An outcome's statement with its attempt written before it and the history trimmed after,
/// in one transaction; `true` if the outcome changed the call.
pub(crate) fn recorded<R: HistoryRunner + ?Sized>(
    runner: &R,
    attempt: Statement,
    outcome: Statement,
    cid: CorrelationId,
) -> BoxFuture<'_, Result<bool, StoreError>> {
    let all = runner.execute_all(vec![attempt, outcome, trim(cid)]);
    Box::pin(async move { Ok(all.await?.get(1).is_some_and(|&n| n > 0)) })
}

/// A success's statements, in the order [`recorded`] runs them: its attempt, the outcome
/// ([`statements::complete`](super::statements::complete), with the result), the trimmed
/// history; the second one's count says whether the call was recorded. For a store that
/// records many successes in one job (SQLite's batch of successes).
pub(crate) fn succeeded(
    cid: CorrelationId,
    fence: u64,
    attempts: u32,
    attempt_started: SystemTime,
    result: Option<String>,
    now: SystemTime,
) -> [Statement; 3] {
    [
        attempt(
            cid,
            fence,
            attempt_started,
            now,
            AttemptOutcome::Succeeded,
            None,
        ),
        super::statements::complete(cid, fence, attempts, attempt_started, result, now),
        trim(cid),
    ]
}

/// A purge with the attempts of the calls it deletes, in one transaction; how many calls.
pub(crate) fn purged<R: HistoryRunner + ?Sized>(
    runner: &R,
    attempts: Statement,
    purge: Statement,
) -> BoxFuture<'_, Result<u64, StoreError>> {
    let all = runner.execute_all(vec![attempts, purge]);
    Box::pin(async move { Ok(all.await?.get(1).copied().unwrap_or(0)) })
}

/// The [`Backend`](super::Backend) methods of the history and the audit, for a store that is
/// a [`HistoryRunner`]: attempts, `record_audit`, audit.
macro_rules! history_methods {
    () => {
        fn attempts(
            &self,
            cid: $crate::CorrelationId,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::AttemptRecord>, $crate::durable::StoreError>,
        > {
            use $crate::durable::history::{attempts, HistoryRunner};
            self.attempt_rows(attempts(cid))
        }

        fn record_audit(
            &self,
            entry: $crate::durable::AuditEntry,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<(), $crate::durable::StoreError>> {
            use $crate::durable::history::HistoryRunner;
            let all = self.execute_all(vec![$crate::durable::audit::record(entry, now)]);
            Box::pin(async move { all.await.map(|_| ()) })
        }

        fn audit(
            &self,
            before: Option<u64>,
            limit: usize,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::AuditRecord>, $crate::durable::StoreError>,
        > {
            use $crate::durable::history::HistoryRunner;
            self.audit_rows($crate::durable::audit::page(before, limit))
        }
    };
}
pub(crate) use history_methods;

fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("a stored attempt is malformed: {what}"))
}

fn required<T>(value: Option<T>, idx: usize) -> Result<T, StoreError> {
    value.ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

/// An attempt, from a row of [`attempts`].
pub(crate) fn decode(row: &impl StoredRow) -> Result<AttemptRecord, StoreError> {
    let cid = required(row.text(0)?, 0)?;
    let attempt = required(row.int(1)?, 1)?;
    Ok(AttemptRecord {
        cid: cid
            .parse()
            .map_err(|_| malformed(&format!("`{cid}` is not a correlation ID")))?,
        attempt: u32::try_from(attempt)
            .map_err(|_| malformed(&format!("attempt number {attempt}")))?,
        started_at: from_millis(required(row.int(2)?, 2)?),
        ended_at: from_millis(required(row.int(3)?, 3)?),
        worker: row.text(4)?,
        outcome: required(row.text(5)?, 5)?.parse()?,
        error: row.text(6)?,
    })
}

#[cfg(test)]
mod tests {
    use super::{AttemptOutcome, Dialect, ATTEMPT, TRIM};

    #[test]
    fn outcomes_read_back_what_they_write() {
        for o in [
            AttemptOutcome::Succeeded,
            AttemptOutcome::Failed,
            AttemptOutcome::Dead,
            AttemptOutcome::Cancelled,
        ] {
            assert_eq!(o.as_str().parse::<AttemptOutcome>(), Ok(o));
        }
        assert!("retry".parse::<AttemptOutcome>().is_err());
    }

    #[test]
    fn each_dialect_names_the_history_and_locks_only_on_postgres() {
        let sqlite = ATTEMPT.text(Dialect::Sqlite);
        assert!(
            sqlite.starts_with("INSERT OR IGNORE INTO call_attempts"),
            "{sqlite}"
        );
        assert!(
            sqlite.contains("FROM calls WHERE cid = ?1 AND fence = ?2 AND state = 'running'),"),
            "{sqlite}"
        );
        assert!(
            !sqlite.contains("SELECT cid"),
            "no INSERT ... SELECT: {sqlite}"
        );
        let postgres = ATTEMPT.text(Dialect::Postgres);
        assert!(postgres.contains("FROM retry_calls WHERE"), "{postgres}");
        assert!(
            postgres.contains("state = 'running' FOR UPDATE ON CONFLICT"),
            "{postgres}"
        );
        assert!(TRIM
            .text(Dialect::Postgres)
            .starts_with("DELETE FROM retry_attempts"));
    }
}
