//! The backend-agnostic conformance suite: every [`Backend`](super::Backend) must pass each
//! case on a fresh, empty store. Each case drives time by hand through
//! [`Store::backend`](super::Store::backend) and panics (through `assert!`) on a violation.
//!
//! A backend's test file runs every case:
//!
//! ```text
//! #[tokio::test]
//! async fn lifecycle_success() {
//!     conformance::lifecycle_success(&fresh_store().await).await;
//! }
//! ```

#![allow(clippy::missing_panics_doc)] // every case panics on a violation: that is its purpose

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::{CallRecord, CallState, ListFilter, NewCall, Progress, Store, StoreError};
use crate::CorrelationId;

/// The suite's clock starts here (2023-11-14T22:13:20Z); every time is whole milliseconds.
pub const T0_MS: u64 = 1_700_000_000_000;

const LEASE: Duration = Duration::from_secs(30);

fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(T0_MS) + Duration::from_secs(secs)
}

fn names(functions: &[&str]) -> Vec<String> {
    functions.iter().map(|f| (*f).to_owned()).collect()
}

fn progress(attempts: u32, attempt_started: SystemTime) -> Progress {
    Progress {
        attempts,
        started_at: Some(at(0)),
        last_wait_ns: 2_000_000_000,
        attempt_started,
    }
}

async fn enqueue(store: &Store, function: &str, due_secs: u64) -> CorrelationId {
    let call = NewCall::new(function, r#"{"n":1}"#).due_at(at(due_secs));
    let cid = call.cid;
    store.backend().enqueue(vec![call], at(0)).await.unwrap();
    cid
}

async fn record(store: &Store, cid: CorrelationId) -> CallRecord {
    store.get(cid).await.unwrap().expect("the call is stored")
}

/// Enqueues a call of `function`, claims it as `worker` at `at(secs)`; returns the fence.
async fn running(store: &Store, function: &str, worker: &str, secs: u64) -> (CorrelationId, u64) {
    let cid = enqueue(store, function, secs).await;
    let claims = store
        .backend()
        .claim(worker, &names(&[function]), 1, LEASE, at(secs))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "the call just enqueued is claimed");
    assert_eq!(claims[0].record.cid, cid);
    (cid, claims[0].fence)
}

/// A call in each finished state, of `function`: (succeeded, dead, cancelled).
async fn finished(store: &Store, function: &str) -> (CorrelationId, CorrelationId, CorrelationId) {
    let b = store.backend();
    let (ok, fence) = running(store, function, "w", 0).await;
    assert!(b.complete(ok, fence, 1, at(0), at(1)).await.unwrap());
    let (dead, fence) = running(store, function, "w", 0).await;
    assert!(b
        .bury(
            dead,
            fence,
            Some(progress(3, at(0))),
            "exhausted".into(),
            Some("boom".into()),
            at(1)
        )
        .await
        .unwrap());
    let cancelled = enqueue(store, function, 0).await;
    assert!(b.cancel(cancelled, at(1)).await.unwrap());
    (ok, dead, cancelled)
}

/// pending → running → succeeded, with every field along the way.
pub async fn lifecycle_success(store: &Store) {
    let b = store.backend();
    let parent = CorrelationId::from_parts(T0_MS, 7);
    let call = NewCall::new("mail::send", r#"{"to":"a@example.com"}"#).with_parent(parent);
    let cid = call.cid;
    b.enqueue(vec![call], at(0)).await.unwrap();

    let r = record(store, cid).await;
    assert_eq!(r.state, CallState::Pending);
    assert_eq!(r.parent, Some(parent));
    assert_eq!(r.function, "mail::send");
    assert_eq!(r.args, r#"{"to":"a@example.com"}"#);
    assert_eq!((r.attempts, r.fence, r.last_wait_ns), (0, 0, 0));
    assert_eq!(r.created_at, at(0));
    assert_eq!(r.updated_at, at(0));
    assert_eq!(
        r.next_due_at,
        Some(at(0)),
        "no due time given: due at enqueue"
    );
    assert_eq!((r.worker, r.lease_until, r.started_at), (None, None, None));

    let claims = b
        .claim("w1", &names(&["mail::send"]), 10, LEASE, at(1))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    let claim = &claims[0];
    assert_eq!(claim.record.state, CallState::Running);
    assert_eq!(claim.record.worker.as_deref(), Some("w1"));
    assert_eq!(claim.record.lease_until, Some(at(31)));
    assert_eq!(claim.fence, 1);
    assert_eq!(claim.record.fence, 1);
    assert_eq!(claim.record.attempts, 0, "a claim is not an attempt");
    assert_eq!(record(store, cid).await, claim.record);

    assert!(b.complete(cid, claim.fence, 1, at(1), at(2)).await.unwrap());
    let r = record(store, cid).await;
    assert_eq!(r.state, CallState::Succeeded);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.first_attempt_at, Some(at(1)));
    assert_eq!(r.last_attempt_at, Some(at(1)));
    assert_eq!(r.started_at, Some(at(1)));
    assert_eq!((r.worker, r.lease_until, r.next_due_at), (None, None, None));
    assert_eq!(r.updated_at, at(2));
    assert!(
        !b.complete(cid, claim.fence, 1, at(1), at(3)).await.unwrap(),
        "a second outcome for the same claim is refused"
    );
}

/// pending → running → waiting → running → dead, with the engine's progress kept.
pub async fn lifecycle_retry_then_dead(store: &Store) {
    let b = store.backend();
    let (cid, fence) = running(store, "f", "w1", 0).await;
    assert!(b
        .reschedule(
            cid,
            fence,
            progress(1, at(0)),
            at(10),
            "boom 1".into(),
            at(1)
        )
        .await
        .unwrap());
    let r = record(store, cid).await;
    assert_eq!(r.state, CallState::Waiting);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.started_at, Some(at(0)));
    assert_eq!(r.last_wait_ns, 2_000_000_000);
    assert_eq!(r.next_due_at, Some(at(10)));
    assert_eq!(r.last_error.as_deref(), Some("boom 1"));
    assert_eq!((r.worker, r.lease_until), (None, None));

    let early = b
        .claim("w2", &names(&["f"]), 10, LEASE, at(9))
        .await
        .unwrap();
    assert!(
        early.is_empty(),
        "a waiting call is not claimed before it is due"
    );
    let claims = b
        .claim("w2", &names(&["f"]), 10, LEASE, at(10))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].fence, 2);
    assert_eq!(claims[0].record.attempts, 1);
    assert_eq!(claims[0].record.worker.as_deref(), Some("w2"));

    assert!(b
        .bury(
            cid,
            2,
            Some(progress(2, at(10))),
            "exhausted".into(),
            Some("boom 2".into()),
            at(11)
        )
        .await
        .unwrap());
    let r = record(store, cid).await;
    assert_eq!(r.state, CallState::Dead);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.dead_reason.as_deref(), Some("exhausted"));
    assert_eq!(r.last_error.as_deref(), Some("boom 2"));
    assert_eq!(r.first_attempt_at, Some(at(0)));
    assert_eq!(r.last_attempt_at, Some(at(10)));
    assert_eq!(r.next_due_at, None);
    let later = b
        .claim("w2", &names(&["f"]), 10, LEASE, at(1000))
        .await
        .unwrap();
    assert!(later.is_empty(), "a dead call is never claimed");
}

/// Burying without progress (arguments that no longer decode) leaves the attempt counts.
pub async fn bury_undecodable_keeps_attempts(store: &Store) {
    let b = store.backend();
    let (cid, fence) = running(store, "f", "w1", 0).await;
    assert!(b
        .reschedule(cid, fence, progress(2, at(0)), at(5), "boom".into(), at(1))
        .await
        .unwrap());
    let claims = b
        .claim("w1", &names(&["f"]), 1, LEASE, at(5))
        .await
        .unwrap();
    assert!(b
        .bury(
            cid,
            claims[0].fence,
            None,
            "arguments do not decode".into(),
            None,
            at(6)
        )
        .await
        .unwrap());
    let r = record(store, cid).await;
    assert_eq!(r.state, CallState::Dead);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.last_attempt_at, Some(at(0)));
    assert_eq!(r.dead_reason.as_deref(), Some("arguments do not decode"));
    assert_eq!(
        r.last_error.as_deref(),
        Some("boom"),
        "no new error: the last one is kept"
    );
}

/// Cancel works from pending, waiting and running, not from a finished state.
pub async fn cancel_from_each_state(store: &Store) {
    let b = store.backend();
    let pending = enqueue(store, "f", 100).await;
    assert!(b.cancel(pending, at(1)).await.unwrap());
    let r = record(store, pending).await;
    assert_eq!(r.state, CallState::Cancelled);
    assert_eq!(r.next_due_at, None);
    assert_eq!(r.updated_at, at(1));

    let (waiting, fence) = running(store, "f", "w1", 0).await;
    assert!(b
        .reschedule(
            waiting,
            fence,
            progress(1, at(0)),
            at(50),
            "boom".into(),
            at(1)
        )
        .await
        .unwrap());
    assert!(b.cancel(waiting, at(2)).await.unwrap());
    assert_eq!(record(store, waiting).await.state, CallState::Cancelled);

    let (run, fence) = running(store, "f", "w1", 0).await;
    assert!(b.cancel(run, at(2)).await.unwrap());
    let r = record(store, run).await;
    assert_eq!(r.state, CallState::Cancelled);
    assert!(r.fence > fence, "cancel raises the fence");
    assert_eq!(r.attempts, 1, "the interrupted attempt is counted");
    assert_eq!((r.worker.clone(), r.lease_until), (None, None));
    assert!(!b.complete(run, fence, 1, at(0), at(3)).await.unwrap());
    assert!(!b.renew(run, fence, LEASE, at(3)).await.unwrap());
    assert_eq!(
        record(store, run).await,
        r,
        "the late outcome changed nothing"
    );
    let none = b
        .claim("w2", &names(&["f"]), 10, LEASE, at(1000))
        .await
        .unwrap();
    assert!(none.is_empty(), "cancelled calls are never claimed");
}

/// A finished call cannot be cancelled; an unknown one neither.
pub async fn cancel_finished_is_refused(store: &Store) {
    let b = store.backend();
    let (ok, dead, cancelled) = finished(store, "f").await;
    for (cid, state) in [
        (ok, CallState::Succeeded),
        (dead, CallState::Dead),
        (cancelled, CallState::Cancelled),
    ] {
        let before = record(store, cid).await;
        assert!(
            !b.cancel(cid, at(5)).await.unwrap(),
            "{state} cannot be cancelled"
        );
        assert_eq!(record(store, cid).await, before);
    }
    assert!(!b.cancel(CorrelationId::new(), at(5)).await.unwrap());
}

/// An expired lease is claimed by another worker; the first worker's late writes are fenced off.
pub async fn lease_expiry_and_reclaim(store: &Store) {
    let b = store.backend();
    let (cid, old) = running(store, "f", "w1", 0).await;
    let f = names(&["f"]);
    assert!(
        b.claim("w2", &f, 10, LEASE, at(29))
            .await
            .unwrap()
            .is_empty(),
        "lease still held"
    );
    let claims = b.claim("w2", &f, 10, LEASE, at(30)).await.unwrap();
    assert_eq!(claims.len(), 1, "an expired lease is reclaimed");
    let new = claims[0].fence;
    assert!(new > old);
    assert_eq!(claims[0].record.worker.as_deref(), Some("w2"));
    assert_eq!(claims[0].record.lease_until, Some(at(60)));
    assert_eq!(claims[0].record.attempts, 0);

    let before = record(store, cid).await;
    assert!(!b.renew(cid, old, LEASE, at(31)).await.unwrap());
    assert!(!b.complete(cid, old, 1, at(0), at(31)).await.unwrap());
    assert!(!b
        .reschedule(cid, old, progress(1, at(0)), at(40), "late".into(), at(31))
        .await
        .unwrap());
    assert!(!b
        .bury(
            cid,
            old,
            Some(progress(1, at(0))),
            "late".into(),
            None,
            at(31)
        )
        .await
        .unwrap());
    assert!(!b
        .bury(cid, old, None, "late".into(), None, at(31))
        .await
        .unwrap());
    assert_eq!(
        record(store, cid).await,
        before,
        "fenced-off writes change nothing"
    );

    assert!(b.complete(cid, new, 1, at(30), at(32)).await.unwrap());
    assert_eq!(record(store, cid).await.state, CallState::Succeeded);
}

/// Renewing extends the lease, so no one else claims the call meanwhile.
pub async fn renew_extends_lease(store: &Store) {
    let b = store.backend();
    let (cid, fence) = running(store, "f", "w1", 0).await;
    assert!(b.renew(cid, fence, LEASE, at(20)).await.unwrap());
    let r = record(store, cid).await;
    assert_eq!(r.lease_until, Some(at(50)));
    assert_eq!(r.fence, fence, "renewing keeps the fence");
    let f = names(&["f"]);
    assert!(b
        .claim("w2", &f, 10, LEASE, at(40))
        .await
        .unwrap()
        .is_empty());
    assert_eq!(b.claim("w2", &f, 10, LEASE, at(50)).await.unwrap().len(), 1);
}

/// A worker shutting down hands its running calls back, due at once, fenced.
pub async fn release_on_shutdown(store: &Store) {
    let b = store.backend();
    let (a, fa) = running(store, "f", "w1", 0).await;
    let (c, fc) = running(store, "f", "w1", 0).await;
    let (other, fo) = running(store, "f", "w2", 0).await;
    assert_eq!(b.release("w1", at(5)).await.unwrap(), 2);
    for (cid, fence) in [(a, fa), (c, fc)] {
        let r = record(store, cid).await;
        assert_eq!(r.state, CallState::Waiting);
        assert_eq!(r.next_due_at, Some(at(5)));
        assert_eq!((r.worker.clone(), r.lease_until), (None, None));
        assert!(r.fence > fence);
        assert!(
            !b.complete(cid, fence, 1, at(0), at(6)).await.unwrap(),
            "late outcome fenced"
        );
        assert_eq!(record(store, cid).await, r);
    }
    let r = record(store, other).await;
    assert_eq!(
        r.state,
        CallState::Running,
        "another worker's calls are left"
    );
    assert_eq!(r.fence, fo);
    assert_eq!(b.release("w1", at(6)).await.unwrap(), 0);
    let claims = b
        .claim("w3", &names(&["f"]), 10, LEASE, at(5))
        .await
        .unwrap();
    assert_eq!(claims.len(), 2, "released calls are due at once");
}

/// Requeue puts one dead or cancelled call back to pending, reset.
pub async fn requeue_one(store: &Store) {
    let b = store.backend();
    let (ok, dead, cancelled) = finished(store, "f").await;
    assert!(b.requeue(dead, at(100)).await.unwrap());
    let r = record(store, dead).await;
    assert_eq!(r.state, CallState::Pending);
    assert_eq!(r.attempts, 0);
    assert_eq!(r.started_at, None);
    assert_eq!(r.dead_reason, None);
    assert_eq!(r.next_due_at, Some(at(100)));
    assert!(b.requeue(cancelled, at(100)).await.unwrap());
    assert_eq!(record(store, cancelled).await.state, CallState::Pending);

    assert!(
        !b.requeue(ok, at(100)).await.unwrap(),
        "a succeeded call is not requeued"
    );
    assert_eq!(record(store, ok).await.state, CallState::Succeeded);
    assert!(
        !b.requeue(dead, at(101)).await.unwrap(),
        "a pending call is not requeued"
    );
    assert!(!b.requeue(CorrelationId::new(), at(101)).await.unwrap());
    let claims = b
        .claim("w", &names(&["f"]), 10, LEASE, at(100))
        .await
        .unwrap();
    assert_eq!(claims.len(), 2, "requeued calls are due at once");
}

/// Requeue every dead call, of one function or all.
pub async fn requeue_all_dead(store: &Store) {
    let b = store.backend();
    let (_, f_dead, f_cancelled) = finished(store, "f").await;
    let (_, f_dead2, _) = finished(store, "f").await;
    let (_, g_dead, _) = finished(store, "g").await;
    assert_eq!(b.requeue_dead(Some("f"), at(10)).await.unwrap(), 2);
    assert_eq!(record(store, f_dead).await.state, CallState::Pending);
    assert_eq!(record(store, f_dead2).await.state, CallState::Pending);
    assert_eq!(
        record(store, g_dead).await.state,
        CallState::Dead,
        "other function left"
    );
    assert_eq!(
        record(store, f_cancelled).await.state,
        CallState::Cancelled,
        "only dead ones"
    );
    assert_eq!(b.requeue_dead(None, at(11)).await.unwrap(), 1);
    assert_eq!(record(store, g_dead).await.state, CallState::Pending);
    assert_eq!(b.requeue_dead(None, at(12)).await.unwrap(), 0);
}

/// Purge deletes finished calls of one state older than the age; unfinished states are refused.
pub async fn purge_by_state_and_age(store: &Store) {
    let b = store.backend();
    let (ok, dead, cancelled) = finished(store, "f").await; // all updated at at(1)
    let (young, fence) = running(store, "f", "w", 600).await;
    assert!(b.complete(young, fence, 1, at(600), at(601)).await.unwrap());
    let pending = enqueue(store, "f", 0).await;

    let now = at(901); // `ok` changed 900 s ago, `young` 300 s ago
    assert_eq!(
        b.purge(CallState::Succeeded, Duration::from_secs(600), now)
            .await
            .unwrap(),
        1
    );
    assert!(store.get(ok).await.unwrap().is_none());
    assert!(
        store.get(young).await.unwrap().is_some(),
        "too young to purge"
    );
    assert!(store.get(dead).await.unwrap().is_some(), "another state");
    assert_eq!(
        b.purge(CallState::Dead, Duration::from_secs(600), now)
            .await
            .unwrap(),
        1
    );
    assert!(store.get(dead).await.unwrap().is_none());
    assert_eq!(
        b.purge(CallState::Cancelled, Duration::ZERO, now)
            .await
            .unwrap(),
        1
    );
    assert!(store.get(cancelled).await.unwrap().is_none());

    for state in [CallState::Pending, CallState::Running, CallState::Waiting] {
        let err = b.purge(state, Duration::ZERO, now).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Invalid(_)),
            "purge {state}: {err}"
        );
    }
    assert_eq!(record(store, pending).await.state, CallState::Pending);
    assert_eq!(store.stats().await.unwrap().total(), 2);
}

/// Stats count calls per function and state.
pub async fn stats_counts(store: &Store) {
    assert_eq!(store.stats().await.unwrap().total(), 0);
    finished(store, "f").await;
    enqueue(store, "f", 0).await;
    enqueue(store, "g", 0).await;
    enqueue(store, "g", 0).await;
    running(store, "h", "w", 0).await;
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.total(), 7);
    assert_eq!(stats.count("f", CallState::Succeeded), 1);
    assert_eq!(stats.count("f", CallState::Dead), 1);
    assert_eq!(stats.count("f", CallState::Cancelled), 1);
    assert_eq!(stats.count("f", CallState::Pending), 1);
    assert_eq!(stats.count("g", CallState::Pending), 2);
    assert_eq!(stats.count("h", CallState::Running), 1);
    assert_eq!(stats.count("h", CallState::Pending), 0);
    assert_eq!(stats.count_state(CallState::Pending), 3);
    assert_eq!(
        stats.rows.len(),
        6,
        "one row per (function, state) with calls"
    );
}

/// List filters by state, function, age and count, oldest change first.
pub async fn list_filters(store: &Store) {
    let b = store.backend();
    let (ok, dead, cancelled) = finished(store, "f").await; // changed at at(1)
                                                            // Changed at at(0); due much later, so the claim of g2 below cannot take it instead.
    let g1 = enqueue(store, "g", 10_000).await;
    let (g2, fence) = running(store, "g", "w", 0).await;
    assert!(b.complete(g2, fence, 1, at(0), at(500)).await.unwrap());
    let now = at(600);
    let cids = |records: Vec<CallRecord>| records.into_iter().map(|r| r.cid).collect::<Vec<_>>();

    let all = b.list(&ListFilter::default(), now).await.unwrap();
    assert_eq!(all.len(), 5);
    assert_eq!(all[0].cid, g1, "oldest change first");
    assert!(all.windows(2).all(|w| w[0].updated_at <= w[1].updated_at));

    let f = ListFilter {
        state: Some(CallState::Succeeded),
        ..ListFilter::default()
    };
    let mut got = cids(b.list(&f, now).await.unwrap());
    got.sort();
    let mut want = vec![ok, g2];
    want.sort();
    assert_eq!(got, want);

    let f = ListFilter {
        function: Some("f".into()),
        ..ListFilter::default()
    };
    let mut got = cids(b.list(&f, now).await.unwrap());
    got.sort();
    let mut want = vec![ok, dead, cancelled];
    want.sort();
    assert_eq!(got, want);

    let f = ListFilter {
        older_than: Some(Duration::from_secs(300)),
        function: Some("g".into()),
        ..ListFilter::default()
    };
    assert_eq!(
        cids(b.list(&f, now).await.unwrap()),
        vec![g1],
        "g2 changed 100 s ago"
    );

    let f = ListFilter {
        state: Some(CallState::Succeeded),
        function: Some("g".into()),
        ..ListFilter::default()
    };
    assert_eq!(cids(b.list(&f, now).await.unwrap()), vec![g2]);

    let f = ListFilter {
        limit: Some(2),
        ..ListFilter::default()
    };
    assert_eq!(b.list(&f, now).await.unwrap().len(), 2);
    let f = ListFilter {
        state: Some(CallState::Waiting),
        ..ListFilter::default()
    };
    assert!(b.list(&f, now).await.unwrap().is_empty());
}

/// Only the functions a worker names are claimed; others stay untouched.
pub async fn only_registered_functions_claimed(store: &Store) {
    let b = store.backend();
    let f = enqueue(store, "known", 0).await;
    let g = enqueue(store, "unknown", 0).await;
    let before = record(store, g).await;
    let claims = b
        .claim("w", &names(&["known", "other"]), 10, LEASE, at(1))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].record.cid, f);
    assert_eq!(record(store, g).await, before, "unknown function untouched");
    assert!(b
        .claim("w", &[], 10, LEASE, at(1))
        .await
        .unwrap()
        .is_empty());
}

/// A claim takes at most `limit` calls, the earliest due first.
pub async fn claim_batch_limit(store: &Store) {
    let b = store.backend();
    let mut cids = Vec::new();
    for due in [4, 2, 0, 3, 1] {
        cids.push((due, enqueue(store, "f", due).await));
    }
    cids.sort_by_key(|(due, _)| *due);
    let f = names(&["f"]);
    let mut first: Vec<_> = b
        .claim("w", &f, 2, LEASE, at(10))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.record.cid)
        .collect();
    first.sort();
    let mut want = vec![cids[0].1, cids[1].1];
    want.sort();
    assert_eq!(first, want, "the two earliest due");
    assert_eq!(b.claim("w", &f, 2, LEASE, at(10)).await.unwrap().len(), 2);
    assert_eq!(b.claim("w", &f, 2, LEASE, at(10)).await.unwrap().len(), 1);
    assert!(b.claim("w", &f, 2, LEASE, at(10)).await.unwrap().is_empty());
    assert!(
        b.claim("w", &f, 0, LEASE, at(100))
            .await
            .unwrap()
            .is_empty(),
        "limit 0"
    );
}

/// The earliest time claimable work of the given functions comes due, leases included.
pub async fn next_due(store: &Store) {
    let b = store.backend();
    let f = names(&["f"]);
    assert_eq!(b.next_due(&f).await.unwrap(), None);
    enqueue(store, "f", 50).await;
    enqueue(store, "g", 5).await;
    assert_eq!(
        b.next_due(&f).await.unwrap(),
        Some(at(50)),
        "other functions ignored"
    );
    let (waiting, fence) = running(store, "f", "w", 0).await; // lease until at(30)
    assert_eq!(
        b.next_due(&f).await.unwrap(),
        Some(at(30)),
        "a lease's expiry"
    );
    assert!(b
        .reschedule(
            waiting,
            fence,
            progress(1, at(0)),
            at(40),
            "boom".into(),
            at(1)
        )
        .await
        .unwrap());
    assert_eq!(b.next_due(&f).await.unwrap(), Some(at(40)));
    assert!(b.cancel(waiting, at(2)).await.unwrap());
    assert_eq!(
        b.next_due(&f).await.unwrap(),
        Some(at(50)),
        "finished calls ignored"
    );
    assert_eq!(b.next_due(&names(&["f", "g"])).await.unwrap(), Some(at(5)));
    assert_eq!(b.next_due(&[]).await.unwrap(), None);
}

/// Enqueueing an ID twice is an error, and a failed enqueue stores none of its calls.
pub async fn duplicate_cid_is_an_error(store: &Store) {
    let b = store.backend();
    let a = enqueue(store, "f", 0).await;
    let fresh = NewCall::new("f", "null");
    let fresh_cid = fresh.cid;
    let again = NewCall::new("f", "[]").with_cid(a);
    let err = b.enqueue(vec![fresh, again], at(1)).await.unwrap_err();
    assert_eq!(err, StoreError::Duplicate(a));
    assert!(store.get(fresh_cid).await.unwrap().is_none(), "all or none");
    assert_eq!(
        record(store, a).await.args,
        r#"{"n":1}"#,
        "the first call is kept"
    );

    let bad = NewCall::new("f", "{not json");
    let bad_cid = bad.cid;
    let err = b.enqueue(vec![bad], at(1)).await.unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err}");
    assert!(store.get(bad_cid).await.unwrap().is_none());
    assert_eq!(store.stats().await.unwrap().total(), 1);
}

/// A call stored after its caller's own attempt failed (`persist = "on_failure"`) is stored
/// waiting, with that attempt's progress and error, and is claimed when due.
pub async fn enqueue_tried_waits_with_its_progress(store: &Store) {
    let b = store.backend();
    let p = Progress {
        attempts: 1,
        started_at: Some(at(10)),
        last_wait_ns: 7,
        attempt_started: at(10),
    };
    let call = NewCall::new("f", r#"{"n":1}"#)
        .due_at(at(15))
        .tried(p, "first attempt failed");
    let cid = call.cid;
    b.enqueue(vec![call], at(11)).await.unwrap();
    let r = record(store, cid).await;
    assert_eq!(r.state, CallState::Waiting);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.started_at, Some(at(10)));
    assert_eq!(r.first_attempt_at, Some(at(10)));
    assert_eq!(r.last_wait_ns, 7);
    assert_eq!(r.last_error.as_deref(), Some("first attempt failed"));
    assert_eq!(r.next_due_at, Some(at(15)));
    let early = b
        .claim("w", &names(&["f"]), 10, LEASE, at(14))
        .await
        .unwrap();
    assert!(early.is_empty(), "not due before its wait");
    let due = b
        .claim("w", &names(&["f"]), 10, LEASE, at(15))
        .await
        .unwrap();
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].record.attempts, 1);
}

/// A worker learns which of its running calls it no longer holds: cancelled, released, or
/// re-claimed by another worker after the lease ran out; the ones it holds are not named.
pub async fn lost_names_the_calls_no_longer_held(store: &Store) {
    let b = store.backend();
    let (kept, kept_fence) = running(store, "f", "w1", 0).await;
    let (cancelled, cancelled_fence) = running(store, "f", "w1", 0).await;
    let (stolen, stolen_fence) = running(store, "g", "w1", 0).await;
    let (finished, finished_fence) = running(store, "f", "w1", 0).await;
    let (other, other_fence) = running(store, "f", "w2", 0).await;
    assert!(b.lost("w1", &[]).await.unwrap().is_empty());
    let held = [
        (kept, kept_fence),
        (cancelled, cancelled_fence),
        (stolen, stolen_fence),
        (finished, finished_fence),
    ];
    assert!(b.lost("w1", &held).await.unwrap().is_empty(), "all held");
    assert!(b.cancel(cancelled, at(1)).await.unwrap());
    assert!(b
        .complete(finished, finished_fence, 1, at(0), at(1))
        .await
        .unwrap());
    // g's lease (until at(30)) runs out and w3 claims it.
    let taken = b
        .claim("w3", &names(&["g"]), 10, LEASE, at(31))
        .await
        .unwrap();
    assert_eq!(taken.len(), 1);
    let mut lost = b.lost("w1", &held).await.unwrap();
    lost.sort();
    let mut want = vec![cancelled, stolen, finished];
    want.sort();
    assert_eq!(lost, want);
    assert_eq!(
        b.lost("w2", &[(other, other_fence + 1)]).await.unwrap(),
        [other],
        "another fence is another claim"
    );
    assert!(b
        .lost("w2", &[(other, other_fence)])
        .await
        .unwrap()
        .is_empty());
}

/// The pending and waiting calls due at or before a time, counted per function and state:
/// the worker's look for calls no one claims.
pub async fn overdue_counts_due_calls(store: &Store) {
    let b = store.backend();
    enqueue(store, "typo", 5).await;
    enqueue(store, "typo", 5).await;
    enqueue(store, "typo", 50).await; // not yet due
    let (waiting, fence) = running(store, "f", "w", 0).await;
    assert!(b
        .reschedule(
            waiting,
            fence,
            progress(1, at(0)),
            at(8),
            "boom".into(),
            at(1)
        )
        .await
        .unwrap());
    running(store, "h", "w", 0).await; // running: not overdue
    let overdue = b.overdue(at(10)).await.unwrap();
    assert_eq!(overdue.count("typo", CallState::Pending), 2);
    assert_eq!(overdue.count("f", CallState::Waiting), 1);
    assert_eq!(overdue.total(), 3);
    assert_eq!(b.overdue(at(4)).await.unwrap().total(), 0);
}

/// A paused function's due calls, pending, waiting or with an expired lease, are neither
/// claimed nor counted by `next_due`; other functions' calls are; after resume they are
/// claimed again. Pausing twice keeps the first pause; resuming an unpaused function is `false`.
pub async fn paused_functions_are_not_claimed(store: &Store) {
    let b = store.backend();
    let (expired, _) = running(store, "f", "w1", 0).await; // lease until at(30)
    let pending = enqueue(store, "f", 0).await;
    let other = enqueue(store, "g", 0).await;
    assert!(b.paused().await.unwrap().is_empty());
    assert!(b.pause("f", "alice", at(1)).await.unwrap());
    assert!(!b.pause("f", "bob", at(2)).await.unwrap(), "already paused");
    let paused = b.paused().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(
        (
            paused[0].function.as_str(),
            paused[0].paused_at,
            paused[0].paused_by.as_str()
        ),
        ("f", at(1), "alice"),
        "the first pause is kept"
    );
    let both = names(&["f", "g"]);
    let claims = b.claim("w2", &both, 10, LEASE, at(60)).await.unwrap();
    assert_eq!(claims.len(), 1, "only the other function's call");
    assert_eq!(claims[0].record.cid, other);
    assert_eq!(record(store, pending).await.state, CallState::Pending);
    assert_eq!(record(store, expired).await.worker.as_deref(), Some("w1"));
    assert_eq!(
        b.next_due(&names(&["f"])).await.unwrap(),
        None,
        "paused: nothing due"
    );
    // Enqueueing still works while paused.
    let later = enqueue(store, "f", 0).await;
    assert!(b.resume("f").await.unwrap());
    assert!(!b.resume("f").await.unwrap(), "not paused any more");
    assert!(b.paused().await.unwrap().is_empty());
    assert_eq!(b.next_due(&names(&["f"])).await.unwrap(), Some(at(0)));
    let mut claimed: Vec<_> = b
        .claim("w2", &both, 10, LEASE, at(61))
        .await
        .unwrap()
        .into_iter()
        .map(|c| c.record.cid)
        .collect();
    claimed.sort();
    let mut want = vec![expired, pending, later];
    want.sort();
    assert_eq!(claimed, want, "every due call of the resumed function");
}

/// Pausing one function leaves the others' claims alone, and functions are paused by exact
/// name.
pub async fn pause_is_per_function(store: &Store) {
    let b = store.backend();
    enqueue(store, "mail::send", 0).await;
    enqueue(store, "mail::send_all", 0).await;
    assert!(b.pause("mail::send", "ops", at(0)).await.unwrap());
    let claims = b
        .claim(
            "w",
            &names(&["mail::send", "mail::send_all"]),
            10,
            LEASE,
            at(1),
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].record.function, "mail::send_all");
}

/// A typed call scheduled for later (`.after(d)`, `.at(t)`) is stored with that due time:
/// not claimed before it, claimed once the claim's clock reaches it, and its due time is the
/// worker's next wake-up.
pub async fn scheduled_calls_are_claimed_once_due(store: &Store) {
    struct Remind {}
    impl super::DurableFn for Remind {
        const NAME: &'static str = "conformance::remind";
    }
    let call = |n: u32| super::DurableCall::<Remind>::__build(move |out| out.put("n", &n));
    let b = store.backend();
    let f = names(&[<Remind as super::DurableFn>::NAME]);
    let hour = Duration::from_secs(3600);
    let later = call(1).after(hour);
    let exact = call(2).at(at(7200));
    let (later_cid, exact_cid) = (later.cid(), exact.cid());
    let calls = vec![
        later.into_new_call(at(0)).unwrap(),
        exact.into_new_call(at(0)).unwrap(),
    ];
    b.enqueue(calls, at(0)).await.unwrap();
    let rec = record(store, later_cid).await;
    assert_eq!(rec.state, CallState::Pending);
    assert_eq!(
        rec.next_due_at,
        Some(at(3600)),
        "due an hour after the enqueue"
    );
    assert_eq!(rec.args, r#"{"n":1}"#);
    assert_eq!(record(store, exact_cid).await.next_due_at, Some(at(7200)));
    assert_eq!(b.next_due(&f).await.unwrap(), Some(at(3600)));

    for secs in [0, 1, 3599] {
        let claims = b.claim("w", &f, 10, LEASE, at(secs)).await.unwrap();
        assert!(claims.is_empty(), "nothing is due at {secs} s");
    }
    let claims = b.claim("w", &f, 10, LEASE, at(3600)).await.unwrap();
    assert_eq!(claims.len(), 1, "the call due in an hour, at its due time");
    assert_eq!(claims[0].record.cid, later_cid);
    let fence = claims[0].fence;
    assert!(b
        .complete(later_cid, fence, 1, at(3600), at(3601))
        .await
        .unwrap());
    assert!(b
        .claim("w", &f, 10, LEASE, at(7199))
        .await
        .unwrap()
        .is_empty());
    let claims = b.claim("w", &f, 10, LEASE, at(7200)).await.unwrap();
    assert_eq!(claims.len(), 1, "the call due at a time, at that time");
    assert_eq!(claims[0].record.cid, exact_cid);
}
