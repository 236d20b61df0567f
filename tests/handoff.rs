//! `mode = "handoff"` on sync and async functions: the first attempt runs in the caller; a
//! success or a rejected error comes back as `Handoff::Done`, a retryable failure as
//! `Handoff::Retrying` with the handle of the background retries. Paused clock throughout.
use retry_runtime::{retry, Handoff, HandoffError, Reason, Report, Status};
use std::cell::Cell;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

tokio::task_local! {
    /// Set around the caller's `.await` of an async hand-off call.
    static IN_CALLER_TASK: ();
}

thread_local! {
    /// Set on the test's thread around a sync hand-off call.
    static IN_CALLER_THREAD: Cell<bool> = const { Cell::new(false) };
}

#[path = "common/probe.rs"]
mod probe;
use probe::{Probe, Step};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// Waits of 10, 20, 30 ms; at most 4 attempts.
#[retry(
    max = 3,
    backoff = "linear",
    delay = "10ms",
    mode = "handoff",
    when = |e: &String| !e.starts_with("fatal"),
    on_done = |r: &Report<String>| probe.on_done(r),
)]
async fn ho_async(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin_in(IN_CALLER_TASK.try_with(|()| ()).is_ok());
    tokio::task::yield_now().await; // an await point inside the attempt
    probe.outcome(n)
}

#[retry(
    max = 3,
    backoff = "linear",
    delay = "10ms",
    mode = "handoff",
    when = |e: &String| !e.starts_with("fatal"),
    on_done = |r: &Report<String>| probe.on_done(r),
)]
fn ho_sync(probe: Arc<Probe>) -> Result<u32, String> {
    let n = probe.begin_in(IN_CALLER_THREAD.with(Cell::get));
    probe.outcome(n)
}

/// Calls the async one, awaiting it inside the caller's task-local scope.
async fn call_async(p: &Arc<Probe>) -> Handoff<u32, String> {
    let fut = ho_async(Arc::clone(p));
    assert_eq!(p.started(), 0, "an async hand-off call starts when awaited");
    IN_CALLER_TASK.scope((), fut).await
}

/// Calls the sync one with the caller's thread marked.
fn call_sync(p: &Arc<Probe>) -> Handoff<u32, String> {
    IN_CALLER_THREAD.with(|c| c.set(true));
    let out = ho_sync(Arc::clone(p));
    IN_CALLER_THREAD.with(|c| c.set(false));
    out
}

/// Both, behind one signature.
async fn call(kind: &str, p: &Arc<Probe>) -> Handoff<u32, String> {
    match kind {
        "async" => call_async(p).await,
        _ => call_sync(p),
    }
}

const KINDS: [&str; 2] = ["async", "sync"];

#[tokio::test(start_paused = true)]
async fn a_first_success_comes_back_directly() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Ok]);
        let out = call(kind, &p).await;
        assert!(matches!(out, Handoff::Done(Ok(1))), "{kind}: {out:?}");
        assert_eq!(
            p.in_caller(),
            [true],
            "{kind}: the attempt ran in the caller"
        );
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Succeeded, "{kind}");
        assert_eq!(r.attempts, 1, "{kind}");
        assert_eq!(r.cid, p.cid(), "{kind}");
        assert_eq!(r.parent, None, "{kind}");
        assert_eq!(r.last_error, None, "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_rejected_first_error_comes_back_directly() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Fatal]);
        let t0 = Instant::now();
        let out = call(kind, &p).await;
        assert!(
            matches!(&out, Handoff::Done(Err(e)) if e == "fatal 1"),
            "{kind}: {out:?}"
        );
        assert_eq!(Instant::now(), t0, "{kind}");
        assert_eq!(p.in_caller(), [true], "{kind}");
        let r = p.done_once();
        assert_eq!(r.reason, Reason::NotRetryable, "{kind}");
        assert_eq!(r.attempts, 1, "{kind}");
        assert_eq!(r.cid, p.cid(), "{kind}");
        assert_eq!(r.last_error.as_deref(), Some("fatal 1"), "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_retryable_first_error_moves_the_rest_to_the_background() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Fail, Step::Fail, Step::Ok]);
        let t0 = Instant::now();
        let Handoff::Retrying(mut h) = call(kind, &p).await else {
            panic!("{kind}: a retryable failure is handed off");
        };
        // The first attempt ran before the handle existed, in the caller.
        assert_eq!(p.started(), 1, "{kind}");
        assert_eq!(p.in_caller(), [true], "{kind}");
        assert_eq!(h.cid(), p.cid(), "{kind}");
        assert!(
            matches!(h.status(), Status::Pending | Status::Waiting { .. }),
            "{kind}: {:?}",
            h.status()
        );
        tokio::task::yield_now().await;
        assert_eq!(
            h.status(),
            Status::Waiting {
                next_attempt: 2,
                until: (t0 + ms(10)).into_std(),
            },
            "{kind}"
        );
        assert_eq!((&mut h).await.unwrap(), 3, "{kind}");
        assert_eq!(h.status(), Status::Succeeded, "{kind}");
        assert_eq!(
            p.in_caller(),
            [true, false, false],
            "{kind}: retries in the background"
        );
        assert_eq!(p.gaps(), [ms(10), ms(20)], "{kind}");
        let r = p.done_once();
        assert_eq!(r.reason, Reason::Succeeded, "{kind}");
        assert_eq!(
            r.attempts, 3,
            "{kind}: the report counts the caller's attempt"
        );
        assert_eq!(r.cid, h.cid(), "{kind}");
        assert_eq!(r.cid, p.cid(), "{kind}");
        assert_eq!(r.elapsed, ms(30), "{kind}");
        assert_eq!(r.policy.max_retries, Some(3), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn handed_off_retries_can_be_exhausted() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Fail]);
        let Handoff::Retrying(h) = call(kind, &p).await else {
            panic!("{kind}: handed off");
        };
        let cid = h.cid();
        let f = h.await.unwrap_err();
        assert_eq!(f.reason(), Reason::Exhausted, "{kind}");
        assert_eq!(f.error().map(String::as_str), Some("transient 4"), "{kind}");
        assert_eq!(p.started(), 4, "{kind}");
        assert_eq!(p.gaps(), [ms(10), ms(20), ms(30)], "{kind}");
        let r = p.done_once();
        assert_eq!((r.reason, r.attempts), (Reason::Exhausted, 4), "{kind}");
        assert_eq!(r.cid, cid, "{kind}");
        assert_eq!(r.last_error.as_deref(), Some("transient 4"), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn handed_off_retries_stop_at_a_rejected_error() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Fail, Step::Fatal]);
        let Handoff::Retrying(h) = call(kind, &p).await else {
            panic!("{kind}: handed off");
        };
        let f = h.await.unwrap_err();
        assert_eq!(f.reason(), Reason::NotRetryable, "{kind}");
        let r = p.done_once();
        assert_eq!((r.reason, r.attempts), (Reason::NotRetryable, 2), "{kind}");
        assert_eq!(r.last_error.as_deref(), Some("fatal 2"), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn handed_off_retries_can_be_cancelled() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Fail]);
        let Handoff::Retrying(h) = call(kind, &p).await else {
            panic!("{kind}: handed off");
        };
        tokio::task::yield_now().await;
        assert!(matches!(
            h.status(),
            Status::Waiting {
                next_attempt: 2,
                ..
            }
        ));
        let cancelled_at = Instant::now();
        h.cancel();
        let f = h.await.unwrap_err();
        assert_eq!(
            Instant::now(),
            cancelled_at,
            "{kind}: the wait was cut short"
        );
        assert_eq!(f.reason(), Reason::Cancelled, "{kind}");
        assert_eq!(p.started(), 1, "{kind}");
        let r = p.done_once();
        assert_eq!((r.reason, r.attempts), (Reason::Cancelled, 1), "{kind}");
        assert_eq!(r.last_error.as_deref(), Some("transient 1"), "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_panic_in_the_handed_off_retries_ends_the_call() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Fail, Step::Panic]);
        let Handoff::Retrying(h) = call(kind, &p).await else {
            panic!("{kind}: handed off");
        };
        let f = h.await.unwrap_err();
        assert_eq!(f.reason(), Reason::Panicked, "{kind}");
        let r = p.done_once();
        assert_eq!((r.reason, r.attempts), (Reason::Panicked, 2), "{kind}");
        // And the next call works.
        let p = Probe::new(&[Step::Fail, Step::Ok]);
        assert_eq!(call(kind, &p).await.outcome().await.unwrap(), 2, "{kind}");
    }
}

#[tokio::test(start_paused = true)]
async fn outcome_waits_wherever_the_result_comes_from() {
    for kind in KINDS {
        let p = Probe::new(&[Step::Ok]);
        assert_eq!(call(kind, &p).await.outcome().await.unwrap(), 1, "{kind}");
        assert_eq!(p.done_once().reason, Reason::Succeeded);

        let p = Probe::new(&[Step::Fatal]);
        match call(kind, &p).await.outcome().await {
            Err(HandoffError::First(e)) => assert_eq!(e, "fatal 1", "{kind}"),
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(p.done_once().reason, Reason::NotRetryable);

        let p = Probe::new(&[Step::Fail, Step::Ok]);
        assert_eq!(call(kind, &p).await.outcome().await.unwrap(), 2, "{kind}");
        assert_eq!(p.done_once().attempts, 2);

        let p = Probe::new(&[Step::Fail]);
        match call(kind, &p).await.outcome().await {
            Err(HandoffError::Background(f)) => {
                assert_eq!(f.reason(), Reason::Exhausted, "{kind}");
                assert_eq!(f.report.attempts, 4, "{kind}");
            }
            other => panic!("{kind}: {other:?}"),
        }
        assert_eq!(p.done_once().reason, Reason::Exhausted);
    }
}
