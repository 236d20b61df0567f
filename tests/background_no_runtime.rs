//! Background and hand-off calls from plain `#[test]` functions, outside any tokio runtime:
//! the library starts its own small executor. The handles are awaited with a std-only
//! `block_on`, and `on_done` reports through a std channel.
use retry_runtime::{retry, Handoff, Reason, Report, RetryHandle};
use std::future::Future;
use std::pin::pin;
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};
use std::time::{Duration, Instant};

/// Not a limit on the library's speed: only a guard against a hang.
const GUARD: Duration = Duration::from_secs(10);

/// Polls `fut` on this thread, parking between polls, until it is ready (or the guard).
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = pin!(fut);
    let deadline = Instant::now() + GUARD;
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        let now = Instant::now();
        assert!(now < deadline, "the future did not complete");
        thread::park_timeout(deadline - now);
    }
}

#[path = "common/probe.rs"]
mod probe;
use probe::{Probe, Step};

#[retry(
    max = 3,
    delay = "1ms",
    mode = "background",
    on_done = |r: &Report<String>| done.send(r.clone()).unwrap(),
)]
fn bg_sync(probe: Arc<Probe>, done: Sender<Report<String>>) -> Result<u32, String> {
    probe.attempt()
}

#[retry(
    max = 3,
    delay = "1ms",
    mode = "background",
    on_done = |r: &Report<String>| done.send(r.clone()).unwrap(),
)]
async fn bg_async(probe: Arc<Probe>, done: Sender<Report<String>>) -> Result<u32, String> {
    // Tokio's timer works on the library's executor.
    tokio::time::sleep(Duration::from_millis(1)).await;
    probe.attempt()
}

#[retry(
    max = 3,
    delay = "1ms",
    mode = "handoff",
    on_done = |r: &Report<String>| done.send(r.clone()).unwrap(),
)]
fn ho_sync(probe: Arc<Probe>, done: Sender<Report<String>>) -> Result<u32, String> {
    probe.attempt()
}

#[retry(
    max = 3,
    delay = "1ms",
    mode = "handoff",
    on_done = |r: &Report<String>| done.send(r.clone()).unwrap(),
)]
async fn ho_async(probe: Arc<Probe>, done: Sender<Report<String>>) -> Result<u32, String> {
    probe.attempt()
}

/// A background function: now a plain function returning a handle.
type Start = fn(Arc<Probe>, Sender<Report<String>>) -> RetryHandle<u32, String>;

/// The call with retries completes, its report arrives once, and no attempt ran here.
fn check(kind: &str, start: Start) {
    assert!(
        tokio::runtime::Handle::try_current().is_err(),
        "no runtime here"
    );
    let p = Probe::failing(2);
    let (tx, rx) = mpsc::channel();
    let h = start(Arc::clone(&p), tx);
    let cid = h.cid();
    assert_eq!(block_on(h).unwrap(), 3, "{kind}");
    let r = rx.recv_timeout(GUARD).expect("on_done ran");
    assert_eq!(
        (r.reason, r.attempts, r.cid),
        (Reason::Succeeded, 3, cid),
        "{kind}"
    );
    assert_eq!(r.last_error.as_deref(), Some("transient 2"), "{kind}");
    // The hook (and its sender) went with the finished call: nothing more can come.
    assert!(
        matches!(rx.recv_timeout(GUARD), Err(RecvTimeoutError::Disconnected)),
        "{kind}: once"
    );
    assert_eq!(p.started(), 3, "{kind}");
    assert!(
        p.threads().iter().all(|t| *t != thread::current().id()),
        "{kind}: every attempt ran on the library's threads"
    );
    p.assert_cids(cid);
}

#[test]
fn sync_body_with_retries_completes_without_a_runtime() {
    check("sync", bg_sync);
}

#[test]
fn async_body_with_retries_completes_without_a_runtime() {
    check("async", bg_async);
}

#[test]
fn a_failing_call_reports_without_a_runtime() {
    let p = Probe::new(&[Step::Fail]);
    let (tx, rx) = mpsc::channel();
    let h = bg_sync(Arc::clone(&p), tx);
    let f = block_on(h).unwrap_err();
    assert_eq!(f.reason(), Reason::Exhausted);
    let r = rx.recv_timeout(GUARD).expect("on_done ran");
    assert_eq!((r.reason, r.attempts), (Reason::Exhausted, 4));
    assert_eq!(r.last_error.as_deref(), Some("transient 4"));
}

#[test]
fn many_calls_share_the_executor_without_a_runtime() {
    let (tx, rx) = mpsc::channel();
    let probes: Vec<_> = (0..50).map(|_| Probe::failing(1)).collect();
    let handles: Vec<_> = probes
        .iter()
        .enumerate()
        .map(|(i, p)| {
            if i % 2 == 0 {
                bg_sync(Arc::clone(p), tx.clone())
            } else {
                bg_async(Arc::clone(p), tx.clone())
            }
        })
        .collect();
    drop(tx);
    for h in handles {
        assert_eq!(block_on(h).unwrap(), 2);
    }
    let reports: Vec<_> = (0..50).map(|_| rx.recv_timeout(GUARD).unwrap()).collect();
    assert!(reports
        .iter()
        .all(|r| r.reason == Reason::Succeeded && r.attempts == 2));
    // Every sender (one per call, in its on_done hook) is gone: no more reports.
    assert!(matches!(
        rx.recv_timeout(GUARD),
        Err(RecvTimeoutError::Disconnected)
    ));
}

#[test]
fn sync_handoff_without_a_runtime() {
    let p = Probe::failing(1);
    let (tx, rx) = mpsc::channel();
    let Handoff::Retrying(h) = ho_sync(Arc::clone(&p), tx) else {
        panic!("a retryable failure is handed off");
    };
    assert_eq!(
        p.threads(),
        [thread::current().id()],
        "the first attempt ran here"
    );
    assert_eq!(block_on(h).unwrap(), 2);
    let r = rx.recv_timeout(GUARD).expect("on_done ran");
    assert_eq!((r.reason, r.attempts), (Reason::Succeeded, 2));
    assert_ne!(p.threads()[1], thread::current().id());
}

#[test]
fn async_handoff_without_a_runtime() {
    let p = Probe::failing(1);
    let (tx, rx) = mpsc::channel();
    let Handoff::Retrying(h) = block_on(ho_async(Arc::clone(&p), tx)) else {
        panic!("a retryable failure is handed off");
    };
    assert_eq!(
        p.threads(),
        [thread::current().id()],
        "the first attempt ran here"
    );
    assert_eq!(block_on(h).unwrap(), 2);
    let r = rx.recv_timeout(GUARD).expect("on_done ran");
    assert_eq!((r.reason, r.attempts), (Reason::Succeeded, 2));
    assert_ne!(p.threads()[1], thread::current().id());

    // A first success comes back directly, and on_done still runs once.
    let p = Probe::failing(0);
    let (tx, rx) = mpsc::channel();
    assert!(matches!(
        block_on(ho_async(Arc::clone(&p), tx)),
        Handoff::Done(Ok(1))
    ));
    assert_eq!(rx.recv_timeout(GUARD).unwrap().reason, Reason::Succeeded);
}
