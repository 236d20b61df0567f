//! Correlation IDs: one per call, the same for all its attempts, visible in the body through
//! `current_cid()` and in the report, and recorded as the parent of calls started inside.
use retry_runtime::{current_cid, retry, CorrelationId, Report};
use std::cell::RefCell;
use std::collections::HashSet;
use std::marker::PhantomData;

#[derive(Debug, Clone, PartialEq)]
struct E(u32);

type Cids = RefCell<Vec<Option<CorrelationId>>>;
type Reports = RefCell<Vec<Report<E>>>;

fn attempt_no(cids: &Cids) -> u32 {
    u32::try_from(cids.borrow().len()).unwrap()
}

// ---------------------------------------------------------------- one call

#[retry(
    max = 3,
    delay = "0ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn records(cids: &Cids, ok_at: u32, reports: &Reports) -> Result<u32, E> {
    cids.borrow_mut().push(current_cid());
    let n = attempt_no(cids);
    if n >= ok_at {
        Ok(n)
    } else {
        Err(E(n))
    }
}

/// All the same, and present: the one ID.
fn one_cid(cids: &Cids) -> CorrelationId {
    let cids = cids.borrow();
    assert!(!cids.is_empty());
    let first = cids[0].expect("current_cid() is Some inside the body");
    assert!(
        cids.iter().all(|c| *c == Some(first)),
        "the same across attempts: {cids:?}"
    );
    first
}

#[test]
fn cid_is_the_same_across_attempts_and_none_outside() {
    assert_eq!(current_cid(), None);
    let (cids, reports) = (Cids::default(), Reports::default());
    assert_eq!(records(&cids, 3, &reports), Ok(3));
    assert_eq!(cids.borrow().len(), 3);
    one_cid(&cids);
    assert_eq!(current_cid(), None, "None again after the call");
}

#[test]
fn cid_differs_between_calls() {
    let mut seen = HashSet::new();
    for _ in 0..20 {
        let (cids, reports) = (Cids::default(), Reports::default());
        assert_eq!(records(&cids, 2, &reports), Ok(2));
        assert!(seen.insert(one_cid(&cids)), "a cid came back twice");
    }
}

#[test]
fn cid_equals_the_reports() {
    let (cids, reports) = (Cids::default(), Reports::default());
    assert_eq!(records(&cids, 99, &reports), Err(E(4)));
    let cid = one_cid(&cids);
    let r = &reports.borrow()[0];
    assert_eq!(r.cid, cid);
    assert_eq!(r.parent, None);
    assert!(r.to_string().contains(&cid.to_string()));
}

#[retry(
    max = 2,
    delay = "5ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn records_async(cids: &Cids, reports: &Reports) -> Result<(), E> {
    cids.borrow_mut().push(current_cid());
    tokio::task::yield_now().await;
    // Still this call's after a suspension.
    cids.borrow_mut().push(current_cid());
    Err(E(attempt_no(cids)))
}

#[tokio::test(start_paused = true)]
async fn async_cid_is_the_same_across_attempts_and_equals_the_reports() {
    assert_eq!(current_cid(), None);
    let (cids, reports) = (Cids::default(), Reports::default());
    assert_eq!(records_async(&cids, &reports).await, Err(E(6)));
    assert_eq!(current_cid(), None);
    let cid = one_cid(&cids);
    assert_eq!(reports.borrow()[0].cid, cid);

    let (cids2, reports2) = (Cids::default(), Reports::default());
    assert!(records_async(&cids2, &reports2).await.is_err());
    assert_ne!(one_cid(&cids2), cid, "another call, another cid");
}

// ---------------------------------------------------------------- nesting

#[retry(
    max = 1,
    delay = "0ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn inner(cids: &Cids, reports: &Reports) -> Result<(), E> {
    cids.borrow_mut().push(current_cid());
    Err(E(0))
}

#[retry(
    max = 1,
    delay = "0ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn outer(
    cids: &Cids,
    inner_cids: &Cids,
    reports: &Reports,
    inner_reports: &Reports,
) -> Result<(), E> {
    cids.borrow_mut().push(current_cid());
    assert_eq!(inner(inner_cids, inner_reports), Err(E(0)));
    // Back in the outer call.
    cids.borrow_mut().push(current_cid());
    Err(E(1))
}

#[test]
fn nested_sync_call_has_the_outer_as_parent() {
    let (cids, inner_cids) = (Cids::default(), Cids::default());
    let (reports, inner_reports) = (Reports::default(), Reports::default());
    assert_eq!(
        outer(&cids, &inner_cids, &reports, &inner_reports),
        Err(E(1))
    );
    let outer_cid = one_cid(&cids);
    let inner_reports = inner_reports.into_inner();
    assert_eq!(inner_reports.len(), 2, "one inner call per outer attempt");
    let ids_inside: Vec<_> = inner_cids.borrow().iter().map(|c| c.unwrap()).collect();
    assert_eq!(ids_inside.len(), 4);
    for (i, r) in inner_reports.iter().enumerate() {
        assert_eq!(r.parent, Some(outer_cid));
        assert_ne!(r.cid, outer_cid);
        assert_eq!([ids_inside[2 * i], ids_inside[2 * i + 1]], [r.cid; 2]);
    }
    assert_ne!(inner_reports[0].cid, inner_reports[1].cid);
    let r = &reports.borrow()[0];
    assert_eq!((r.cid, r.parent), (outer_cid, None));
}

#[retry(
    max = 1,
    delay = "1ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn inner_async(reports: &Reports) -> Result<(), E> {
    tokio::task::yield_now().await;
    Err(E(0))
}

#[retry(
    max = 1,
    delay = "1ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn outer_async(
    cids: &Cids,
    reports: &Reports,
    inner_reports: &Reports,
    sync_reports: &Reports,
) -> Result<(), E> {
    cids.borrow_mut().push(current_cid());
    assert_eq!(inner_async(inner_reports).await, Err(E(0)));
    cids.borrow_mut().push(current_cid());
    // A sync retried call inside an async one.
    assert_eq!(inner(&Cids::default(), sync_reports), Err(E(0)));
    Err(E(1))
}

#[tokio::test(start_paused = true)]
async fn nested_async_call_has_the_outer_as_parent() {
    let cids = Cids::default();
    let (reports, inner_reports, sync_reports) =
        (Reports::default(), Reports::default(), Reports::default());
    assert_eq!(
        outer_async(&cids, &reports, &inner_reports, &sync_reports).await,
        Err(E(1))
    );
    let outer_cid = one_cid(&cids);
    assert_eq!(cids.borrow().len(), 4);
    for r in inner_reports
        .borrow()
        .iter()
        .chain(sync_reports.borrow().iter())
    {
        assert_eq!(r.parent, Some(outer_cid));
        assert_ne!(r.cid, outer_cid);
    }
    assert_eq!(inner_reports.borrow().len(), 2);
    assert_eq!(sync_reports.borrow().len(), 2);
    assert_eq!(reports.borrow()[0].parent, None);
    assert_eq!(current_cid(), None);
}

// ---------------------------------------------------------------- concurrency

#[retry(max = 5, backoff = "fixed", delay = "10ms")]
async fn concurrent(ok_at: u32, cids: &Cids) -> Result<u32, E> {
    cids.borrow_mut().push(current_cid());
    tokio::task::yield_now().await;
    cids.borrow_mut().push(current_cid());
    let n = attempt_no(cids) / 2;
    if n >= ok_at {
        Ok(n)
    } else {
        Err(E(n))
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_calls_have_their_own_cid_and_state() {
    let (a, b, c) = (Cids::default(), Cids::default(), Cids::default());
    let (ra, rb, rc) = tokio::join!(concurrent(3, &a), concurrent(1, &b), concurrent(7, &c));
    assert_eq!((ra, rb, rc), (Ok(3), Ok(1), Err(E(6))));
    assert_eq!(
        [a.borrow().len(), b.borrow().len(), c.borrow().len()],
        [6, 2, 12]
    );
    let ids = [one_cid(&a), one_cid(&b), one_cid(&c)];
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), 3, "{ids:?}");
    assert_eq!(current_cid(), None);
}

// ---------------------------------------------------------------- the ID itself

#[test]
fn cid_display_is_26_chars_and_parses_back() {
    let (cids, reports) = (Cids::default(), Reports::default());
    assert!(records(&cids, 1, &reports).is_ok());
    for cid in [one_cid(&cids), CorrelationId::new()] {
        let text = cid.to_string();
        assert_eq!(text.len(), 26);
        assert!(text
            .bytes()
            .all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b)));
        assert_eq!(text.parse::<CorrelationId>(), Ok(cid));
        assert_eq!(text.to_lowercase().parse::<CorrelationId>(), Ok(cid));
    }
    assert!("not a cid".parse::<CorrelationId>().is_err());
}

#[test]
fn cid_is_minted_now() {
    let (cids, reports) = (Cids::default(), Reports::default());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    assert!(records(&cids, 1, &reports).is_ok());
    let ts = u128::from(one_cid(&cids).timestamp_ms());
    assert!(ts >= before && ts < before + 60_000, "{ts} vs {before}");
}

// ---------------------------------------------------------------- Send

// Whether a value's type is `Send`, found at run time (autoref specialisation), so that a
// non-`Send` future fails this test instead of the whole file's build.
struct SendCheck<T>(PhantomData<T>);
trait IsSend {
    fn is_send(&self) -> bool {
        true
    }
}
impl<T: Send> IsSend for SendCheck<T> {}
trait NotSend {
    fn is_send(&self) -> bool {
        false
    }
}
impl<T> NotSend for &SendCheck<T> {}
fn send_check<T>(_: &T) -> SendCheck<T> {
    SendCheck(PhantomData)
}

#[retry(max = 2, delay = "1ms")]
async fn sendable(x: u32) -> Result<u32, E> {
    tokio::task::yield_now().await;
    Ok(x)
}

#[test]
#[allow(clippy::needless_borrow)] // the `&` picks the method
fn send_check_tells_send_from_not_send() {
    assert!((&send_check(&1u32)).is_send());
    assert!(!(&send_check(&std::rc::Rc::new(1))).is_send());
}

/// The future of an async `#[retry]` fn whose arguments are `Send` must be `Send`, or it
/// cannot be `tokio::spawn`ed on the multi-thread runtime.
#[test]
#[allow(clippy::needless_borrow)] // the `&` picks the method
fn async_call_future_is_send() {
    let fut = sendable(1);
    assert!(
        (&send_check(&fut)).is_send(),
        "the future of an async #[retry] fn is not Send"
    );
}

// ---------------------------------------------------------------- current_cid() inside the hooks

type Seen = RefCell<Vec<(&'static str, Option<CorrelationId>)>>;

fn saw(seen: &Seen, what: &'static str) {
    seen.borrow_mut().push((what, current_cid()));
}

#[retry(
    max = 1,
    delay = "0ms",
    when = |_: &E| { saw(seen, "when"); true },
    delay_from = |_: &E| { saw(seen, "delay_from"); None },
    on_retry = |_n, _e: &E, _d| saw(seen, "on_retry"),
    on_exhausted = |_r: &Report<E>| saw(seen, "on_exhausted"),
    fallback = |_r: Report<E>| { saw(seen, "fallback"); Ok(0) },
)]
fn cid_in_hooks(seen: &Seen) -> Result<u32, E> {
    saw(seen, "body");
    Err(E(1))
}

#[retry(
    max = 1,
    delay = "1ms",
    when = |_: &E| { saw(seen, "when"); true },
    delay_from = |_: &E| { saw(seen, "delay_from"); None },
    on_retry = |_n, _e: &E, _d| saw(seen, "on_retry"),
    on_exhausted = |_r: &Report<E>| saw(seen, "on_exhausted"),
    fallback = |_r: Report<E>| { saw(seen, "fallback"); Ok(0) },
)]
async fn cid_in_hooks_async(seen: &Seen) -> Result<u32, E> {
    saw(seen, "body");
    tokio::task::yield_now().await;
    Err(E(1))
}

/// Every hook ran and saw the body's cid.
fn check_hooks_saw_the_cid(seen: Seen) {
    let seen = seen.into_inner();
    let body = seen
        .iter()
        .find(|(w, _)| *w == "body")
        .and_then(|(_, c)| *c)
        .expect("current_cid() is Some in the body");
    let mut wrong = Vec::new();
    for hook in ["when", "delay_from", "on_retry", "on_exhausted", "fallback"] {
        let in_hook: Vec<_> = seen.iter().filter(|(w, _)| *w == hook).collect();
        assert!(!in_hook.is_empty(), "`{hook}` never ran: {seen:?}");
        if in_hook.iter().any(|(_, cid)| *cid != Some(body)) {
            wrong.push(hook);
        }
    }
    assert!(
        wrong.is_empty(),
        "current_cid() is not the call's {body} inside {wrong:?}: {seen:?}"
    );
}

#[test]
fn current_cid_is_the_calls_inside_every_hook_sync() {
    let seen = Seen::default();
    assert_eq!(cid_in_hooks(&seen), Ok(0));
    check_hooks_saw_the_cid(seen);
}

#[tokio::test(start_paused = true)]
async fn current_cid_is_the_calls_inside_every_hook_async() {
    let seen = Seen::default();
    assert_eq!(cid_in_hooks_async(&seen).await, Ok(0));
    check_hooks_saw_the_cid(seen);
}
