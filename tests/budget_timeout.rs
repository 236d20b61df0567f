//! `budget` (no attempt starts once it is spent; the last wait shrinks to fit) and `timeout`
//! (a slow async attempt fails with the error converted from `TimedOut` and is retried).
use retry_runtime::testing::{self, InstantSleeps};
use retry_runtime::{retry, Reason, Report, TimedOut};
use std::cell::{Cell, RefCell};
use std::io;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
struct E(u32);

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

type Reports<E> = RefCell<Vec<Report<E>>>;

fn only<E: Clone>(reports: &Reports<E>) -> Report<E> {
    let r = reports.borrow();
    assert_eq!(r.len(), 1, "exactly one report");
    r[0].clone()
}

// ---------------------------------------------------------------- budget, sync
//
// The sync clock is the real clock moved forward by the virtual waits and `advance`, so a
// wait shortened to fit the budget is short by the few real microseconds the test took:
// such a wait is checked against a bound of a whole second around its exact value.

#[retry(
    max = "forever",
    backoff = "fixed",
    delay = "3s",
    budget = "9s",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn works_2s(sleeps: &InstantSleeps, calls: &Cell<u32>, reports: &Reports<E>) -> Result<(), E> {
    sleeps.advance(secs(2));
    Err(E(tick(calls)))
}

#[test]
fn sync_budget_stops_starting_attempts() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    // Attempts run over [0, 2], [5, 7], [9, 11]: a 3 s wait, then the 2 s left of the budget.
    assert_eq!(works_2s(&sleeps, &calls, &reports), Err(E(3)));
    assert_eq!(calls.get(), 3);
    let d = sleeps.delays();
    assert_eq!(d.len(), 2);
    assert_eq!(d[0], secs(3));
    assert!(d[1] <= secs(2) && d[1] > secs(1), "shortened to fit: {d:?}");
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (3, Reason::BudgetSpent));
    assert_eq!(r.last_error, Some(E(3)));
    assert!(
        r.elapsed >= secs(11) && r.elapsed < secs(12),
        "{:?}",
        r.elapsed
    );
}

#[retry(
    max = "forever",
    delay = "100ms",
    budget = "1s",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn instant_failures(calls: &Cell<u32>, reports: &Reports<E>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn sync_budget_shortens_the_last_wait() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    // Waits 100, 200, 400, then the 300 left instead of 800.
    assert_eq!(instant_failures(&calls, &reports), Err(E(5)));
    let d = sleeps.delays();
    assert_eq!(d[..3], [ms(100), ms(200), ms(400)]);
    assert_eq!(d.len(), 4, "{d:?}");
    assert!(d[3] <= ms(300) && d[3] > ms(200), "shortened to fit: {d:?}");
    assert!(sleeps.elapsed() <= secs(1));
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (5, Reason::BudgetSpent));
}

#[retry(
    max = 2,
    backoff = "fixed",
    delay = "1s",
    budget = "1h",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn max_before_budget(calls: &Cell<u32>, reports: &Reports<E>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn sync_max_reached_before_the_budget_is_exhausted() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(max_before_budget(&calls, &reports), Err(E(3)));
    assert_eq!(sleeps.delays(), [secs(1), secs(1)]);
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (3, Reason::Exhausted));
}

#[retry(
    max = 5,
    delay = "10ms",
    budget = "5s",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn overlong_attempt(sleeps: &InstantSleeps, reports: &Reports<E>) -> Result<(), E> {
    sleeps.advance(secs(6));
    Err(E(0))
}

#[test]
fn sync_first_attempt_spends_the_whole_budget() {
    let sleeps = testing::instant_sleeps();
    let reports = Reports::default();
    assert_eq!(overlong_attempt(&sleeps, &reports), Err(E(0)));
    assert!(sleeps.delays().is_empty());
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (1, Reason::BudgetSpent));
}

// ---------------------------------------------------------------- budget, async (exact)

#[retry(
    max = "forever",
    backoff = "fixed",
    delay = "3s",
    budget = "9s",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn sleeps_2s(starts: &RefCell<Vec<Instant>>, reports: &Reports<E>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    tokio::time::sleep(secs(2)).await;
    Err(E(u32::try_from(starts.borrow().len()).unwrap()))
}

#[retry(
    max = "forever",
    backoff = "fixed",
    delay = "3s",
    budget = "9s",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn advances_2s(starts: &RefCell<Vec<Instant>>, reports: &Reports<E>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    tokio::time::advance(secs(2)).await;
    Err(E(u32::try_from(starts.borrow().len()).unwrap()))
}

fn offsets(t0: Instant, starts: &RefCell<Vec<Instant>>) -> Vec<Duration> {
    starts.borrow().iter().map(|s| *s - t0).collect()
}

#[tokio::test(start_paused = true)]
async fn async_budget_with_sleeping_attempts() {
    let (starts, reports) = (RefCell::default(), Reports::default());
    let t0 = Instant::now();
    assert_eq!(sleeps_2s(&starts, &reports).await, Err(E(3)));
    // [0, 2], wait 3, [5, 7], wait 2 (shortened from 3), [9, 11], then no more.
    assert_eq!(offsets(t0, &starts), [secs(0), secs(5), secs(9)]);
    assert_eq!(t0.elapsed(), secs(11));
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (3, Reason::BudgetSpent));
    assert_eq!(r.elapsed, secs(11));
}

#[tokio::test(start_paused = true)]
async fn async_budget_with_advancing_attempts() {
    let (starts, reports) = (RefCell::default(), Reports::default());
    let t0 = Instant::now();
    assert_eq!(advances_2s(&starts, &reports).await, Err(E(3)));
    assert_eq!(offsets(t0, &starts), [secs(0), secs(5), secs(9)]);
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (3, Reason::BudgetSpent));
    assert_eq!(r.elapsed, secs(11));
}

#[retry(
    max = "forever",
    delay = "100ms",
    budget = "1s",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn instant_failures_async(
    starts: &RefCell<Vec<Instant>>,
    reports: &Reports<E>,
) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E(0))
}

#[tokio::test(start_paused = true)]
async fn async_budget_shortens_the_last_wait_exactly() {
    let (starts, reports) = (RefCell::default(), Reports::default());
    let t0 = Instant::now();
    assert_eq!(instant_failures_async(&starts, &reports).await, Err(E(0)));
    // Waits 100, 200, 400, then 300 (not 800): the last attempt starts at the budget.
    assert_eq!(
        offsets(t0, &starts),
        [0, 100, 300, 700, 1000].map(ms).to_vec()
    );
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (5, Reason::BudgetSpent));
    assert_eq!(r.elapsed, secs(1));
}

// ---------------------------------------------------------------- timeout

#[retry(
    max = 2,
    backoff = "fixed",
    delay = "1s",
    timeout = "100ms",
    on_exhausted = |r: &Report<io::Error>| reports.borrow_mut().push((r.attempts, r.reason, r.elapsed)),
)]
async fn slow_io(
    calls: &Cell<u32>,
    slow_until: u32,
    starts: &RefCell<Vec<Instant>>,
    reports: &RefCell<Vec<(u32, Reason, Duration)>>,
) -> io::Result<u32> {
    starts.borrow_mut().push(Instant::now());
    let n = tick(calls);
    if n <= slow_until {
        tokio::time::sleep(secs(1)).await;
    } else {
        tokio::time::sleep(ms(99)).await;
    }
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn timeout_fails_a_slow_attempt_which_is_retried() {
    let (calls, starts, reports) = (Cell::new(0), RefCell::default(), RefCell::default());
    let t0 = Instant::now();
    assert_eq!(slow_io(&calls, 2, &starts, &reports).await.unwrap(), 3);
    assert_eq!(calls.get(), 3);
    // Two attempts cut at 100 ms, each followed by a 1 s wait.
    assert_eq!(offsets(t0, &starts), [0, 1100, 2200].map(ms).to_vec());
    assert_eq!(t0.elapsed(), ms(2299));
    assert!(reports.borrow().is_empty());
}

#[tokio::test(start_paused = true)]
async fn exhaustion_by_timeouts_is_timed_out_io() {
    let (calls, starts, reports) = (Cell::new(0), RefCell::default(), RefCell::default());
    let t0 = Instant::now();
    let err = slow_io(&calls, u32::MAX, &starts, &reports)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    assert_eq!(calls.get(), 3);
    assert_eq!(t0.elapsed(), ms(2300));
    // A report hook reads the report, so the clock is read at the call's start and the
    // elapsed time includes the first attempt.
    assert_eq!(
        reports.into_inner(),
        [(3, Reason::TimedOut, ms(2300))],
        "attempts, reason, elapsed"
    );
}

#[derive(Debug, Clone, PartialEq)]
enum ApiError {
    Timeout,
    Down(u32),
}

impl From<TimedOut> for ApiError {
    fn from(_: TimedOut) -> Self {
        ApiError::Timeout
    }
}

#[retry(
    max = 3,
    backoff = "fixed",
    delay = "10ms",
    timeout = "50ms",
    on_retry = |n, e: &ApiError, _| seen.borrow_mut().push((n, e.clone())),
    on_exhausted = |r: &Report<ApiError>| reports.borrow_mut().push(r.clone()),
)]
async fn api(
    slow: &[bool],
    seen: &RefCell<Vec<(u32, ApiError)>>,
    reports: &Reports<ApiError>,
) -> Result<(), ApiError> {
    let n = u32::try_from(seen.borrow().len()).unwrap() + 1;
    if slow[usize::try_from(n - 1).unwrap()] {
        tokio::time::sleep(secs(60)).await;
    }
    Err(ApiError::Down(n))
}

#[tokio::test(start_paused = true)]
async fn exhaustion_by_timeouts_custom_error() {
    let (seen, reports) = (RefCell::default(), Reports::default());
    let t0 = Instant::now();
    assert_eq!(
        api(&[true; 4], &seen, &reports).await,
        Err(ApiError::Timeout)
    );
    assert_eq!(t0.elapsed(), ms(4 * 50 + 3 * 10));
    assert_eq!(
        seen.into_inner(),
        [
            (1, ApiError::Timeout),
            (2, ApiError::Timeout),
            (3, ApiError::Timeout)
        ]
    );
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (4, Reason::TimedOut));
    assert_eq!(r.last_error, Some(ApiError::Timeout));
}

#[tokio::test(start_paused = true)]
async fn last_attempt_decides_timed_out_or_exhausted() {
    // Timed out first, then fast failures: the call is exhausted, not timed out.
    let (seen, reports) = (RefCell::default(), Reports::default());
    assert_eq!(
        api(&[true, false, false, false], &seen, &reports).await,
        Err(ApiError::Down(4))
    );
    assert_eq!(seen.borrow()[0], (1, ApiError::Timeout));
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (4, Reason::Exhausted));

    // Fast failures, then a timed-out last attempt.
    let (seen, reports) = (RefCell::default(), Reports::default());
    assert_eq!(
        api(&[false, false, false, true], &seen, &reports).await,
        Err(ApiError::Timeout)
    );
    let r = only(&reports);
    assert_eq!((r.attempts, r.reason), (4, Reason::TimedOut));
}

// ---------------------------------------------------------------- a wait asked for past the budget

#[retry(
    max = 3,
    delay = "10ms",
    budget = "60s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn hint_past_budget(calls: &Cell<u32>, reports: &Reports<E>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn delay_from_past_the_budget_stops_with_budget_spent_sync() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::<E>::default());
    assert_eq!(hint_past_budget(&calls, &reports), Err(E(1)));
    assert_eq!(
        calls.get(),
        1,
        "no retry when the asked-for wait passes the budget"
    );
    assert!(sleeps.delays().is_empty(), "{:?}", sleeps.delays());
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].attempts, reports[0].reason),
        (1, Reason::BudgetSpent)
    );
}

#[retry(
    max = 3,
    delay = "10ms",
    max_delay = "2s",
    budget = "60s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    fallback = |r: Report<E>| Ok((r.attempts, r.reason)),
)]
async fn hint_past_budget_async(calls: &Cell<u32>) -> Result<(u32, Reason), E> {
    Err(E(tick(calls)))
}

#[tokio::test(start_paused = true)]
async fn delay_from_past_the_budget_stops_with_budget_spent_async() {
    let calls = Cell::new(0);
    let t0 = Instant::now();
    assert_eq!(
        hint_past_budget_async(&calls).await,
        Ok((1, Reason::BudgetSpent))
    );
    assert_eq!(calls.get(), 1);
    assert_eq!(t0.elapsed(), Duration::ZERO, "no wait at all");
}

// ---------------------------------------------------------------- Report::elapsed counts from the call's start

#[retry(
    max = 1,
    delay = "5ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn slow_attempts_async(calls: &Cell<u32>, reports: &Reports<E>) -> Result<(), E> {
    let n = tick(calls);
    tokio::time::sleep(ms(100)).await;
    Err(E(n))
}

#[tokio::test(start_paused = true)]
async fn report_elapsed_includes_the_first_attempt_async() {
    let (calls, reports) = (Cell::new(0), Reports::<E>::default());
    assert_eq!(slow_attempts_async(&calls, &reports).await, Err(E(2)));
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attempts, 2);
    // 100 (first attempt) + 5 (wait) + 100 (second attempt), on the paused clock.
    assert_eq!(reports[0].elapsed, ms(205));
}

#[retry(
    max = 1,
    delay = "5ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn slow_attempts(
    calls: &Cell<u32>,
    sleeps: &testing::InstantSleeps,
    reports: &Reports<E>,
) -> Result<(), E> {
    let n = tick(calls);
    sleeps.advance(ms(100));
    Err(E(n))
}

#[test]
fn report_elapsed_includes_the_first_attempt_sync() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::<E>::default());
    assert_eq!(slow_attempts(&calls, &sleeps, &reports), Err(E(2)));
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attempts, 2);
    // The virtual clock moved 205 ms; the real one a little more.
    assert!(reports[0].elapsed >= ms(205), "{:?}", reports[0].elapsed);
}
