//! Reading stored rows back, once for both SQL stores: a call's record from the columns of
//! [`COLUMNS`](super::statements::COLUMNS), and the counts of `stats`.

use std::time::SystemTime;

use super::millis::from_millis;
use super::record::{CallRecord, PausedFunction, Stats, StatsRow};
use super::store::StoreError;
use crate::CorrelationId;

/// A row as a driver returns it: its columns by position, as text or as an integer of any
/// width, `None` for NULL.
pub(crate) trait StoredRow {
    /// A text column.
    fn text(&self, idx: usize) -> Result<Option<String>, StoreError>;
    /// An integer column (`INTEGER` or `BIGINT`), widened.
    fn int(&self, idx: usize) -> Result<Option<i64>, StoreError>;
}

/// A stored value that is not what the store writes.
fn malformed(what: &str) -> StoreError {
    StoreError::Backend(format!("a stored call is malformed: {what}"))
}

/// A driver's error reading column `idx`.
fn unreadable(idx: usize, e: &dyn std::fmt::Display) -> StoreError {
    malformed(&format!("column {idx}: {e}"))
}

fn required<T>(value: Option<T>, idx: usize) -> Result<T, StoreError> {
    value.ok_or_else(|| malformed(&format!("column {idx} is NULL")))
}

fn text(row: &impl StoredRow, idx: usize) -> Result<String, StoreError> {
    required(row.text(idx)?, idx)
}

fn cid(text: &str) -> Result<CorrelationId, StoreError> {
    text.parse()
        .map_err(|_| malformed(&format!("`{text}` is not a correlation ID")))
}

fn unsigned(row: &impl StoredRow, idx: usize) -> Result<u64, StoreError> {
    let v = required(row.int(idx)?, idx)?;
    u64::try_from(v).map_err(|_| malformed(&format!("{v} in column {idx} is negative")))
}

fn time(row: &impl StoredRow, idx: usize) -> Result<Option<SystemTime>, StoreError> {
    Ok(row.int(idx)?.map(from_millis))
}

/// A call's record, from a row of [`COLUMNS`](super::statements::COLUMNS).
pub(crate) fn record(row: &impl StoredRow) -> Result<CallRecord, StoreError> {
    Ok(CallRecord {
        cid: cid(&text(row, 0)?)?,
        parent: row.text(1)?.as_deref().map(cid).transpose()?,
        function: text(row, 2)?,
        args: text(row, 3)?,
        state: text(row, 4)?
            .parse()
            .map_err(|e| malformed(&format!("{e}")))?,
        attempts: u32::try_from(unsigned(row, 5)?).unwrap_or(u32::MAX),
        created_at: required(time(row, 6)?, 6)?,
        started_at: time(row, 7)?,
        first_attempt_at: time(row, 8)?,
        last_attempt_at: time(row, 9)?,
        next_due_at: time(row, 10)?,
        last_error: row.text(11)?,
        dead_reason: row.text(12)?,
        worker: row.text(13)?,
        lease_until: time(row, 14)?,
        fence: unsigned(row, 15)?,
        last_wait_ns: unsigned(row, 16)?,
        updated_at: required(time(row, 17)?, 17)?,
        // Tolerant: a trace context that cannot be read is no trace context.
        trace_context: row.text(18).ok().flatten(),
        result: row.text(19)?,
    })
}

/// A row of the `stats` statement: function, state, count.
pub(crate) fn stats_row(row: &impl StoredRow) -> Result<StatsRow, StoreError> {
    Ok(StatsRow {
        function: text(row, 0)?,
        state: text(row, 1)?
            .parse()
            .map_err(|e| malformed(&format!("{e}")))?,
        count: unsigned(row, 2)?,
    })
}

/// A row of the `paused` statement: function, paused at, paused by.
pub(crate) fn paused(row: &impl StoredRow) -> Result<PausedFunction, StoreError> {
    Ok(PausedFunction {
        function: text(row, 0)?,
        paused_at: required(time(row, 1)?, 1)?,
        paused_by: text(row, 2)?,
    })
}

/// The counts, by function and then state (in the order of [`CallState`](super::CallState)).
pub(crate) fn stats(mut rows: Vec<StatsRow>) -> Stats {
    rows.sort_by(|a, b| (&a.function, a.state).cmp(&(&b.function, b.state)));
    Stats { rows }
}

impl StoredRow for rusqlite::Row<'_> {
    fn text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        self.get(idx).map_err(|e| unreadable(idx, &e))
    }

    fn int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        self.get(idx).map_err(|e| unreadable(idx, &e))
    }
}

#[cfg(feature = "postgres")]
impl StoredRow for tokio_postgres::Row {
    fn text(&self, idx: usize) -> Result<Option<String>, StoreError> {
        self.try_get(idx).map_err(|e| unreadable(idx, &e))
    }

    fn int(&self, idx: usize) -> Result<Option<i64>, StoreError> {
        use tokio_postgres::types::Type;
        // PostgreSQL's types are strict: `attempts` is an INTEGER, the rest BIGINT.
        let column = self
            .columns()
            .get(idx)
            .ok_or_else(|| malformed(&format!("no column {idx}")))?;
        if *column.type_() == Type::INT4 {
            let v: Option<i32> = self.try_get(idx).map_err(|e| unreadable(idx, &e))?;
            Ok(v.map(i64::from))
        } else {
            self.try_get(idx).map_err(|e| unreadable(idx, &e))
        }
    }
}
