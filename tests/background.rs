//! `mode = "background"` on sync and async functions: attempts, delays, status transitions,
//! cancellation, panics, `on_done` and correlation IDs. Every test runs on tokio's paused
//! clock (current-thread runtime), so delays are exact and the spawned call only moves when
//! the test yields or advances the clock.
use retry_runtime::{current_cid, retry, CorrelationId, Reason, Report, RetryHandle, Status};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[path = "common/probe.rs"]
mod probe;
use probe::{Probe, Step};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn transient(n: u32) -> String {
    format!("transient {n}")
}

// Waits of 10, 20, 30 ms; at most 4 attempts.
#[retry(
    max = 3,
    backoff = "linear",
    delay = "10ms",
    mode = "background",
    when = |e: &String| !e.starts_with("fatal"),
    on_done = |r: &Report<String>| probe.on_done(r),
)]
async fn bg_async(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin();
    probe.pass_async().await;
    probe.outcome(n)
}

#[retry(
    max = 3,
    backoff = "linear",
    delay = "10ms",
    mode = "background",
    when = |e: &String| !e.starts_with("fatal"),
    on_done = |r: &Report<String>| probe.on_done(r),
)]
fn bg_sync(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin();
    probe.pass_sync();
    probe.outcome(n)
}

/// Both are now plain functions returning a handle.
type Start = fn(Arc<Probe>) -> RetryHandle<u32, String>;
const BOTH: [(&str, Start); 2] = [("async", bg_async), ("sync", bg_sync)];

/// Lets the spawned call run (a sync attempt runs on another thread, so this may take a few
/// rounds) until its status satisfies `pred`. Yielding never advances the paused clock.
async fn step_until<T, E>(
    h: &RetryHandle<T, E>,
    what: &str,
    pred: impl Fn(Status) -> bool,
) -> Status {
    let guard = std::time::Instant::now();
    loop {
        let s = h.status();
        if pred(s) {
            return s;
        }
        assert!(
            guard.elapsed() < Duration::from_secs(20),
            "the status never became {what}; it is {s:?}"
        );
        tokio::task::yield_now().await;
        std::thread::yield_now();
    }
}

/// Lets the spawned call run until `n` attempts have started (a sync attempt's status says
/// Running as soon as it is handed to the blocking pool, a moment before its body begins).
async fn until_started(p: &Probe, n: u32) {
    let guard = std::time::Instant::now();
    while p.started() < n {
        assert!(
            guard.elapsed() < Duration::from_secs(20),
            "attempt {n} never started"
        );
        tokio::task::yield_now().await;
        std::thread::yield_now();
    }
}

// ---------------------------------------------------------------- outcomes, attempts, delays

#[tokio::test(start_paused = true)]
async fn success_at_the_first_attempt() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Ok]);
        let t0 = Instant::now();
        let h = start(Arc::clone(&p));
        let cid = h.cid();
        assert_eq!(h.await.unwrap(), 1, "{kind}");
        assert_eq!(Instant::now(), t0, "{kind}: no wait");
        assert_eq!(p.started(), 1, "{kind}");
        p.assert_cids(cid);
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Succeeded, "{kind}");
        assert!(r.is_ok());
        assert_eq!(r.attempts, 1, "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.parent, None, "{kind}");
        assert_eq!(r.last_error, None, "{kind}");
        assert_eq!(r.elapsed, Duration::ZERO, "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
        assert!(r.name.ends_with("::bg_async") || r.name.ends_with("::bg_sync"));
    }
}

#[tokio::test(start_paused = true)]
async fn success_after_retries_waits_exactly_the_linear_delays() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Fail, Step::Fail, Step::Ok]);
        let t0 = Instant::now();
        let h = start(Arc::clone(&p));
        let cid = h.cid();
        assert_eq!(h.await.unwrap(), 3, "{kind}");
        assert_eq!(p.started(), 3, "{kind}");
        assert_eq!(p.gaps(), [ms(10), ms(20)], "{kind}");
        assert_eq!(Instant::now() - t0, ms(30), "{kind}");
        p.assert_cids(cid);
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Succeeded, "{kind}");
        assert_eq!(r.attempts, 3, "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.elapsed, ms(30), "{kind}");
        // A success after failures keeps the error of the last failed attempt (the report's
        // Display prints it as "(last error: ...)").
        assert_eq!(r.last_error, Some(transient(2)), "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn exhausted_after_every_allowed_attempt() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Fail]);
        let h = start(Arc::clone(&p));
        let cid = h.cid();
        let f = h.await.unwrap_err();
        assert_eq!(f.reason(), Reason::Exhausted, "{kind}");
        assert_eq!(f.error(), Some(&transient(4)), "{kind}");
        assert_eq!(f.report.attempts, 4, "{kind}");
        assert_eq!(f.report.cid, cid, "{kind}");
        assert_eq!(p.started(), 4, "{kind}");
        assert_eq!(p.gaps(), [ms(10), ms(20), ms(30)], "{kind}");
        p.assert_cids(cid);
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Exhausted, "{kind}");
        assert_eq!(r.attempts, 4, "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.elapsed, ms(60), "{kind}");
        assert_eq!(r.last_error, Some(transient(4)), "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
        assert_eq!(f.into_error(), Some(transient(4)), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejected_error_ends_the_call_at_once() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Fail, Step::Fatal]);
        let h = start(Arc::clone(&p));
        let cid = h.cid();
        let f = h.await.unwrap_err();
        assert_eq!(f.reason(), Reason::NotRetryable, "{kind}");
        assert_eq!(f.error().map(String::as_str), Some("fatal 2"), "{kind}");
        assert_eq!(p.started(), 2, "{kind}");
        assert_eq!(p.gaps(), [ms(10)], "{kind}");
        let r = p.done_once();
        assert_eq!(r.reason, Reason::NotRetryable, "{kind}");
        assert_eq!(r.attempts, 2, "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.last_error.as_deref(), Some("fatal 2"), "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
    }
}

// ---------------------------------------------------------------- status transitions

/// Pending, Running{1}, Waiting{2, now + 10ms}, Running{2}, then `end` after the second
/// attempt takes `second`.
async fn walk(kind: &str, start: Start, second: Step, end: Status) {
    let p = Probe::gated(&[Step::Fail, second]);
    let mut h = start(Arc::clone(&p));
    let mut seen = vec![h.status()];
    assert_eq!(p.started(), 0, "{kind}: nothing ran before the first yield");

    seen.push(step_until(&h, "Running", |s| s != Status::Pending).await);
    until_started(&p, 1).await;
    // The attempt is blocked at its gate: the status stays Running.
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(h.status(), Status::Running { attempt: 1 }, "{kind}");

    p.open();
    let failed_at = Instant::now();
    seen.push(step_until(&h, "Waiting", |s| matches!(s, Status::Waiting { .. })).await);
    assert_eq!(
        seen[2],
        Status::Waiting {
            next_attempt: 2,
            until: (failed_at + ms(10)).into_std(),
        },
        "{kind}"
    );
    tokio::time::advance(ms(9)).await;
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert!(matches!(h.status(), Status::Waiting { .. }), "{kind}");
    assert_eq!(p.started(), 1, "{kind}: no attempt during the wait");

    tokio::time::advance(ms(1)).await;
    seen.push(step_until(&h, "Running", |s| matches!(s, Status::Running { .. })).await);
    until_started(&p, 2).await;
    assert_eq!(p.gaps(), [ms(10)], "{kind}");

    p.open();
    let _ = (&mut h).await;
    seen.push(h.status());
    assert_eq!(
        seen,
        [
            Status::Pending,
            Status::Running { attempt: 1 },
            seen[2],
            Status::Running { attempt: 2 },
            end,
        ],
        "{kind}"
    );
    assert!(end.is_finished());
    assert!(!seen[..4].iter().any(|s| s.is_finished()));
    assert_eq!(p.done_once().attempts, 2, "{kind}");
}

#[tokio::test(start_paused = true)]
async fn status_walks_to_succeeded_async() {
    walk("async", bg_async, Step::Ok, Status::Succeeded).await;
}

#[tokio::test(start_paused = true)]
async fn status_walks_to_succeeded_sync() {
    walk("sync", bg_sync, Step::Ok, Status::Succeeded).await;
}

#[tokio::test(start_paused = true)]
async fn status_walks_to_failed_async() {
    walk("async", bg_async, Step::Fatal, Status::Failed).await;
}

#[tokio::test(start_paused = true)]
async fn status_walks_to_failed_sync() {
    walk("sync", bg_sync, Step::Fatal, Status::Failed).await;
}

// ---------------------------------------------------------------- cancel

#[tokio::test(start_paused = true)]
async fn cancel_while_waiting_ends_the_call_at_once() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Fail]);
        let mut h = start(Arc::clone(&p));
        let cid = h.cid();
        step_until(&h, "Waiting", |s| matches!(s, Status::Waiting { .. })).await;
        let cancelled_at = Instant::now();
        h.cancel();
        let f = (&mut h).await.unwrap_err();
        assert_eq!(
            Instant::now(),
            cancelled_at,
            "{kind}: the 10ms wait was cut short"
        );
        assert_eq!(f.reason(), Reason::Cancelled, "{kind}");
        assert_eq!(h.status(), Status::Cancelled, "{kind}");
        assert_eq!(p.started(), 1, "{kind}: no attempt after the cancel");
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Cancelled, "{kind}");
        assert_eq!(r.attempts, 1, "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.last_error, Some(transient(1)), "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
        // Nothing runs later either.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(p.started(), 1, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_before_the_first_attempt_makes_none() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Ok]);
        let h = start(Arc::clone(&p));
        assert_eq!(h.status(), Status::Pending, "{kind}");
        h.cancel();
        let f = h.await.unwrap_err();
        assert_eq!(f.reason(), Reason::Cancelled, "{kind}");
        assert_eq!(p.started(), 0, "{kind}");
        let r = p.done_once();
        assert_eq!((r.reason, r.attempts), (Reason::Cancelled, 0), "{kind}");
        assert_eq!(r.last_error, None, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn cancel_aborts_a_running_async_attempt() {
    let p = Probe::gated(&[Step::Ok]);
    let mut h = bg_async(Arc::clone(&p));
    let cid = h.cid();
    step_until(&h, "Running", |s| s == Status::Running { attempt: 1 }).await;
    until_started(&p, 1).await;
    let cancelled_at = Instant::now();
    h.cancel();
    let f = (&mut h).await.unwrap_err();
    assert_eq!(Instant::now(), cancelled_at);
    assert_eq!(f.reason(), Reason::Cancelled);
    assert_eq!(h.status(), Status::Cancelled);
    // The attempt was dropped at its await point: the code after it never runs, even when
    // the gate opens later.
    p.open();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!((p.started(), p.finished()), (1, 0));
    let r = p.done_once();
    assert_eq!(r.reason, Reason::Cancelled);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.cid, cid);
    assert_eq!(r.last_error, None);
}

#[tokio::test(start_paused = true)]
async fn cancel_lets_a_running_sync_attempt_finish() {
    // It fails: the call ends as cancelled, with that error, and no further attempt.
    let p = Probe::gated(&[Step::Fail]);
    let mut h = bg_sync(Arc::clone(&p));
    step_until(&h, "Running", |s| s == Status::Running { attempt: 1 }).await;
    until_started(&p, 1).await;
    h.cancel();
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    assert_eq!(h.status(), Status::Running { attempt: 1 }, "still running");
    assert!(p.done().is_empty());
    p.open();
    let f = (&mut h).await.unwrap_err();
    assert_eq!(f.reason(), Reason::Cancelled);
    assert_eq!(h.status(), Status::Cancelled);
    assert_eq!(
        (p.started(), p.finished()),
        (1, 1),
        "the attempt ran to its end"
    );
    let r = p.done_once();
    assert_eq!((r.reason, r.attempts), (Reason::Cancelled, 1));
    assert_eq!(r.last_error, Some(transient(1)));

    // It succeeds: that work is done, so the call succeeded.
    let p = Probe::gated(&[Step::Ok]);
    let mut h = bg_sync(Arc::clone(&p));
    step_until(&h, "Running", |s| s == Status::Running { attempt: 1 }).await;
    until_started(&p, 1).await;
    h.cancel();
    p.open();
    assert_eq!((&mut h).await.unwrap(), 1);
    assert_eq!(h.status(), Status::Succeeded);
    let r = p.done_once();
    assert_eq!((r.reason, r.attempts), (Reason::Succeeded, 1));
}

#[tokio::test(start_paused = true)]
async fn cancelling_a_finished_call_does_nothing() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Ok]);
        let mut h = start(Arc::clone(&p));
        assert_eq!((&mut h).await.unwrap(), 1, "{kind}");
        h.cancel();
        tokio::task::yield_now().await;
        assert_eq!(h.status(), Status::Succeeded, "{kind}");
        assert_eq!(p.done_once().reason, Reason::Succeeded, "{kind}");
    }
}

// ---------------------------------------------------------------- panics

#[tokio::test(start_paused = true)]
async fn a_panicking_attempt_ends_the_call_and_later_calls_work() {
    for (kind, start) in BOTH {
        let p = Probe::new(&[Step::Fail, Step::Panic]);
        let mut h = start(Arc::clone(&p));
        let cid = h.cid();
        let f = (&mut h).await.unwrap_err();
        assert_eq!(f.reason(), Reason::Panicked, "{kind}");
        assert_eq!(h.status(), Status::Failed, "{kind}");
        assert_eq!(p.started(), 2, "{kind}: a panic is not retried");
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Panicked, "{kind}");
        assert_eq!(r.attempts, 2, "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");

        let p = Probe::new(&[Step::Fail, Step::Ok]);
        assert_eq!(start(Arc::clone(&p)).await.unwrap(), 2, "{kind}");
        assert_eq!(p.done_once().reason, Reason::Succeeded, "{kind}");
    }
}

// ---------------------------------------------------------------- correlation IDs

#[tokio::test(start_paused = true)]
async fn each_call_has_its_own_cid_and_none_outside() {
    let a = bg_async(Probe::new(&[Step::Ok]));
    let b = bg_sync(Probe::new(&[Step::Ok]));
    assert_ne!(a.cid(), b.cid());
    assert_eq!(current_cid(), None);
    let _ = (a.await, b.await);
    assert_eq!(current_cid(), None);
}

#[retry(max = 1, delay = "0ms")]
async fn outer_inline_async(
    inner: Arc<Probe>,
) -> Result<(Option<CorrelationId>, RetryHandle<u32, String>), String> {
    Ok((current_cid(), bg_async(inner)))
}

#[retry(max = 1, delay = "0ms")]
fn outer_inline_sync(
    inner: Arc<Probe>,
) -> Result<(Option<CorrelationId>, RetryHandle<u32, String>), String> {
    Ok((current_cid(), bg_sync(inner)))
}

#[retry(max = 1, delay = "0ms", mode = "background")]
async fn outer_bg_async(
    inner: Arc<Probe>,
) -> Result<(Option<CorrelationId>, RetryHandle<u32, String>), String> {
    Ok((current_cid(), bg_async(inner)))
}

#[retry(max = 1, delay = "0ms", mode = "background")]
fn outer_bg_sync(
    inner: Arc<Probe>,
) -> Result<(Option<CorrelationId>, RetryHandle<u32, String>), String> {
    Ok((current_cid(), bg_sync(inner)))
}

/// The inner call's report names the outer call as its parent, success or failure.
async fn check_parent(
    how: &str,
    outer: Option<CorrelationId>,
    inner_probe: &Probe,
    inner: RetryHandle<u32, String>,
) {
    let outer = outer.expect("current_cid() inside the outer body");
    let inner_cid = inner.cid();
    assert_ne!(inner_cid, outer, "{how}");
    let out = inner.await;
    inner_probe.assert_cids(inner_cid);
    let r = inner_probe.done_once();
    assert_eq!(r.cid, inner_cid, "{how}");
    assert_eq!(r.parent, Some(outer), "{how}");
    if let Err(f) = out {
        assert_eq!(f.report.parent, Some(outer), "{how}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_started_inside_an_inline_call_records_its_parent() {
    for plan in [[Step::Fail, Step::Ok], [Step::Fail, Step::Fatal]] {
        let p = Probe::new(&plan);
        let (outer, inner) = outer_inline_async(Arc::clone(&p)).await.unwrap();
        check_parent("inline async", outer, &p, inner).await;

        let p = Probe::new(&plan);
        let (outer, inner) = outer_inline_sync(Arc::clone(&p)).unwrap();
        check_parent("inline sync", outer, &p, inner).await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_call_started_inside_a_background_call_records_its_parent() {
    for plan in [[Step::Fail, Step::Ok], [Step::Fail, Step::Fatal]] {
        let p = Probe::new(&plan);
        let h = outer_bg_async(Arc::clone(&p));
        let outer_cid = h.cid();
        let (outer, inner) = h.await.unwrap();
        assert_eq!(
            outer,
            Some(outer_cid),
            "the outer body sees its handle's cid"
        );
        check_parent("background async", outer, &p, inner).await;

        let p = Probe::new(&plan);
        let h = outer_bg_sync(Arc::clone(&p));
        let outer_cid = h.cid();
        let (outer, inner) = h.await.unwrap();
        assert_eq!(
            outer,
            Some(outer_cid),
            "the outer body sees its handle's cid"
        );
        check_parent("background sync", outer, &p, inner).await;
    }
}

// ---------------------------------------------------------------- per-attempt timeout

static SLOW_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(
    max = 3,
    backoff = "fixed",
    delay = "10ms",
    timeout = "50ms",
    mode = "background"
)]
async fn slow_then_fast(slow_attempts: u32) -> Result<u32, std::io::Error> {
    let n = SLOW_CALLS.fetch_add(1, Ordering::SeqCst) + 1;
    if n <= slow_attempts {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(n)
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_background_attempt_is_retried_and_exhaustion_by_timeouts_says_so() {
    SLOW_CALLS.store(0, Ordering::SeqCst);
    let t0 = Instant::now();
    assert_eq!(slow_then_fast(2).await.unwrap(), 3);
    // Two attempts cut at 50 ms, two waits of 10 ms, then a fast attempt.
    assert_eq!(t0.elapsed(), Duration::from_millis(120));

    SLOW_CALLS.store(0, Ordering::SeqCst);
    let failure = slow_then_fast(u32::MAX).await.unwrap_err();
    assert_eq!(failure.reason(), Reason::TimedOut);
    assert_eq!(failure.report.attempts, 4);
    assert_eq!(
        failure.error().map(std::io::Error::kind),
        Some(std::io::ErrorKind::TimedOut)
    );
}

#[retry(max = 7, delay = "1h", mode = "background")]
async fn waits_an_hour() -> Result<u32, String> {
    Err("not yet".into())
}

/// A call whose runtime is dropped mid-wait ends as shut down, and its report still carries
/// the call's policy (kept by the task, left with the handle as the task is dropped).
#[test]
fn a_call_lost_with_its_runtime_reports_shut_down_with_its_policy() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap();
    let handle = {
        let _in = rt.enter();
        waits_an_hour()
    };
    // Let the first attempt run and fail; the call then waits an hour.
    rt.block_on(async {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    });
    drop(rt);
    let other = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let failure = other.block_on(handle).unwrap_err();
    assert_eq!(failure.reason(), Reason::ShutDown);
    assert_eq!(failure.report.policy.max_retries, Some(7));
    assert_eq!(
        failure.report.attempts, 1,
        "the attempt it made before the wait"
    );
    assert!(failure.report.name.ends_with("waits_an_hour"));
}
