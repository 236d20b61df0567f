//! Durations on the command line: `90s`, `30m`, `1h`, `7d`, or a sum such as `1h30m`.

use std::fmt::Write as _;
use std::time::Duration;

/// Parses a duration in the grammar of `#[retry]`'s durations (`retry-duration`): one or more
/// `<number><unit>`, units `ns`, `us`, `ms`, `s`, `m`, `h`, `d`, `w`.
pub fn parse(text: &str) -> Result<Duration, String> {
    retry_duration::parse(text.trim()).map_err(|why| {
        format!(
            "invalid duration `{text}` ({why}): write a number and a unit, like 90s, 30m, 1h, 7d \
             or 1h30m"
        )
    })
}

/// Formats a duration the way [`parse`] reads it, largest units first (`1h30m`, `0s`).
pub fn format(d: Duration) -> String {
    let mut ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    if ms == 0 {
        return "0s".into();
    }
    let mut out = String::new();
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if ms >= size {
            let _ = write!(out, "{}{unit}", ms / size);
            ms %= size;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{format, parse};
    use std::time::Duration;

    #[test]
    fn units_and_sums() {
        assert_eq!(parse("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
        assert_eq!(parse("1h30m"), Ok(Duration::from_secs(5400)));
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        // The attribute's grammar: fractions are allowed.
        assert_eq!(parse("1.5h"), Ok(Duration::from_secs(5400)));
        for bad in ["", "7", "d", "7x", "-1h", "1h 30m"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn formats_back() {
        assert_eq!(format(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(
            parse(&format(Duration::from_millis(90_061_001))),
            Ok(Duration::from_millis(90_061_001))
        );
    }
}
