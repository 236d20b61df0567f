//! Times and counters as the stores keep them: Unix milliseconds and signed integers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix milliseconds, as stored; times before 1970 are negative.
pub(crate) fn to_millis(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |v| -v),
    }
}

/// `now + by`, in stored milliseconds.
pub(crate) fn later(now: SystemTime, by: Duration) -> i64 {
    to_millis(now).saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// `now - by`, in stored milliseconds.
pub(crate) fn earlier(now: SystemTime, by: Duration) -> i64 {
    to_millis(now).saturating_sub(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// The time stored as `millis` Unix milliseconds.
pub(crate) fn from_millis(millis: i64) -> SystemTime {
    let d = Duration::from_millis(millis.unsigned_abs());
    if millis >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// A count or nanoseconds, as a signed 64-bit column (`BIGINT`), saturating.
pub(crate) fn saturating_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// A count, as a signed 32-bit column (PostgreSQL's `INTEGER`), saturating.
pub(crate) fn saturating_i32(v: u32) -> i32 {
    i32::try_from(v).unwrap_or(i32::MAX)
}
