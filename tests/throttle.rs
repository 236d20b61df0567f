//! `throttle = "20%"`: the retries of a function's calls may add at most that share to its
//! calls over the window, plus a floor; a refused retry ends the call with
//! `Reason::Throttled`. Every test runs on tokio's paused clock, so all the calls fall in one
//! window and the counts are exact.
use retry_runtime::{retry, Reason, Report, Throttle};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

const CALLS: u32 = 1_000;

/// The most retries `calls` calls may add at 20%.
fn allowed(calls: u32) -> u32 {
    calls * 20 / 100 + Throttle::FLOOR
}

static DOWN_ATTEMPTS: AtomicU32 = AtomicU32::new(0);
static DOWN_THROTTLED: AtomicU32 = AtomicU32::new(0);

fn note_down(r: &Report<&'static str>) {
    if r.reason == Reason::Throttled {
        DOWN_THROTTLED.fetch_add(1, Ordering::Relaxed);
    }
}

#[retry(max = 3, delay = "0ms", throttle = "20%", on_exhausted = note_down)]
async fn always_down() -> Result<(), &'static str> {
    DOWN_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    Err("down")
}

#[tokio::test(start_paused = true)]
async fn retries_of_a_dependency_that_is_down_stay_within_the_share() {
    for _ in 0..CALLS {
        assert_eq!(always_down().await, Err("down"));
    }
    let retries = DOWN_ATTEMPTS.load(Ordering::Relaxed) - CALLS;
    // Without the throttle: 3,000 retries.
    assert!(
        retries <= allowed(CALLS),
        "{retries} retries for {CALLS} calls"
    );
    // The share is used, not refused outright.
    assert!(
        retries >= CALLS * 20 / 100,
        "{retries} retries for {CALLS} calls"
    );
    // Every call that could not use its 3 retries ended throttled.
    let throttled = DOWN_THROTTLED.load(Ordering::Relaxed);
    assert!(throttled >= CALLS - allowed(CALLS), "{throttled} throttled");
    assert!(throttled < CALLS, "{throttled} throttled");
}

static RECOVERED: AtomicBool = AtomicBool::new(false);
static FLAKY_ATTEMPTS: AtomicU32 = AtomicU32::new(0);
static FLAKY_THROTTLED: AtomicU32 = AtomicU32::new(0);

fn note_flaky(r: &Report<&'static str>) {
    if r.reason == Reason::Throttled {
        FLAKY_THROTTLED.fetch_add(1, Ordering::Relaxed);
    }
}

/// Down until `RECOVERED`; then the first attempt of every tenth call still fails.
#[retry(max = 3, delay = "0ms", throttle = "20%", on_exhausted = note_flaky)]
async fn recovers(call: u32, tries: Arc<AtomicU32>) -> Result<(), &'static str> {
    FLAKY_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    let attempt = tries.fetch_add(1, Ordering::Relaxed) + 1;
    let up = RECOVERED.load(Ordering::Relaxed);
    if up && (call % 10 != 0 || attempt > 1) {
        Ok(())
    } else {
        Err("down")
    }
}

#[tokio::test(start_paused = true)]
async fn retries_resume_when_the_dependency_recovers() {
    let half = CALLS / 2;
    for call in 1..=half {
        assert!(recovers(call, Arc::default()).await.is_err());
    }
    let down_retries = FLAKY_ATTEMPTS.load(Ordering::Relaxed) - half;
    assert!(down_retries <= allowed(half), "{down_retries} retries");
    let throttled = FLAKY_THROTTLED.load(Ordering::Relaxed);
    assert!(throttled > 0);

    // Back up, in the same window: successful calls earn their share again, and the tenth
    // call's failed first attempt is retried every time.
    RECOVERED.store(true, Ordering::Relaxed);
    FLAKY_ATTEMPTS.store(0, Ordering::Relaxed);
    for call in half + 1..=CALLS {
        assert_eq!(recovers(call, Arc::default()).await, Ok(()), "call {call}");
    }
    assert_eq!(FLAKY_ATTEMPTS.load(Ordering::Relaxed), half + half / 10);
    assert_eq!(FLAKY_THROTTLED.load(Ordering::Relaxed), throttled);
}

static QUIET_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[retry(max = "forever", delay = "0ms", throttle = "1%")]
fn quiet() -> Result<(), &'static str> {
    QUIET_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    Err("down")
}

#[test]
fn a_function_with_little_traffic_still_retries_up_to_the_floor() {
    // One call, retrying forever: the floor lets it retry, then the throttle ends it.
    assert_eq!(quiet(), Err("down"));
    assert_eq!(QUIET_ATTEMPTS.load(Ordering::Relaxed), 1 + Throttle::FLOOR);
}
