//! `retry_runtime::shutdown(grace)`: waiting calls end at once, running attempts get the grace,
//! then are abandoned; the unfinished calls are reported, `on_done` runs for each, later calls
//! end at once until `restart()`. Shutdown is process-global, so this binary holds one test
//! that walks through it in sequence, on the paused clock.
use retry_runtime::{
    current_cid, in_flight, restart, retry, shutdown, CorrelationId, Handoff, Reason, Report,
    RetryHandle, Status,
};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Step {
    Ok,
    Fail,
}

#[derive(Default)]
struct Probe {
    plan: Vec<Step>,
    /// How long each attempt takes (an async attempt sleeps this long).
    hold: Duration,
    started: AtomicU32,
    /// Attempts that ran to their end.
    finished: AtomicU32,
    cids: Mutex<Vec<Option<CorrelationId>>>,
    done: Mutex<Vec<Report<String>>>,
}

impl Probe {
    fn new(plan: &[Step], hold: Duration) -> Arc<Self> {
        Arc::new(Self {
            plan: plan.to_vec(),
            hold,
            ..Self::default()
        })
    }

    fn begin(&self) -> u32 {
        self.cids.lock().unwrap().push(current_cid());
        self.started.fetch_add(1, Ordering::SeqCst) + 1
    }

    fn outcome(&self, n: u32) -> Result<u32, String> {
        self.finished.fetch_add(1, Ordering::SeqCst);
        let i = usize::try_from(n - 1).unwrap().min(self.plan.len() - 1);
        match self.plan[i] {
            Step::Ok => Ok(n),
            Step::Fail => Err(format!("transient {n}")),
        }
    }

    fn on_done(&self, r: &Report<String>) {
        self.done.lock().unwrap().push(r.clone());
    }

    fn started(&self) -> u32 {
        self.started.load(Ordering::SeqCst)
    }

    fn finished(&self) -> u32 {
        self.finished.load(Ordering::SeqCst)
    }

    fn done_once(&self) -> Report<String> {
        let d = self.done.lock().unwrap();
        assert_eq!(d.len(), 1, "on_done is called exactly once per call: {d:?}");
        d[0].clone()
    }
}

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
    tokio::time::sleep(probe.hold).await;
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
    let before = Probe::new(&[Step::Ok], Duration::ZERO);
    assert_eq!(work_async(Arc::clone(&before)).await.unwrap(), 1);

    // Waiting an hour for their second attempt: async, sync, and a handed-off call.
    let wait_async = Probe::new(&[Step::Fail], Duration::ZERO);
    let mut h_wait_async = work_async(Arc::clone(&wait_async));
    let wait_blocking = Probe::new(&[Step::Fail], Duration::ZERO);
    let mut h_wait_blocking = work_sync(Arc::clone(&wait_blocking));
    let wait_handoff = Probe::new(&[Step::Fail], Duration::ZERO);
    let Handoff::Retrying(mut h_wait_handoff) = work_handoff(Arc::clone(&wait_handoff)).await
    else {
        panic!("a failed first attempt is handed off");
    };
    // An attempt that runs an hour, far past the grace: abandoned.
    let stuck = Probe::new(&[Step::Ok], Duration::from_secs(3600));
    let mut h_stuck = work_async(Arc::clone(&stuck));
    // An attempt that succeeds within the grace: finished, not reported.
    let quick_ok = Probe::new(&[Step::Ok], ms(100));
    let mut h_quick_ok = work_async(Arc::clone(&quick_ok));
    // An attempt that fails within the grace: its wait is cut, so it is reported.
    let quick_fail = Probe::new(&[Step::Fail], ms(200));
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
        // Errors formatted with Debug.
        assert_eq!(r.last_error.as_deref(), Some("\"transient 1\""));
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
        let late = Probe::new(&[Step::Ok], Duration::ZERO);
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
    let p = Probe::new(&[Step::Ok], Duration::ZERO);
    assert_eq!(work_sync(Arc::clone(&p)).await.unwrap(), 1);
    assert_eq!(p.done_once().reason, Reason::Succeeded);
    let p = Probe::new(&[Step::Fail, Step::Ok], ms(5));
    let t = Instant::now();
    assert_eq!(work_async(Arc::clone(&p)).await.unwrap(), 2);
    assert_eq!(Instant::now() - t, Duration::from_secs(3600) + ms(10));
    assert_eq!(p.done_once().attempts, 2);
    let p = Probe::new(&[Step::Fail, Step::Ok], Duration::ZERO);
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
