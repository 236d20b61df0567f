//! 100,000 background calls in flight at once on a two-worker runtime, each failing twice
//! and then succeeding: all complete, every handle resolves `Ok`, and `on_done` runs exactly
//! once per call. The wall time is printed, not asserted.
use retry_runtime::{in_flight, retry, Reason, Report};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

const CALLS: usize = 100_000;

static DONE: AtomicUsize = AtomicUsize::new(0);
static DONE_OK_AFTER_3: AtomicUsize = AtomicUsize::new(0);
/// First attempts that have started (and wait for `GO`).
static FIRST: AtomicUsize = AtomicUsize::new(0);
static GO: AtomicBool = AtomicBool::new(false);
static GO_NOTIFY: Notify = Notify::const_new();

fn count_done(r: &Report<String>) {
    DONE.fetch_add(1, Ordering::Relaxed);
    if r.reason == Reason::Succeeded && r.attempts == 3 {
        DONE_OK_AFTER_3.fetch_add(1, Ordering::Relaxed);
    }
}

/// Holds every first attempt until all the calls are in flight.
async fn go() {
    loop {
        let mut notified = pin!(GO_NOTIFY.notified());
        notified.as_mut().enable();
        if GO.load(Ordering::SeqCst) {
            return;
        }
        notified.await;
    }
}

#[retry(max = 3, delay = "1ms", mode = "background", on_done = count_done)]
async fn flaky(attempts: Arc<[AtomicU8]>, i: usize) -> Result<usize, String> {
    match attempts[i].fetch_add(1, Ordering::Relaxed) {
        0 => {
            FIRST.fetch_add(1, Ordering::SeqCst);
            go().await;
            Err(format!("call {i}: not yet"))
        }
        1 => Err(format!("call {i}: still not")),
        _ => Ok(i),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_calls_in_flight_all_complete() {
    let attempts: Arc<[AtomicU8]> = (0..CALLS).map(|_| AtomicU8::new(0)).collect();
    let t0 = std::time::Instant::now();
    let handles: Vec<_> = (0..CALLS)
        .map(|i| flaky(Arc::clone(&attempts), i))
        .collect();
    let spawned = t0.elapsed();
    // Every call is in its first attempt, held: all of them are in flight at once.
    while FIRST.load(Ordering::SeqCst) < CALLS {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(in_flight(), CALLS);
    assert_eq!(DONE.load(Ordering::SeqCst), 0);
    let held = t0.elapsed();
    GO.store(true, Ordering::SeqCst);
    GO_NOTIFY.notify_waiters();
    for (i, h) in handles.into_iter().enumerate() {
        assert_eq!(h.await.unwrap(), i);
    }
    let elapsed = t0.elapsed();
    eprintln!(
        "{CALLS} background calls, 3 attempts each: spawned in {spawned:?}, all in flight \
         after {held:?}, all done after {elapsed:?}"
    );
    assert_eq!(DONE.load(Ordering::SeqCst), CALLS, "on_done once per call");
    assert_eq!(DONE_OK_AFTER_3.load(Ordering::SeqCst), CALLS);
    assert!(attempts.iter().all(|a| a.load(Ordering::Relaxed) == 3));
    assert_eq!(in_flight(), 0);
}
