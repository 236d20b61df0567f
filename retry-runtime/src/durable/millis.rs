//! Times and counters as the stores keep them: Unix milliseconds and signed 64-bit integers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Unix milliseconds, as stored; times before 1970 are negative.
pub(crate) fn ms(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => i64::try_from(d.as_millis()).unwrap_or(i64::MAX),
        Err(e) => i64::try_from(e.duration().as_millis()).map_or(i64::MIN, |v| -v),
    }
}

/// `now + by`, in stored milliseconds.
pub(crate) fn later(now: SystemTime, by: Duration) -> i64 {
    ms(now).saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// `now - by`, in stored milliseconds.
pub(crate) fn earlier(now: SystemTime, by: Duration) -> i64 {
    ms(now).saturating_sub(i64::try_from(by.as_millis()).unwrap_or(i64::MAX))
}

/// A stored time.
pub(crate) fn time(ms: i64) -> SystemTime {
    let d = Duration::from_millis(ms.unsigned_abs());
    if ms >= 0 {
        UNIX_EPOCH + d
    } else {
        UNIX_EPOCH - d
    }
}

/// A count or nanoseconds, as a signed 64-bit column (saturating).
pub(crate) fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}
