//! Attempt counts and the exact waits of every backoff kind, sync (on the virtual clock of
//! `testing::instant_sleeps`) and async (on tokio's paused clock).
use retry_runtime::{retry, testing, Report};
use std::cell::{Cell, RefCell};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct E(u32);

/// Counts an attempt and returns its number.
fn tick(calls: &Cell<u32>) -> u32 {
    calls.set(calls.get() + 1);
    calls.get()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Runs an always-failing sync function on the virtual clock: (attempts, waits).
fn sync_run(f: impl FnOnce(&Cell<u32>) -> Result<(), E>) -> (u32, Vec<Duration>) {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    let out = f(&calls);
    assert_eq!(
        out,
        Err(E(calls.get())),
        "the last attempt's error comes back"
    );
    (calls.get(), sleeps.delays())
}

/// The gaps between the recorded attempt starts.
fn gaps(starts: &RefCell<Vec<Instant>>) -> Vec<Duration> {
    starts.borrow().windows(2).map(|w| w[1] - w[0]).collect()
}

// ---------------------------------------------------------------- attempt counts

#[retry(max = 1, delay = "0ms")]
fn max_1(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 5, delay = "0ms")]
fn max_5(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(attempts = 1, delay = "0ms")]
fn attempts_1(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(attempts = 5, delay = "0ms")]
fn attempts_5(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(delay = "0ms")]
fn default_max(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn max_n_makes_n_plus_one_attempts() {
    assert_eq!(sync_run(max_1).0, 2);
    assert_eq!(sync_run(max_5).0, 6);
}

#[test]
fn attempts_n_makes_n_attempts() {
    let (n, waits) = sync_run(attempts_1);
    assert_eq!((n, waits.len()), (1, 0));
    let (n, waits) = sync_run(attempts_5);
    assert_eq!((n, waits.len()), (5, 4));
}

#[test]
fn default_is_three_retries() {
    assert_eq!(sync_run(default_max).0, 4);
}

#[retry(max = 5, delay = "0ms")]
fn succeeds_at(calls: &Cell<u32>, at: u32) -> Result<u32, E> {
    let n = tick(calls);
    if n < at {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn success_stops_the_attempts() {
    for at in 1..=6 {
        let calls = Cell::new(0);
        assert_eq!(succeeds_at(&calls, at), Ok(at));
        assert_eq!(calls.get(), at);
    }
    // One more than allowed: exhausted after 6.
    let calls = Cell::new(0);
    assert_eq!(succeeds_at(&calls, 7), Err(E(6)));
    assert_eq!(calls.get(), 6);
}

#[retry(max = "forever", backoff = "fixed", delay = "1ms")]
fn forever(calls: &Cell<u32>, ok_at: u32) -> Result<u32, E> {
    let n = tick(calls);
    if n < ok_at {
        Err(E(n))
    } else {
        Ok(n)
    }
}

thread_local!(static FOREVER_REPORT: RefCell<Option<Report<E>>> = const { RefCell::new(None) });

#[retry(
    max = "forever",
    backoff = "fixed",
    delay = "1ms",
    when = |e: &E| e.0 != 0,
    on_exhausted = |r: &Report<E>| FOREVER_REPORT.with(|s| *s.borrow_mut() = Some(r.clone())),
)]
fn forever_until_fatal(calls: &Cell<u32>, fatal_at: u32) -> Result<u32, E> {
    let n = tick(calls);
    if n == fatal_at {
        Err(E(0))
    } else {
        Err(E(n))
    }
}

#[test]
fn forever_stops_on_success() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(forever(&calls, 200), Ok(200));
    assert_eq!(calls.get(), 200);
    assert_eq!(sleeps.delays(), vec![ms(1); 199]);
}

#[test]
fn forever_stops_on_a_non_retryable_error() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(forever_until_fatal(&calls, 50), Err(E(0)));
    assert_eq!(calls.get(), 50);
    assert_eq!(sleeps.delays().len(), 49);
    let r = FOREVER_REPORT
        .with(RefCell::take)
        .expect("on_exhausted ran");
    assert_eq!(r.attempts, 50);
    assert_eq!(r.reason, retry_runtime::Reason::NotRetryable);
}

#[retry(max = "forever", backoff = "fixed", delay = "1ms")]
async fn forever_async(calls: &Cell<u32>, ok_at: u32) -> Result<u32, E> {
    let n = tick(calls);
    if n < ok_at {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn forever_async_stops_on_success() {
    let calls = Cell::new(0);
    let t0 = Instant::now();
    assert_eq!(forever_async(&calls, 100).await, Ok(100));
    assert_eq!(calls.get(), 100);
    assert_eq!(t0.elapsed(), ms(99));
}

// ---------------------------------------------------------------- sync delay sequences

#[retry(max = 4, backoff = "fixed", delay = "10ms")]
fn s_fixed(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 4, backoff = "linear", delay = "10ms")]
fn s_linear(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 5, backoff = "exp", delay = "10ms")]
fn s_exp(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 3)]
fn s_defaults(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 4, backoff = "exp", delay = "10ms", factor = 3)]
fn s_exp3(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 4, backoff = "exp", delay = "100ms", factor = 1.5)]
fn s_exp1_5(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 3, backoff = "fixed", delay = "100ms", max_delay = "30ms")]
fn s_fixed_capped(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 5, backoff = "linear", delay = "10ms", max_delay = "25ms")]
fn s_linear_capped(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 6, backoff = "exp", delay = "10ms", max_delay = "50ms")]
fn s_exp_capped(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 5, delay = "1s", factor = 1.5, max_delay = "3s")]
fn s_exp1_5_capped(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn sync_fixed() {
    assert_eq!(sync_run(s_fixed), (5, [10, 10, 10, 10].map(ms).to_vec()));
}

#[test]
fn sync_linear() {
    assert_eq!(sync_run(s_linear), (5, [10, 20, 30, 40].map(ms).to_vec()));
}

#[test]
fn sync_exp_default_factor() {
    assert_eq!(sync_run(s_exp), (6, [10, 20, 40, 80, 160].map(ms).to_vec()));
}

#[test]
fn sync_defaults_are_exp_2_from_100ms() {
    assert_eq!(sync_run(s_defaults), (4, [100, 200, 400].map(ms).to_vec()));
}

#[test]
fn sync_exp_factor_3() {
    assert_eq!(sync_run(s_exp3), (5, [10, 30, 90, 270].map(ms).to_vec()));
}

#[test]
fn sync_exp_factor_1_5() {
    let want = vec![ms(100), ms(150), ms(225), Duration::from_micros(337_500)];
    assert_eq!(sync_run(s_exp1_5), (5, want));
}

#[test]
fn sync_fixed_with_max_delay() {
    assert_eq!(sync_run(s_fixed_capped), (4, [30, 30, 30].map(ms).to_vec()));
}

#[test]
fn sync_linear_with_max_delay() {
    assert_eq!(
        sync_run(s_linear_capped),
        (6, [10, 20, 25, 25, 25].map(ms).to_vec())
    );
}

#[test]
fn sync_exp_with_max_delay() {
    assert_eq!(
        sync_run(s_exp_capped),
        (7, [10, 20, 40, 50, 50, 50].map(ms).to_vec())
    );
}

#[test]
fn sync_exp_1_5_with_max_delay() {
    assert_eq!(
        sync_run(s_exp1_5_capped),
        (6, [1000, 1500, 2250, 3000, 3000].map(ms).to_vec())
    );
}

#[test]
fn sync_virtual_clock_adds_up() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert!(s_linear(&calls).is_err());
    assert_eq!(sleeps.elapsed(), ms(100));
}

// ---------------------------------------------------------------- async delay sequences
//
// Each attempt records tokio's (paused) clock when it starts; the gaps are the waits.

#[retry(max = 4, backoff = "fixed", delay = "10ms")]
async fn a_fixed(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 4, backoff = "linear", delay = "10ms")]
async fn a_linear(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 5, backoff = "exp", delay = "10ms")]
async fn a_exp(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 3)]
async fn a_defaults(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 4, delay = "10ms", factor = 3)]
async fn a_exp3(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

// Whole milliseconds: tokio's timer ticks in milliseconds.
#[retry(max = 4, delay = "8ms", factor = 1.5)]
async fn a_exp1_5(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 3, backoff = "fixed", delay = "100ms", max_delay = "30ms")]
async fn a_fixed_capped(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 5, backoff = "linear", delay = "10ms", max_delay = "25ms")]
async fn a_linear_capped(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 6, backoff = "exp", delay = "10ms", max_delay = "50ms")]
async fn a_exp_capped(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[retry(max = 5, delay = "10ms", factor = 3, max_delay = "100ms")]
async fn a_exp3_capped(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

/// Runs an always-failing async function on the paused clock: the gaps between attempts.
async fn async_gaps<'a, F, Fut>(f: F, starts: &'a RefCell<Vec<Instant>>) -> Vec<Duration>
where
    F: FnOnce(&'a RefCell<Vec<Instant>>) -> Fut,
    Fut: std::future::Future<Output = Result<(), E>>,
{
    let t0 = Instant::now();
    assert_eq!(f(starts).await, Err(E(0)));
    let g = gaps(starts);
    assert_eq!(starts.borrow()[0], t0, "the first attempt starts at once");
    assert_eq!(
        t0.elapsed(),
        g.iter().sum::<Duration>(),
        "nothing waits after the last attempt"
    );
    g
}

#[tokio::test(start_paused = true)]
async fn async_fixed() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_fixed, &s).await, [10, 10, 10, 10].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_linear() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_linear, &s).await, [10, 20, 30, 40].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_exp_default_factor() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_exp, &s).await, [10, 20, 40, 80, 160].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_defaults_are_exp_2_from_100ms() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_defaults, &s).await, [100, 200, 400].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_exp_factor_3() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_exp3, &s).await, [10, 30, 90, 270].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_exp_factor_1_5() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_exp1_5, &s).await, [8, 12, 18, 27].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_fixed_with_max_delay() {
    let s = RefCell::default();
    assert_eq!(async_gaps(a_fixed_capped, &s).await, [30, 30, 30].map(ms));
}

#[tokio::test(start_paused = true)]
async fn async_linear_with_max_delay() {
    let s = RefCell::default();
    assert_eq!(
        async_gaps(a_linear_capped, &s).await,
        [10, 20, 25, 25, 25].map(ms)
    );
}

#[tokio::test(start_paused = true)]
async fn async_exp_with_max_delay() {
    let s = RefCell::default();
    assert_eq!(
        async_gaps(a_exp_capped, &s).await,
        [10, 20, 40, 50, 50, 50].map(ms)
    );
}

#[tokio::test(start_paused = true)]
async fn async_exp_3_with_max_delay() {
    let s = RefCell::default();
    assert_eq!(
        async_gaps(a_exp3_capped, &s).await,
        [10, 30, 90, 100, 100].map(ms)
    );
}

// ---------------------------------------------------------------- jitter

const JITTER_CALLS: u32 = 300;

#[retry(max = 5, delay = "10ms", max_delay = "100ms", jitter = "full")]
fn j_full() -> Result<(), E> {
    Err(E(0))
}

#[retry(max = 5, delay = "10ms", max_delay = "100ms", jitter = "equal")]
fn j_equal() -> Result<(), E> {
    Err(E(0))
}

#[retry(max = 5, delay = "10ms", max_delay = "100ms", jitter = "decorrelated")]
fn j_decorrelated() -> Result<(), E> {
    Err(E(0))
}

/// The waits of each of many calls.
fn jitter_runs(f: fn() -> Result<(), E>) -> Vec<Vec<Duration>> {
    let sleeps = testing::instant_sleeps();
    (0..JITTER_CALLS)
        .map(|_| {
            sleeps.clear();
            assert_eq!(f(), Err(E(0)));
            sleeps.delays()
        })
        .collect()
}

/// The computed (unjittered) waits of the jitter functions.
const BASE: [u64; 5] = [10, 20, 40, 80, 100];

#[test]
fn jitter_full_is_within_zero_and_the_computed_wait() {
    let runs = jitter_runs(j_full);
    for waits in &runs {
        assert_eq!(waits.len(), 5);
        for (w, base) in waits.iter().zip(BASE.map(ms)) {
            assert!(*w <= base, "{w:?} > {base:?}");
        }
    }
    let all: Vec<_> = runs.iter().flatten().collect();
    assert!(
        all.iter().any(|w| **w < ms(5)),
        "full jitter never went low"
    );
    assert!(
        runs.iter().any(|r| r[..] != BASE.map(ms)),
        "full jitter never changed a wait"
    );
}

#[test]
fn jitter_equal_is_within_half_and_the_computed_wait() {
    let runs = jitter_runs(j_equal);
    for waits in &runs {
        assert_eq!(waits.len(), 5);
        for (w, base) in waits.iter().zip(BASE.map(ms)) {
            assert!(*w >= base / 2 && *w <= base, "{w:?} vs {base:?}");
        }
    }
    assert!(
        runs.iter().any(|r| r[..] != BASE.map(ms)),
        "equal jitter never changed a wait"
    );
}

#[test]
fn jitter_decorrelated_is_within_delay_and_three_times_the_previous() {
    let runs = jitter_runs(j_decorrelated);
    for waits in &runs {
        assert_eq!(waits.len(), 5);
        let mut prev = ms(10);
        for w in waits {
            assert!(*w >= ms(10), "{w:?} below the first wait");
            assert!(*w <= ms(100), "{w:?} above max_delay");
            assert!(*w <= prev * 3, "{w:?} above 3 x {prev:?}");
            prev = *w;
        }
    }
    assert!(
        runs.iter().flatten().any(|w| *w > ms(30)),
        "decorrelated jitter never grew"
    );
}

#[retry(max = 5, delay = "10ms", max_delay = "100ms", jitter = "full")]
async fn a_full(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[tokio::test(start_paused = true)]
async fn async_jitter_full_is_within_bounds() {
    for _ in 0..50 {
        let s = RefCell::default();
        assert_eq!(a_full(&s).await, Err(E(0)));
        let g = gaps(&s);
        assert_eq!(g.len(), 5);
        for (w, base) in g.iter().zip(BASE.map(ms)) {
            // tokio's timer rounds a wait up to the next millisecond.
            assert!(*w <= base, "{w:?} > {base:?}");
        }
    }
}

// ---------------------------------------------------------------- delay expressions, zero

#[retry(max = 3, backoff = "linear", delay = Duration::from_millis(step_ms))]
fn delay_from_arg(step_ms: u64, calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn delay_expression_uses_the_argument() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(delay_from_arg(7, &calls), Err(E(4)));
    assert_eq!(sleeps.delays(), [7, 14, 21].map(ms));
    sleeps.clear();
    let calls = Cell::new(0);
    assert_eq!(delay_from_arg(50, &calls), Err(E(4)));
    assert_eq!(sleeps.delays(), [50, 100, 150].map(ms));
}

#[retry(max = 3, backoff = "fixed", delay = Duration::from_millis(step_ms))]
async fn delay_from_arg_async(step_ms: u64, starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[tokio::test(start_paused = true)]
async fn async_delay_expression_uses_the_argument() {
    let s = RefCell::default();
    assert_eq!(delay_from_arg_async(12, &s).await, Err(E(0)));
    assert_eq!(gaps(&s), [12, 12, 12].map(ms));
}

#[retry(max = 3, delay = "0ms")]
fn zero(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[retry(max = 3, backoff = "linear", delay = "0ms")]
async fn zero_async(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[test]
fn zero_delay_sync() {
    assert_eq!(sync_run(zero), (4, vec![Duration::ZERO; 3]));
}

#[tokio::test(start_paused = true)]
async fn zero_delay_async_takes_no_time() {
    let s = RefCell::default();
    let t0 = Instant::now();
    assert_eq!(zero_async(&s).await, Err(E(0)));
    assert_eq!(s.borrow().len(), 4);
    assert_eq!(gaps(&s), [Duration::ZERO; 3]);
    assert_eq!(t0.elapsed(), Duration::ZERO);
}

// ---------------------------------------------------------------- delay_from: the wait an error asks for is not capped by max_delay

#[retry(
    max = 1,
    delay = "10ms",
    max_delay = "2s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    on_retry = |_n, _e: &E, d| waits.borrow_mut().push(d),
)]
fn hinted_120s(calls: &Cell<u32>, waits: &RefCell<Vec<Duration>>) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn delay_from_is_not_capped_by_max_delay_sync() {
    let sleeps = testing::instant_sleeps();
    let (calls, waits) = (Cell::new(0), RefCell::default());
    assert_eq!(hinted_120s(&calls, &waits), Ok(2));
    assert_eq!(sleeps.delays(), [secs(120)], "the wait the error asked for");
    assert_eq!(waits.into_inner(), [secs(120)], "on_retry's delay argument");
}

#[retry(
    max = 1,
    delay = "10ms",
    max_delay = "2s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    on_retry = |_n, _e: &E, d| waits.borrow_mut().push(d),
)]
async fn hinted_120s_async(
    starts: &RefCell<Vec<Instant>>,
    waits: &RefCell<Vec<Duration>>,
) -> Result<usize, E> {
    starts.borrow_mut().push(Instant::now());
    let n = starts.borrow().len();
    if n == 1 {
        Err(E(1))
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn delay_from_is_not_capped_by_max_delay_async() {
    let (starts, waits) = (RefCell::default(), RefCell::default());
    assert_eq!(hinted_120s_async(&starts, &waits).await, Ok(2));
    let starts = starts.into_inner();
    assert_eq!(starts[1] - starts[0], secs(120), "on the paused clock");
    assert_eq!(waits.into_inner(), [secs(120)], "on_retry's delay argument");
}

#[retry(max = 2, backoff = "fixed", delay = "10s", max_delay = "2s", delay_from = |_: &E| None)]
fn computed_capped(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn computed_waits_are_still_capped_by_max_delay() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(computed_capped(&calls), Err(E(3)));
    assert_eq!(sleeps.delays(), [secs(2), secs(2)]);
}

// ---------------------------------------------------------------- max = "forever" has a default cap on each wait

#[retry(max = "forever", backoff = "exp", delay = "1s")]
fn forever_exp(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n <= 30 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[retry(max = "forever", backoff = "exp", delay = "1s", max_delay = "5m")]
fn forever_exp_capped_5m(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n <= 30 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn forever_without_max_delay_waits_at_most_60s() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(forever_exp(&calls), Ok(31));
    let waits = sleeps.delays();
    assert_eq!(waits.len(), 30);
    let longest = waits.iter().max().copied().unwrap();
    assert!(longest <= secs(60), "a wait of {longest:?}");
}

#[test]
fn forever_with_explicit_max_delay_waits_up_to_it() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(forever_exp_capped_5m(&calls), Ok(31));
    let waits = sleeps.delays();
    assert_eq!(waits.len(), 30);
    assert_eq!(waits.iter().max().copied(), Some(secs(300)));
}
