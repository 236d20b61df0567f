//! `retry_runtime::shutdown(grace)`: waiting calls end at once, running attempts get the grace,
//! then are abandoned; the unfinished calls are reported, `on_done` runs for each, later calls
//! end at once until `restart()`. Shutdown is process-global, so this binary holds one test
//! that walks through it in sequence, on the paused clock.
use retry_runtime::{
    in_flight, restart, retry, shutdown, CorrelationId, Handoff, Reason, Report, RetryHandle,
    Status,
};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

#[path = "common/probe.rs"]
mod probe;
use probe::{Probe, Step};

// Waits of an hour: a failed attempt leaves the call waiting.
#[retry(
    max = 3,
    backoff = "fixed",
    delay = "1h",
    mode = "background",
    on_done = |r: &Report<String>| probe.on_done(r),
)]
async fn work_async(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin();
    tokio::time::sleep(probe.hold()).await;
    probe.outcome(n)
}

#[retry(
    max = 3,
    backoff = "fixed",
    delay = "1h",
    mode = "background",
    on_done = |r: &Report<String>| probe.on_done(r),
)]
fn work_sync(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin();
    probe.outcome(n)
}

#[retry(
    max = 3,
    backoff = "fixed",
    delay = "1h",
    mode = "handoff",
    on_done = |r: &Report<String>| probe.on_done(r),
)]
async fn work_handoff(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin();
    probe.outcome(n)
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

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

fn waiting(s: Status) -> bool {
    matches!(
        s,
        Status::Waiting {
            next_attempt: 2,
            ..
        }
    )
}

fn running(s: Status) -> bool {
    s == Status::Running { attempt: 1 }
}

#[tokio::test(start_paused = true)]
#[allow(clippy::too_many_lines)] // one sequence, read top to bottom
async fn shutdown_reports_the_unfinished_calls_and_restart_resumes() {
    let grace = Duration::from_secs(1);
    assert_eq!(in_flight(), 0);

    // A call that finished before the shutdown: not reported.
    let before = Probe::holding(&[Step::Ok], Duration::ZERO);
    assert_eq!(work_async(Arc::clone(&before)).await.unwrap(), 1);

    // Waiting an hour for their second attempt: async, sync, and a handed-off call.
    let wait_async = Probe::holding(&[Step::Fail], Duration::ZERO);
    let mut h_wait_async = work_async(Arc::clone(&wait_async));
    let wait_blocking = Probe::holding(&[Step::Fail], Duration::ZERO);
    let mut h_wait_blocking = work_sync(Arc::clone(&wait_blocking));
    let wait_handoff = Probe::holding(&[Step::Fail], Duration::ZERO);
    let Handoff::Retrying(mut h_wait_handoff) = work_handoff(Arc::clone(&wait_handoff)).await
    else {
        panic!("a failed first attempt is handed off");
    };
    // An attempt that runs an hour, far past the grace: abandoned.
    let stuck = Probe::holding(&[Step::Ok], Duration::from_secs(3600));
    let mut h_stuck = work_async(Arc::clone(&stuck));
    // An attempt that succeeds within the grace: finished, not reported.
    let quick_ok = Probe::holding(&[Step::Ok], ms(100));
    let mut h_quick_ok = work_async(Arc::clone(&quick_ok));
    // An attempt that fails within the grace: its wait is cut, so it is reported.
    let quick_fail = Probe::holding(&[Step::Fail], ms(200));
    let mut h_quick_fail = work_async(Arc::clone(&quick_fail));

    step_until(&h_wait_async, "Waiting", waiting).await;
    step_until(&h_wait_blocking, "Waiting", waiting).await;
    step_until(&h_wait_handoff, "Waiting", waiting).await;
    step_until(&h_stuck, "Running", running).await;
    step_until(&h_quick_ok, "Running", running).await;
    step_until(&h_quick_fail, "Running", running).await;
    assert_eq!(in_flight(), 6);

    let t0 = Instant::now();
    let unfinished = shutdown(grace).await;
    let took = Instant::now() - t0;
    assert!(
        took >= grace && took <= grace + ms(100),
        "shutdown waited the grace for the stuck attempt, then gave up: {took:?}"
    );
    assert_eq!(in_flight(), 0, "no call is left in flight");

    // Exactly the unfinished calls, each once, all shut down.
    let mut got: Vec<CorrelationId> = unfinished.iter().map(|r| r.cid).collect();
    let mut want = vec![
        h_wait_async.cid(),
        h_wait_blocking.cid(),
        h_wait_handoff.cid(),
        h_stuck.cid(),
        h_quick_fail.cid(),
    ];
    got.sort();
    want.sort();
    assert_eq!(got, want, "the unfinished calls: {unfinished:#?}");
    assert!(unfinished.iter().all(|r| r.reason == Reason::ShutDown));
    let by_cid = |cid| unfinished.iter().find(|r| r.cid == cid).unwrap();
    for h in [
        &h_wait_async,
        &h_wait_blocking,
        &h_wait_handoff,
        &h_quick_fail,
    ] {
        let r = by_cid(h.cid());
        assert_eq!(r.attempts, 1);
        // Errors written as the function shows them: a `String`'s `Display`, no quotes.
        assert_eq!(r.last_error.as_deref(), Some("transient 1"));
        assert_eq!(r.policy.max_retries, Some(3));
    }
    let r = by_cid(h_stuck.cid());
    assert_eq!((r.attempts, r.last_error.as_deref()), (1, None));

    // Each handle resolves, each on_done ran once with the same facts.
    for (probe, h) in [
        (&wait_async, &mut h_wait_async),
        (&wait_blocking, &mut h_wait_blocking),
        (&wait_handoff, &mut h_wait_handoff),
        (&quick_fail, &mut h_quick_fail),
        (&stuck, &mut h_stuck),
    ] {
        let f = (&mut *h).await.unwrap_err();
        assert_eq!(f.reason(), Reason::ShutDown);
        assert_eq!(h.status(), Status::Failed);
        let r = probe.done_once();
        assert_eq!(r.reason, Reason::ShutDown);
        assert_eq!(r.cid, h.cid());
        assert_eq!(r.attempts, 1);
        assert_eq!(probe.started(), 1, "no attempt after the shutdown began");
    }
    assert_eq!(stuck.finished(), 0, "the stuck attempt was abandoned");
    assert_eq!(quick_fail.finished(), 1);
    assert_eq!(h_quick_ok.status(), Status::Succeeded);
    assert_eq!((&mut h_quick_ok).await.unwrap(), 1);
    let r = quick_ok.done_once();
    assert_eq!((r.reason, r.attempts), (Reason::Succeeded, 1));
    assert_eq!(before.done_once().reason, Reason::Succeeded);

    // After the shutdown, a call ends at once, without an attempt.
    let mut refused = Vec::new();
    for (kind, start) in [
        (
            "async",
            work_async as fn(Arc<Probe>) -> RetryHandle<u32, String>,
        ),
        ("sync", work_sync),
    ] {
        let late = Probe::holding(&[Step::Ok], Duration::ZERO);
        let t = Instant::now();
        let h = start(Arc::clone(&late));
        let cid = h.cid();
        refused.push(cid);
        let f = h.await.unwrap_err();
        assert_eq!(Instant::now(), t, "{kind}");
        assert_eq!(f.reason(), Reason::ShutDown, "{kind}");
        assert_eq!(late.started(), 0, "{kind}");
        let r = late.done_once();
        assert_eq!(
            (r.reason, r.attempts, r.cid),
            (Reason::ShutDown, 0, cid),
            "{kind}"
        );
    }
    assert_eq!(in_flight(), 0);

    // After a restart, calls work again, retries included.
    restart();
    let p = Probe::holding(&[Step::Ok], Duration::ZERO);
    assert_eq!(work_sync(Arc::clone(&p)).await.unwrap(), 1);
    assert_eq!(p.done_once().reason, Reason::Succeeded);
    let p = Probe::holding(&[Step::Fail, Step::Ok], ms(5));
    let t = Instant::now();
    assert_eq!(work_async(Arc::clone(&p)).await.unwrap(), 2);
    assert_eq!(Instant::now() - t, Duration::from_secs(3600) + ms(10));
    assert_eq!(p.done_once().attempts, 2);
    let p = Probe::holding(&[Step::Fail, Step::Ok], Duration::ZERO);
    let Handoff::Retrying(h) = work_handoff(Arc::clone(&p)).await else {
        panic!("handed off");
    };
    assert_eq!(h.await.unwrap(), 2);
    assert_eq!(in_flight(), 0);

    // A second shutdown with nothing in flight reports nothing: the calls refused after the
    // first shutdown were reported through their handles and on_done, and did not run during
    // this one.
    let again = shutdown(grace).await;
    restart();
    let stale: Vec<_> = again
        .iter()
        .map(|r| (r.cid, r.attempts, r.reason))
        .collect();
    assert!(
        stale.is_empty(),
        "a shutdown with no call in flight reports stale calls {stale:?}; \
         the calls refused after the first shutdown were {refused:?}"
    );
}
