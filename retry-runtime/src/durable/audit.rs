//! The audit of operators' actions: who requeued, cancelled, purged, paused or resumed what,
//! when, and how many calls it changed. The console and `retry-store` write a record for
//! every action ([`Store::record_audit`](super::Store::record_audit); a pause and a resume
//! write theirs themselves); the console lists them newest first, a keyset page at a time.
//!
//! Each statement is written once for both SQL stores (`{audit}` is `audit` on SQLite,
//! `retry_audit` on PostgreSQL).

use std::time::SystemTime;

use super::millis::{from_millis, saturating_i64, to_millis};
use super::rows::StoredRow;
use super::statements::{Param, Sql, Statement};
use super::store::StoreError;

/// An operator's action, as it is recorded ([`Store::record_audit`](super::Store::record_audit)).
///
/// ```
/// use retry_runtime::durable::{AuditEntry, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("sqlite::memory:").await?;
/// store
///     .record_audit(AuditEntry::new("cli:ops", "purge", "state=dead older_than=7d", 12))
///     .await?;
/// let recent = store.audit(None, 10).await?;
/// assert_eq!(recent[0].entry.actor, "cli:ops");
/// assert_eq!(recent[0].entry.count, 12);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Who: the console's user, `cli:` and the OS user for `retry-store`, ...
    pub actor: String,
    /// What: `requeue`, `cancel`, `purge`, `pause`, `resume`, ...
    pub action: String,
    /// On what: a call's ID, a function, or the filter of a bulk action.
    pub target: String,
    /// How many calls (or functions) it changed.
    pub count: u64,
}

impl AuditEntry {
    /// An entry from its parts.
    pub fn new(
        actor: impl Into<String>,
        action: impl Into<String>,
        target: impl Into<String>,
        count: u64,
    ) -> AuditEntry {
        AuditEntry {
            actor: actor.into(),
            action: action.into(),
            target: target.into(),
            count,
        }
    }
}

/// A recorded action ([`Store::audit`](super::Store::audit)): the entry, when, and its ID
/// (increasing; the cursor of the next page).
///
/// ```
/// use retry_runtime::durable::{AuditEntry, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("sqlite::memory:").await?;
/// for n in 0..3 {
///     store.record_audit(AuditEntry::new("ops", "requeue", "f", n)).await?;
/// }
/// let first = store.audit(None, 2).await?;
/// assert_eq!(first.iter().map(|r| r.entry.count).collect::<Vec<_>>(), [2, 1]);
/// let next = store.audit(Some(first[1].id), 2).await?;
/// assert_eq!(next.len(), 1);
/// assert_eq!(next[0].entry.count, 0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    /// The record's ID, increasing with time.
    pub id: u64,
    /// When the action was recorded.
    pub at: SystemTime,
    /// What was done.
    pub entry: AuditEntry,
}

/// Records one action: `$1` at, `$2` actor, `$3` action, `$4` target, `$5` count.
static RECORD: Sql =
    Sql::new("INSERT INTO {audit} (at, actor, action, target, count) VALUES ($1, $2, $3, $4, $5)");

pub(crate) fn record(entry: AuditEntry, now: SystemTime) -> Statement {
    Statement {
        sql: &RECORD,
        params: vec![
            Param::BigInt(to_millis(now)),
            Param::Text(entry.actor),
            Param::Text(entry.action),
            Param::Text(entry.target),
            Param::BigInt(saturating_i64(entry.count)),
        ],
    }
}

/// A page of the audit, newest first, before the ID `$1` if given, at most `$2`, read by
/// [`decode`].
static PAGE: Sql = Sql::new(
    "SELECT id, at, actor, action, target, count FROM {audit} \
     WHERE (CAST($1 AS BIGINT) IS NULL OR id < $1) ORDER BY id DESC LIMIT $2",
);

pub(crate) fn page(before: Option<u64>, limit: usize) -> Statement {
    Statement {
        sql: &PAGE,
        params: vec![
            Param::MaybeBigInt(before.map(saturating_i64)),
            Param::BigInt(i64::try_from(limit).unwrap_or(i64::MAX)),
        ],
    }
}

fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("a stored audit record is malformed: {what}"))
}

fn text(row: &impl StoredRow, idx: usize) -> Result<String, StoreError> {
    row.text(idx)?
        .ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

fn unsigned(row: &impl StoredRow, idx: usize) -> Result<u64, StoreError> {
    let v = row
        .int(idx)?
        .ok_or_else(|| malformed(&format!("column {idx} is NULL")))?;
    u64::try_from(v).map_err(|_| malformed(&format!("{v} in column {idx} is negative")))
}

/// A record, from a row of [`page`].
pub(crate) fn decode(row: &impl StoredRow) -> Result<AuditRecord, StoreError> {
    Ok(AuditRecord {
        id: unsigned(row, 0)?,
        at: from_millis(row.int(1)?.ok_or_else(|| malformed("column 1 is NULL"))?),
        entry: AuditEntry {
            actor: text(row, 2)?,
            action: text(row, 3)?,
            target: text(row, 4)?,
            count: unsigned(row, 5)?,
        },
    })
}
