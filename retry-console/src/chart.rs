//! The overview's chart, drawn on the server as SVG: calls that succeeded (above the line)
//! and failed (below it) in each minute of the last hour.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use maud::{html, Markup};
use retry_runtime::durable::MinuteCount;

/// Minutes shown.
pub(crate) const MINUTES: usize = 60;

const WIDTH: u64 = 600;
const HEIGHT: u64 = 120;
const BAR: u64 = WIDTH / MINUTES as u64;

/// The succeeded and failed counts of each of the last [`MINUTES`] minutes before `now`
/// (oldest first), summed over `counts`.
pub(crate) fn buckets(counts: &[MinuteCount], now: SystemTime) -> Vec<(u64, u64)> {
    let minute_of = |t: SystemTime| {
        t.duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs()
            / 60
    };
    let last = minute_of(now);
    let first = last + 1 - MINUTES as u64;
    let mut out = vec![(0, 0); MINUTES];
    for c in counts {
        let m = minute_of(c.minute);
        if (first..=last).contains(&m) {
            let slot = &mut out[usize::try_from(m - first).unwrap_or(0)];
            slot.0 += c.succeeded;
            slot.1 += c.failed;
        }
    }
    out
}

/// The chart of `buckets` (from [`buckets`]).
pub(crate) fn chart(buckets: &[(u64, u64)], label: &str) -> Markup {
    let top = buckets
        .iter()
        .map(|b| b.0.max(b.1))
        .max()
        .unwrap_or(0)
        .max(1);
    let half = HEIGHT / 2;
    let scale = |n: u64| (n * (half - 2)).div_ceil(top);
    let succeeded: u64 = buckets.iter().map(|b| b.0).sum();
    let failed: u64 = buckets.iter().map(|b| b.1).sum();
    html! {
        figure.chart {
            svg xmlns="http://www.w3.org/2000/svg" viewBox={ "0 0 " (WIDTH) " " (HEIGHT) }
                role="img" aria-label=(label) {
                title { (label) ": " (succeeded) " succeeded, " (failed) " failed" }
                line.axis x1="0" y1=(half) x2=(WIDTH) y2=(half) {}
                @for (i, (ok, bad)) in buckets.iter().enumerate() {
                    @let x = i as u64 * BAR;
                    @if *ok > 0 {
                        rect.ok x=(x) y=(half - scale(*ok)) width=(BAR - 1) height=(scale(*ok)) {
                            title { (ok) " succeeded" }
                        }
                    }
                    @if *bad > 0 {
                        rect.failed x=(x) y=(half) width=(BAR - 1) height=(scale(*bad)) {
                            title { (bad) " failed" }
                        }
                    }
                }
            }
            figcaption {
                span.ok { (succeeded) " succeeded" } " · "
                span.failed { (failed) " failed" }
                " in the last hour, by minute (peak " (top) "/min)"
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{buckets, chart, MINUTES};
    use retry_runtime::durable::MinuteCount;
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn counts_land_in_their_minute_and_old_ones_are_left_out() {
        let now = UNIX_EPOCH + Duration::from_secs(100 * 60 + 30);
        let at = |m: u64, ok: u64, bad: u64| MinuteCount {
            function: "f".into(),
            minute: UNIX_EPOCH + Duration::from_secs(m * 60),
            succeeded: ok,
            failed: bad,
        };
        let b = buckets(
            &[at(100, 3, 1), at(100, 2, 0), at(41, 7, 7), at(40, 9, 9)],
            now,
        );
        assert_eq!(b.len(), MINUTES);
        assert_eq!(b[MINUTES - 1], (5, 1));
        assert_eq!(b[0], (7, 7));
        let svg = chart(&b, "all").into_string();
        assert!(svg.contains("12 succeeded"), "{svg}");
        assert_eq!(svg.matches("<rect").count(), 4, "{svg}");
    }
}
