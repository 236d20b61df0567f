//! The retry policy: a plain value that says how many attempts, how long to wait between
//! them and how long the whole call may take.

use core::time::Duration;

/// How the wait between attempts grows.
///
/// With a first wait `d`: `Fixed` waits `d, d, d, …`; `Linear` waits `d, 2d, 3d, …`;
/// `Exponential` waits `d, d·f, d·f², …`.
///
/// ```
/// use retry_runtime::{Backoff, Policy};
/// use std::time::Duration;
///
/// let p = Policy::new().backoff(Backoff::Linear).delay(Duration::from_millis(10));
/// assert_eq!(p.base_delay(3), Duration::from_millis(30));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Backoff {
    /// The same wait every time.
    Fixed,
    /// The n-th wait is `n` times the first.
    Linear,
    /// The n-th wait is the first times `factor^(n-1)`.
    Exponential {
        /// The multiplier, greater than 1.
        factor: f64,
    },
}

/// Randomisation of each wait, as defined in the AWS Architecture Blog's
/// "Exponential Backoff And Jitter".
///
/// With `w` the computed (and capped) wait: `Full` waits a uniform value in `[0, w]`; `Equal`
/// waits `w/2` plus a uniform value in `[0, w/2]`; `Decorrelated` waits a uniform value in
/// `[d, 3·previous]` (capped), where `d` is the first wait, ignoring the backoff kind.
///
/// ```
/// use retry_runtime::{Jitter, Policy};
/// use std::time::Duration;
///
/// let p = Policy::new().jitter(Jitter::Full).delay(Duration::from_millis(100));
/// let wait = p.jittered(p.base_delay(1), Duration::ZERO);
/// assert!(wait <= Duration::from_millis(100));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Jitter {
    /// The wait is the computed one.
    None,
    /// Uniform in `[0, w]`.
    Full,
    /// `w/2` plus uniform in `[0, w/2]`.
    Equal,
    /// Uniform in `[first wait, 3 × previous wait]`, capped.
    Decorrelated,
}

/// Everything `#[retry(...)]` says about attempts and waits, as one plain, copyable value.
///
/// The attribute builds one at compile time (or at the call when a duration is an
/// expression); a worker that loads a call from a store can rebuild it from its fields.
///
/// ```
/// use retry_runtime::{Backoff, Policy};
/// use std::time::Duration;
///
/// const P: Policy = Policy::new()
///     .max_retries(Some(4))
///     .backoff(Backoff::Exponential { factor: 2.0 })
///     .delay(Duration::from_millis(100))
///     .max_delay(Some(Duration::from_millis(500)));
/// let waits: Vec<_> = (1..=4).map(|n| P.base_delay(n)).collect();
/// assert_eq!(waits, [100, 200, 400, 500].map(Duration::from_millis));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Policy {
    /// Retries after the first attempt; `None` retries until success, a non-retryable error
    /// or the budget.
    pub max_retries: Option<u32>,
    /// How the wait grows.
    pub backoff: Backoff,
    /// The first wait.
    pub delay: Duration,
    /// A cap on any single computed wait; `None` caps at [`DEFAULT_MAX_DELAY`] (or at the
    /// first wait, when that is longer). A wait the error asks for (`delay_from`) is not capped.
    pub max_delay: Option<Duration>,
    /// Randomisation of each wait.
    pub jitter: Jitter,
    /// No attempt starts after this much time has passed since the call began.
    pub budget: Option<Duration>,
    /// A limit on each attempt (async functions only).
    pub timeout: Option<Duration>,
    /// A limit on the retries of all the function's calls together, as a share of its calls.
    pub throttle: Option<Throttle>,
}

impl Default for Policy {
    fn default() -> Self {
        Self::new()
    }
}

impl Policy {
    /// The defaults of `#[retry]`: 3 retries, exponential backoff by 2 from 100 ms, waits
    /// capped at [`DEFAULT_MAX_DELAY`], no jitter, no budget, no timeout.
    ///
    /// The attribute starts from this value and sets only the keys it was given, so the
    /// defaults live here and nowhere else.
    #[must_use]
    pub const fn new() -> Self {
        Self {
            max_retries: Some(3),
            backoff: Backoff::Exponential { factor: 2.0 },
            delay: Duration::from_millis(100),
            max_delay: None,
            jitter: Jitter::None,
            budget: None,
            timeout: None,
            throttle: None,
        }
    }

    /// Sets [`Policy::max_retries`].
    #[must_use]
    pub const fn max_retries(mut self, max: Option<u32>) -> Self {
        self.max_retries = max;
        self
    }

    /// Sets [`Policy::backoff`].
    #[must_use]
    pub const fn backoff(mut self, backoff: Backoff) -> Self {
        self.backoff = backoff;
        self
    }

    /// Sets [`Policy::delay`].
    #[must_use]
    pub const fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Sets [`Policy::max_delay`].
    #[must_use]
    pub const fn max_delay(mut self, cap: Option<Duration>) -> Self {
        self.max_delay = cap;
        self
    }

    /// Sets [`Policy::jitter`].
    #[must_use]
    pub const fn jitter(mut self, jitter: Jitter) -> Self {
        self.jitter = jitter;
        self
    }

    /// Sets [`Policy::budget`].
    #[must_use]
    pub const fn budget(mut self, budget: Option<Duration>) -> Self {
        self.budget = budget;
        self
    }

    /// Sets [`Policy::timeout`].
    #[must_use]
    pub const fn timeout(mut self, timeout: Option<Duration>) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`Policy::throttle`].
    ///
    /// ```
    /// use retry_runtime::{Policy, Throttle};
    /// const P: Policy = Policy::new().throttle(Some(Throttle::percent(20)));
    /// assert_eq!(P.throttle.map(Throttle::as_percent), Some(20));
    /// ```
    #[must_use]
    pub const fn throttle(mut self, throttle: Option<Throttle>) -> Self {
        self.throttle = throttle;
        self
    }

    /// The total number of attempts this policy allows, `None` for no limit.
    ///
    /// ```
    /// assert_eq!(retry_runtime::Policy::new().max_attempts(), Some(4));
    /// ```
    #[must_use]
    #[inline]
    pub const fn max_attempts(&self) -> Option<u32> {
        match self.max_retries {
            Some(n) => Some(n.saturating_add(1)),
            None => None,
        }
    }

    /// The wait before retry `n` (1 for the wait after the first attempt), before jitter and
    /// capped by `max_delay`. Reads no clock and draws no random number.
    #[must_use]
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn base_delay(&self, n: u32) -> Duration {
        let n = n.max(1);
        let d = self.delay;
        let raw = match self.backoff {
            Backoff::Fixed => d,
            Backoff::Linear => d.saturating_mul(n),
            Backoff::Exponential { factor } => exp_delay(d, factor, n - 1),
        };
        self.cap(raw)
    }

    /// Applies the jitter to a computed wait `w`; `previous` is the wait before it (used by
    /// decorrelated jitter). Draws a random number only when jitter is on.
    #[must_use]
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn jittered(&self, w: Duration, previous: Duration) -> Duration {
        match self.jitter {
            Jitter::None => w,
            Jitter::Full => uniform(Duration::ZERO, w),
            Jitter::Equal => {
                let half = w / 2;
                half + uniform(Duration::ZERO, w.saturating_sub(half))
            }
            Jitter::Decorrelated => {
                let low = self.delay;
                let high = previous.max(low).saturating_mul(3);
                self.cap(uniform(low, high))
            }
        }
    }

    /// Caps a computed wait at `max_delay`, or, without one, at [`DEFAULT_MAX_DELAY`] (or at
    /// the first wait, when that is longer).
    ///
    /// ```
    /// use retry_runtime::{Policy, DEFAULT_MAX_DELAY};
    /// use std::time::Duration;
    ///
    /// let forever = Policy::new().max_retries(None).delay(Duration::from_secs(1));
    /// assert_eq!(forever.base_delay(40), DEFAULT_MAX_DELAY);
    /// let wide = forever.max_delay(Some(Duration::from_secs(600)));
    /// assert_eq!(wide.base_delay(40), Duration::from_secs(600));
    /// ```
    #[must_use]
    #[cfg_attr(not(debug_assertions), inline(always))]
    #[cfg_attr(debug_assertions, inline)]
    #[allow(clippy::inline_always)]
    pub fn cap(&self, w: Duration) -> Duration {
        let cap = match self.max_delay {
            Some(cap) => cap,
            None if self.delay > DEFAULT_MAX_DELAY => self.delay,
            None => DEFAULT_MAX_DELAY,
        };
        w.min(cap)
    }
}

/// `d · factor^k`, rounded to the nanosecond, saturating at `u64::MAX` nanoseconds.
#[cfg_attr(not(debug_assertions), inline(always))]
#[cfg_attr(debug_assertions, inline)]
#[allow(clippy::inline_always)]
fn exp_delay(d: Duration, factor: f64, k: u32) -> Duration {
    if k == 0 {
        return d;
    }
    // Whole factors (the common 2) stay exact in integers.
    #[allow(
        clippy::float_cmp,
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss
    )]
    if factor.fract() == 0.0 && factor >= 1.0 && factor <= f64::from(u32::MAX) {
        let f = factor as u32;
        return match f.checked_pow(k) {
            Some(m) => d.checked_mul(m).unwrap_or(MAX_WAIT),
            None => MAX_WAIT,
        };
    }
    let k = i32::try_from(k).unwrap_or(i32::MAX);
    #[allow(clippy::cast_precision_loss)]
    let nanos = d.as_nanos() as f64 * factor.powi(k);
    #[allow(
        clippy::cast_possible_truncation,
        clippy::cast_sign_loss,
        clippy::cast_precision_loss
    )]
    if nanos.is_finite() && nanos < MAX_WAIT.as_nanos() as f64 {
        Duration::from_nanos(nanos.round() as u64)
    } else {
        MAX_WAIT
    }
}

/// Retry throttling (`throttle = "20%"`): the retries of all of a function's calls together
/// may add at most this share to its calls, over a sliding window of [`Throttle::WINDOW`],
/// plus a floor of [`Throttle::FLOOR`] retries per window so that a function with little
/// traffic can still retry. A retry it refuses ends the call with
/// [`Reason::Throttled`](crate::Reason::Throttled).
///
/// This is the retry budget of Finagle and the retry throttling of gRPC: when a dependency
/// is down, every call fails, and without a limit each call would multiply the load on it by
/// its attempts; with `throttle = "20%"` the load stays within 1.2 times the traffic.
///
/// ```
/// use retry_runtime::Throttle;
///
/// let t = Throttle::percent(20);
/// // 1,000 calls in the window allow 200 retries, plus the floor.
/// assert!(t.allows(1_000, 209));
/// assert!(!t.allows(1_000, 210));
/// // A quiet function still retries.
/// assert!(t.allows(0, u64::from(Throttle::FLOOR) - 1));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Throttle {
    percent: u32,
}

impl Throttle {
    /// The sliding window the calls and retries are counted over.
    pub const WINDOW: Duration = Duration::from_secs(10);

    /// Retries allowed in any window, whatever the traffic.
    pub const FLOOR: u32 = 10;

    /// Retries may add `percent` percent to the calls (`#[retry]` accepts 1 to 100).
    #[must_use]
    pub const fn percent(percent: u32) -> Self {
        Self { percent }
    }

    /// The share, in percent.
    #[must_use]
    pub const fn as_percent(self) -> u32 {
        self.percent
    }

    /// Whether one more retry is allowed after `calls` calls and `retries` retries in the
    /// window.
    #[must_use]
    pub const fn allows(self, calls: u64, retries: u64) -> bool {
        let share = calls.saturating_mul(self.percent as u64) / 100;
        retries < share.saturating_add(Self::FLOOR as u64)
    }
}

/// The cap on a single computed wait when the policy sets no `max_delay`: one minute, so
/// that `max = "forever"` with exponential backoff settles at a wait a minute long instead of
/// growing to hours and days.
pub const DEFAULT_MAX_DELAY: Duration = Duration::from_secs(60);

/// The longest wait a policy computes: `u64::MAX` nanoseconds, about 584 years.
const MAX_WAIT: Duration = Duration::from_nanos(u64::MAX);

fn uniform(low: Duration, high: Duration) -> Duration {
    if high <= low {
        return low;
    }
    let lo = u64::try_from(low.as_nanos()).unwrap_or(u64::MAX);
    let hi = u64::try_from(high.as_nanos()).unwrap_or(u64::MAX);
    Duration::from_nanos(fastrand::u64(lo..=hi))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn exponential_doubles_and_caps() {
        let p = Policy::new().delay(ms(100)).max_delay(Some(ms(1000)));
        let v: Vec<_> = (1..=6).map(|n| p.base_delay(n)).collect();
        assert_eq!(v, [100, 200, 400, 800, 1000, 1000].map(ms));
    }

    #[test]
    fn fractional_factor_rounds_to_the_nanosecond() {
        let p = Policy::new()
            .delay(ms(100))
            .backoff(Backoff::Exponential { factor: 1.5 });
        assert_eq!(p.base_delay(3), ms(225));
    }

    #[test]
    fn huge_exponents_saturate() {
        let p = Policy::new().delay(ms(100)).max_delay(Some(MAX_WAIT));
        assert_eq!(p.base_delay(200), MAX_WAIT);
        let p = p.backoff(Backoff::Exponential { factor: 1.5 });
        assert_eq!(p.base_delay(5000), MAX_WAIT);
    }

    #[test]
    fn fixed_and_linear() {
        let p = Policy::new().delay(ms(7)).backoff(Backoff::Fixed);
        assert_eq!(p.base_delay(9), ms(7));
        let p = p.backoff(Backoff::Linear).max_delay(Some(ms(20)));
        assert_eq!([1, 2, 3].map(|n| p.base_delay(n)), [7, 14, 20].map(ms));
    }

    #[test]
    fn jitter_stays_in_bounds() {
        for jitter in [Jitter::Full, Jitter::Equal, Jitter::Decorrelated] {
            let p = Policy::new()
                .delay(ms(10))
                .jitter(jitter)
                .max_delay(Some(ms(50)));
            let mut prev = Duration::ZERO;
            for n in 1..200 {
                let w = p.base_delay(n);
                let j = p.jittered(w, prev);
                match jitter {
                    Jitter::Full => assert!(j <= w),
                    Jitter::Equal => assert!(j >= w / 2 && j <= w),
                    Jitter::Decorrelated => {
                        assert!(j >= ms(10) && j <= ms(50) && j <= prev.max(ms(10)) * 3);
                    }
                    Jitter::None => unreachable!(),
                }
                prev = j;
            }
        }
    }
}
