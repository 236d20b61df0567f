//! Durations written as text, the one grammar of the `#[retry]` family: `"250ms"`, `"1.5s"`,
//! `"1m30s"`, `"7d"`. The attribute checks its durations with it at compile time, the runtime
//! reads the override file with it, and `retry-store` reads its command line with it.

use std::time::Duration;

/// Defines [`UNITS`], [`UNIT_LIST`] and [`HOW`] from one list, so that what is accepted and what the
/// messages say cannot differ.
macro_rules! units {
    ($first:literal = $first_ns:expr $(, $name:literal = $ns:expr)* $(,)?) => {
        /// The units a duration may use, smallest first, each with its length in nanoseconds.
        ///
        /// ```
        /// assert_eq!(retry_duration::UNITS[2], ("ms", 1_000_000));
        /// ```
        pub const UNITS: &[(&str, u128)] = &[($first, $first_ns) $(, ($name, $ns))*];

        /// The units as every message and doc lists them: `ns, us, ms, s, m, h, d, w`.
        ///
        /// ```
        /// assert_eq!(retry_duration::UNIT_LIST, "ns, us, ms, s, m, h, d, w");
        /// ```
        pub const UNIT_LIST: &str = concat!($first $(, ", ", $name)*);

        /// How to write a duration, for the end of an error message: the units of
        /// [`UNIT_LIST`] and examples.
        ///
        /// ```
        /// assert!(retry_duration::HOW.contains(retry_duration::UNIT_LIST));
        /// ```
        pub const HOW: &str = concat!(
            "write a number and a unit (",
            $first $(, ", ", $name)*,
            ") with no spaces, like \"250ms\", \"1.5s\" or \"1m30s\""
        );
    };
}

units! {
    "ns" = 1,
    "us" = 1_000,
    "ms" = 1_000_000,
    "s" = 1_000_000_000,
    "m" = 60_000_000_000,
    "h" = 3_600_000_000_000,
    "d" = 86_400_000_000_000,
    "w" = 604_800_000_000_000,
}

/// Parses a duration: one or more `<number><unit>`, with the units of [`UNIT_LIST`] (`ns`, `us`,
/// `ms`, `s`, `m`, `h`, `d` for days and `w` for weeks), a number that may have a fraction
/// (`1.5s`), no spaces.
///
/// # Errors
/// What is wrong with the text, in words that finish "invalid duration: ...".
///
/// ```
/// use std::time::Duration;
/// assert_eq!(retry_duration::parse("1m30s"), Ok(Duration::from_secs(90)));
/// assert_eq!(retry_duration::parse("1.5s"), Ok(Duration::from_millis(1500)));
/// assert_eq!(retry_duration::parse("7d"), Ok(Duration::from_secs(7 * 86_400)));
/// assert!(retry_duration::parse("5 s").is_err());
/// ```
pub fn parse(text: &str) -> Result<Duration, String> {
    if text.is_empty() {
        return Err("it is empty".into());
    }
    if text.contains(char::is_whitespace) {
        return Err("spaces are not allowed".into());
    }
    let mut total: u128 = 0;
    let mut rest = text;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let (num, tail) = rest.split_at(num_len);
        if num.is_empty() {
            let c = tail.chars().next().unwrap_or(' ');
            return Err(if c == '-' {
                "a duration cannot be negative".into()
            } else if c.is_whitespace() {
                "spaces are not allowed".into()
            } else {
                format!("expected a number before `{tail}`")
            });
        }
        let unit_len = tail
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(tail.len());
        let (unit, after) = tail.split_at(unit_len);
        if unit.is_empty() {
            return Err(format!("the number `{num}` has no unit"));
        }
        let Some(&(_, scale)) = UNITS.iter().find(|(name, _)| *name == unit) else {
            return Err(format!("unknown unit `{unit}`"));
        };
        let (int, frac) = num.split_once('.').unwrap_or((num, ""));
        if int.is_empty() || frac.contains('.') || (num.contains('.') && frac.is_empty()) {
            return Err(format!("`{num}` is not a number"));
        }
        let overflow = || "it is too long to represent".to_string();
        let int: u128 = int.parse().map_err(|_| overflow())?;
        let mut part = int.checked_mul(scale).ok_or_else(overflow)?;
        if !frac.is_empty() {
            let digits = u32::try_from(frac.len()).map_err(|_| overflow())?;
            let den = 10u128.checked_pow(digits).ok_or_else(overflow)?;
            let f: u128 = frac.parse().map_err(|_| overflow())?;
            let num = f.checked_mul(scale).ok_or_else(overflow)?;
            if num % den != 0 {
                return Err("it is finer than a nanosecond".into());
            }
            part = part.checked_add(num / den).ok_or_else(overflow)?;
        }
        total = total.checked_add(part).ok_or_else(overflow)?;
        rest = after;
    }
    let secs = u64::try_from(total / 1_000_000_000).map_err(|_| "it is too long to represent")?;
    let nanos = u32::try_from(total % 1_000_000_000).map_err(|_| "it is too long to represent")?;
    Ok(Duration::new(secs, nanos))
}

#[cfg(test)]
mod tests {
    use super::{parse, HOW, UNITS, UNIT_LIST};
    use std::time::Duration;

    #[test]
    fn one_list_of_units() {
        let names: Vec<&str> = UNITS.iter().map(|(n, _)| *n).collect();
        assert_eq!(UNIT_LIST, names.join(", "));
        assert!(HOW.contains(&format!("({UNIT_LIST})")), "{HOW}");
        for (name, ns) in UNITS {
            let d = parse(&format!("1{name}")).unwrap();
            assert_eq!(d.as_nanos(), *ns, "{name}");
        }
        assert!(parse("1y").unwrap_err().contains("unknown unit `y`"));
    }

    /// The docs that list the units (the runtime's key table) list all of them, in order.
    #[test]
    fn the_docs_list_every_unit() {
        let listed = UNITS
            .iter()
            .map(|(n, _)| format!("`{n}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let lib = concat!(env!("CARGO_MANIFEST_DIR"), "/../retry-runtime/src/lib.rs");
        let text = std::fs::read_to_string(lib).expect("the workspace's runtime crate");
        let text = text.replace("\n//! ", " ");
        assert!(
            text.contains(&format!("(units {listed}:")),
            "{lib} must list {listed}"
        );
    }

    #[test]
    fn forms() {
        assert_eq!(parse("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse("2m"), Ok(Duration::from_secs(120)));
        assert_eq!(parse("7us"), Ok(Duration::from_micros(7)));
        assert_eq!(parse("0ms"), Ok(Duration::ZERO));
        assert_eq!(parse("1w"), Ok(Duration::from_secs(604_800)));
        assert!(parse("").is_err());
        assert!(parse("5").is_err());
        assert!(parse("-1s").is_err());
        assert!(parse("1.s").is_err());
        assert!(parse("0.1ns").is_err());
        assert!(parse("5 sec").is_err());
    }
}
