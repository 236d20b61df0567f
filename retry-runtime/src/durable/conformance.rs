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

use super::{
    AttemptOutcome, AuditEntry, CallRecord, CallState, ListFilter, NewCall, Progress, Store,
    StoreError,
};
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

/// A worker of the conformance suite, registered at `at(secs)` with a 5 s heartbeat.
fn new_worker(id: &str, secs: u64) -> super::NewWorker {
    super::NewWorker {
        id: id.to_owned(),
        host: format!("host-of-{id}"),
        pid: 4242,
        started_at: at(secs),
        heartbeat_interval: Duration::from_secs(5),
    }
}

/// The workers' rows: registered, refreshed by heartbeats, gone after three missed ones
/// (with the calls they still hold), stopped on a clean shutdown, registered again, and
/// deleted a day after they went.
pub async fn workers_heartbeats_and_gone(store: &Store) {
    use super::WorkerStatus::{Gone, Live, Stopped};
    let b = store.backend();
    assert!(b.workers(at(0)).await.unwrap().is_empty(), "a fresh store");
    b.register_worker(&new_worker("w1", 0), at(0))
        .await
        .unwrap();
    b.register_worker(&new_worker("w2", 0), at(0))
        .await
        .unwrap();
    let (held, _) = running(store, "f", "w2", 1).await;

    assert!(b.worker_heartbeat("w1", 2, at(10)).await.unwrap());
    assert!(
        !b.worker_heartbeat("nobody", 0, at(10)).await.unwrap(),
        "no row: the worker registers again"
    );
    let ws = b.workers(at(12)).await.unwrap();
    assert_eq!(ws.len(), 2);
    let w1 = ws.iter().find(|w| w.id == "w1").unwrap();
    assert_eq!(
        (w1.host.as_str(), w1.pid, w1.started_at, w1.heartbeat_at),
        ("host-of-w1", 4242, at(0), at(10))
    );
    assert_eq!((w1.running, w1.status, w1.stopped_at), (2, Live, None));
    assert_eq!(w1.heartbeat_interval, Duration::from_secs(5));
    assert_eq!(w1.heartbeat_age(at(12)), Duration::from_secs(2));
    assert!(w1.held.is_empty());
    let w2 = ws.iter().find(|w| w.id == "w2").unwrap();
    assert_eq!(
        w2.status, Live,
        "12 s without a heartbeat: under 3 intervals"
    );
    assert_eq!(w2.held, vec![held], "the call it claimed");

    // 16 s after its last heartbeat, w2 missed three: gone, still holding its call.
    let ws = b.workers(at(16)).await.unwrap();
    let ids: Vec<(&str, super::WorkerStatus)> =
        ws.iter().map(|w| (w.id.as_str(), w.status)).collect();
    assert_eq!(ids, [("w1", Live), ("w2", Gone)], "live ones first");
    assert_eq!(ws[1].held, vec![held]);

    // A clean stop; a late heartbeat does not bring it back.
    assert!(b.worker_stopped("w1", at(20)).await.unwrap());
    assert!(!b.worker_heartbeat("w1", 1, at(21)).await.unwrap());
    let ws = b.workers(at(22)).await.unwrap();
    let w1 = ws.iter().find(|w| w.id == "w1").unwrap();
    assert_eq!(
        (w1.status, w1.stopped_at, w1.running),
        (Stopped, Some(at(20)), 0)
    );
    assert_eq!(w1.heartbeat_at, at(10), "the stop is not a heartbeat");
    assert_eq!(ws.last().unwrap().id, "w1", "stopped ones last");

    // Registering again clears the stop.
    b.register_worker(&new_worker("w1", 30), at(30))
        .await
        .unwrap();
    let ws = b.workers(at(31)).await.unwrap();
    let w1 = ws.iter().find(|w| w.id == "w1").unwrap();
    assert_eq!(
        (w1.status, w1.started_at, w1.stopped_at),
        (Live, at(30), None)
    );

    // A day later, a new worker's registration deletes the rows silent for over a day (w2's
    // last heartbeat was at 0), and keeps the others (w1's was at 30).
    let day = super::WORKER_ROWS_KEPT.as_secs();
    b.register_worker(&new_worker("w3", day + 25), at(day + 25))
        .await
        .unwrap();
    let ws = b.workers(at(day + 25)).await.unwrap();
    let ids: Vec<(&str, super::WorkerStatus)> =
        ws.iter().map(|w| (w.id.as_str(), w.status)).collect();
    assert_eq!(ids, [("w3", Live), ("w1", Gone)]);
}
/// The enqueuer's trace context is stored as given (several calls at once, with and without
/// one) and comes back with the record and with the claim, which the worker reads it from.
pub async fn trace_context_is_kept(store: &Store) {
    let b = store.backend();
    let parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nvendor=a";
    let mut traced = NewCall::new("traced", "[]");
    traced.trace_context = Some(parent.to_owned());
    let plain = NewCall::new("traced", "[]");
    let (traced_cid, plain_cid) = (traced.cid, plain.cid);
    b.enqueue(vec![traced, plain], at(0)).await.unwrap();
    assert_eq!(
        record(store, traced_cid).await.trace_context.as_deref(),
        Some(parent)
    );
    assert_eq!(record(store, plain_cid).await.trace_context, None);
    let claims = b
        .claim("w", &names(&["traced"]), 10, LEASE, at(1))
        .await
        .unwrap();
    assert_eq!(claims.len(), 2);
    for claim in claims {
        let expected = (claim.record.cid == traced_cid).then_some(parent);
        assert_eq!(claim.record.trace_context.as_deref(), expected);
    }
}

// == Results and waiting (`durable/wait.rs`) ==

/// A success's result (its function's `Ok` value as JSON) is written with it, only under the
/// current claim, read back in the call's record, and purged with the call.
pub async fn result_kept_with_success_and_purged(store: &Store) {
    let b = store.backend();
    let (cid, fence) = running(store, "f", "w", 0).await;
    assert_eq!(record(store, cid).await.result, None, "no result before");
    let json = r#"{"id":7,"lines":["a","b"]}"#;
    assert!(
        !b.complete_with_result(cid, fence + 1, 1, at(0), Some(json.into()), at(1))
            .await
            .unwrap(),
        "a stale claim's result is refused"
    );
    assert_eq!(record(store, cid).await.result, None);
    assert!(b
        .complete_with_result(cid, fence, 1, at(0), Some(json.into()), at(1))
        .await
        .unwrap());
    let r = record(store, cid).await;
    assert_eq!(
        (r.state, r.result.as_deref()),
        (CallState::Succeeded, Some(json))
    );
    assert_eq!(r.updated_at, at(1));
    let listed = store.list(&ListFilter::default()).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].result.as_deref(), Some(json), "listed with it");

    let (plain, fence) = running(store, "f", "w", 0).await;
    assert!(b.complete(plain, fence, 1, at(0), at(1)).await.unwrap());
    assert_eq!(record(store, plain).await.result, None, "no result kept");

    assert_eq!(
        b.purge(CallState::Succeeded, Duration::ZERO, at(2))
            .await
            .unwrap(),
        2
    );
    assert!(store.get(cid).await.unwrap().is_none(), "purged with it");
    let err = store.wait(cid).await.unwrap_err();
    assert!(
        matches!(err, StoreError::Invalid(_)),
        "a purged call: {err}"
    );
}

/// Waiting for a call already finished returns at once, with how it finished: succeeded
/// with its result, dead with its reason and error, cancelled; typed, the result decoded or
/// why there is none. An unknown call is an error.
pub async fn wait_on_finished_calls_returns_at_once(store: &Store) {
    use super::{Finished, WaitError};
    let b = store.backend();
    let (ok, fence) = running(store, "f", "w", 0).await;
    assert!(b
        .complete_with_result(ok, fence, 2, at(0), Some("[1,2]".into()), at(1))
        .await
        .unwrap());
    let (dead, fence) = running(store, "f", "w", 0).await;
    let reason = "max retries exhausted".to_owned();
    assert!(b
        .bury(
            dead,
            fence,
            Some(progress(3, at(0))),
            reason.clone(),
            Some("boom".into()),
            at(1)
        )
        .await
        .unwrap());
    let cancelled = enqueue(store, "f", 0).await;
    assert!(b.cancel(cancelled, at(1)).await.unwrap());

    let at_once = Duration::from_secs(5);
    let wait = |cid| tokio::time::timeout(at_once, store.wait(cid));
    assert_eq!(
        wait(ok).await.expect("at once").unwrap(),
        Finished::Succeeded {
            result: Some("[1,2]".into()),
            attempts: 2
        }
    );
    assert_eq!(
        wait(dead).await.expect("at once").unwrap(),
        Finished::Dead {
            reason: reason.clone(),
            error: Some("boom".into()),
            attempts: 3
        }
    );
    assert_eq!(
        wait(cancelled).await.expect("at once").unwrap(),
        Finished::Cancelled {
            error: None,
            attempts: 0
        }
    );

    assert_eq!(store.wait_for::<Vec<u8>>(ok).await.unwrap(), [1, 2]);
    assert!(matches!(
        store.wait_for::<String>(ok).await,
        Err(WaitError::Value(_))
    ));
    assert_eq!(
        store.wait_for::<u8>(dead).await,
        Err(WaitError::Dead {
            reason,
            error: Some("boom".into())
        })
    );
    assert_eq!(
        store.wait_for::<u8>(cancelled).await,
        Err(WaitError::Cancelled)
    );
    let unknown = CorrelationId::from_parts(T0_MS, 99);
    assert!(matches!(
        store.wait(unknown).await,
        Err(StoreError::Invalid(_))
    ));
}

/// A waiter on an unfinished call is woken by its outcome written through the store (or a
/// clone: the workers'), whether it succeeds, is buried or is cancelled: well before the slow
/// poll (500 ms) that stands in when nothing wakes it.
pub async fn wait_is_woken_by_each_outcome(store: &Store) {
    use super::Finished;
    let (ok, ok_fence) = running(store, "f", "w", 0).await;
    let (dead, dead_fence) = running(store, "f", "w", 0).await;
    let cancelled = enqueue(store, "f", 0).await;
    let writer = store.clone();
    let started = std::time::Instant::now();
    let (a, b, c, ()) = tokio::join!(
        store.wait(ok),
        store.wait(dead),
        store.wait(cancelled),
        async {
            tokio::time::sleep(Duration::from_millis(50)).await;
            assert!(writer
                .complete_with_result(ok, ok_fence, 1, at(0), Some("\"done\"".into()))
                .await
                .unwrap());
            assert!(writer
                .bury(dead, dead_fence, Some(progress(1, at(0))), "r".into(), None)
                .await
                .unwrap());
            assert!(writer.cancel(cancelled).await.unwrap());
        }
    );
    let took = started.elapsed();
    assert_eq!(
        a.unwrap(),
        Finished::Succeeded {
            result: Some("\"done\"".into()),
            attempts: 1
        }
    );
    assert!(matches!(b.unwrap(), Finished::Dead { .. }));
    assert!(matches!(c.unwrap(), Finished::Cancelled { .. }));
    assert!(
        took < Duration::from_millis(450),
        "woken by the outcomes, not by a poll: {took:?}"
    );
}

// == The attempt history and the audit ==

/// The attempts of `cid`: (number, outcome, worker, started, ended, error).
async fn attempts_of(
    store: &Store,
    cid: CorrelationId,
) -> Vec<(
    u32,
    AttemptOutcome,
    Option<String>,
    SystemTime,
    SystemTime,
    Option<String>,
)> {
    store
        .attempts(cid)
        .await
        .unwrap()
        .into_iter()
        .map(|a| {
            assert_eq!(a.cid, cid);
            (
                a.attempt,
                a.outcome,
                a.worker,
                a.started_at,
                a.ended_at,
                a.error,
            )
        })
        .collect()
}

/// Each outcome writes its attempt: a retry, a success, a dead letter, a cancel of a running
/// call; a burial without an attempt (undecodable arguments) and a cancel of a waiting call
/// write none.
pub async fn attempts_are_recorded_with_each_outcome(store: &Store) {
    use AttemptOutcome::{Cancelled, Dead, Failed, Succeeded};
    let b = store.backend();
    let w = |s: &str| Some(s.to_owned());
    let (cid, fence) = running(store, "f", "w1", 0).await;
    assert!(store.attempts(cid).await.unwrap().is_empty());
    let p = progress(1, at(1));
    assert!(b
        .reschedule(cid, fence, p, at(10), "boom <1>".into(), at(3))
        .await
        .unwrap());
    let claims = b
        .claim("w2", &names(&["f"]), 1, LEASE, at(10))
        .await
        .unwrap();
    assert!(b
        .complete(cid, claims[0].fence, 2, at(11), at(12))
        .await
        .unwrap());
    assert_eq!(
        attempts_of(store, cid).await,
        [
            (1, Failed, w("w1"), at(1), at(3), Some("boom <1>".into())),
            (2, Succeeded, w("w2"), at(11), at(12), None),
        ]
    );
    let record = store.attempts(cid).await.unwrap();
    assert_eq!(record[0].duration(), Duration::from_secs(2));

    let (dead, fence) = running(store, "f", "w3", 20).await;
    let p = progress(1, at(20));
    assert!(b
        .bury(
            dead,
            fence,
            Some(p),
            "exhausted".into(),
            Some("fatal".into()),
            at(21)
        )
        .await
        .unwrap());
    assert_eq!(
        attempts_of(store, dead).await,
        [(1, Dead, w("w3"), at(20), at(21), Some("fatal".into()))]
    );

    let (undecodable, fence) = running(store, "f", "w3", 30).await;
    assert!(b
        .bury(undecodable, fence, None, "arguments".into(), None, at(31))
        .await
        .unwrap());
    assert!(store.attempts(undecodable).await.unwrap().is_empty());

    // A running call cancelled: its attempt started at the claim, by the claiming worker.
    let (cancelled, _) = running(store, "f", "w4", 40).await;
    assert!(b.cancel(cancelled, at(45)).await.unwrap());
    assert_eq!(
        attempts_of(store, cancelled).await,
        [(1, Cancelled, w("w4"), at(40), at(45), None)]
    );
    let waiting = enqueue(store, "f", 100).await;
    assert!(b.cancel(waiting, at(46)).await.unwrap());
    assert!(store.attempts(waiting).await.unwrap().is_empty());
}

/// An outcome refused for a stale fence (the lease ran out and another worker claimed the
/// call; the call was cancelled or released) writes no attempt.
pub async fn stale_fence_writes_no_attempt(store: &Store) {
    let b = store.backend();
    let (cid, old) = running(store, "f", "w1", 0).await;
    let claims = b
        .claim("w2", &names(&["f"]), 1, LEASE, at(31))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "the lease ran out: w2 takes the call");
    let new = claims[0].fence;
    assert!(!b.complete(cid, old, 1, at(0), at(32)).await.unwrap());
    assert!(!b
        .reschedule(cid, old, progress(1, at(0)), at(40), "late".into(), at(32))
        .await
        .unwrap());
    assert!(!b
        .bury(cid, old, Some(progress(1, at(0))), "x".into(), None, at(32))
        .await
        .unwrap());
    assert!(
        store.attempts(cid).await.unwrap().is_empty(),
        "the stale worker's outcomes wrote nothing"
    );
    assert!(b.complete(cid, new, 1, at(31), at(33)).await.unwrap());
    let attempts = store.attempts(cid).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].worker.as_deref(), Some("w2"));
    // A late repeat of the recorded outcome writes nothing either.
    assert!(!b.complete(cid, new, 1, at(31), at(34)).await.unwrap());
    assert_eq!(store.attempts(cid).await.unwrap().len(), 1);
}

/// The store keeps the latest [`ATTEMPTS_KEPT`](super::ATTEMPTS_KEPT) attempts of a call; the
/// numbers go on after a requeue.
pub async fn attempts_are_bounded(store: &Store) {
    let b = store.backend();
    let kept = super::ATTEMPTS_KEPT;
    let (cid, mut fence) = running(store, "f", "w", 0).await;
    let total = kept + 5;
    for n in 1..=total {
        let s = u64::from(n) * 10;
        let p = progress(n, at(s));
        if n == total {
            assert!(b
                .bury(cid, fence, Some(p), "exhausted".into(), None, at(s + 1))
                .await
                .unwrap());
            break;
        }
        let error = format!("failure {n}");
        assert!(b
            .reschedule(cid, fence, p, at(s + 5), error, at(s + 1))
            .await
            .unwrap());
        let claims = b
            .claim("w", &names(&["f"]), 1, LEASE, at(s + 5))
            .await
            .unwrap();
        fence = claims[0].fence;
    }
    let attempts = store.attempts(cid).await.unwrap();
    let numbers: Vec<u32> = attempts.iter().map(|a| a.attempt).collect();
    assert_eq!(numbers, (total - kept + 1..=total).collect::<Vec<_>>());
    assert_eq!(attempts[0].error.as_deref(), Some("failure 6"));
    assert_eq!(attempts.last().unwrap().outcome, AttemptOutcome::Dead);

    assert!(b.requeue(cid, at(1000)).await.unwrap());
    let claims = b
        .claim("w", &names(&["f"]), 1, LEASE, at(1000))
        .await
        .unwrap();
    assert!(b
        .complete(cid, claims[0].fence, 1, at(1000), at(1001))
        .await
        .unwrap());
    let attempts = store.attempts(cid).await.unwrap();
    assert_eq!(attempts.len(), kept as usize);
    assert_eq!(attempts.last().unwrap().attempt, total + 1);
    assert_eq!(attempts.last().unwrap().outcome, AttemptOutcome::Succeeded);
}

/// A purge deletes the attempts of the calls it deletes, and no others.
pub async fn purge_deletes_attempts(store: &Store) {
    let (ok, dead, _) = finished(store, "f").await;
    assert_eq!(store.attempts(ok).await.unwrap().len(), 1);
    assert_eq!(store.attempts(dead).await.unwrap().len(), 1);
    let purged = store
        .backend()
        .purge(CallState::Dead, Duration::ZERO, at(10))
        .await
        .unwrap();
    assert_eq!(purged, 1);
    assert!(store.attempts(dead).await.unwrap().is_empty());
    assert_eq!(store.attempts(ok).await.unwrap().len(), 1);
}

/// The audit: records newest first, a keyset page at a time; a pause and a resume through
/// the store write theirs, with who did it and whether it changed anything.
pub async fn audit_records_newest_first_in_pages(store: &Store) {
    let b = store.backend();
    assert!(b.audit(None, 10).await.unwrap().is_empty());
    for n in 0..5_u64 {
        let entry = AuditEntry::new("cli:ops", "requeue", format!("call {n}"), n);
        b.record_audit(entry, at(n)).await.unwrap();
    }
    let first = b.audit(None, 2).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!(
        (
            first[0].at,
            first[0].entry.target.as_str(),
            first[0].entry.count
        ),
        (at(4), "call 4", 4)
    );
    assert_eq!(first[1].entry.target, "call 3");
    assert!(first[0].id > first[1].id);
    let second = b.audit(Some(first[1].id), 2).await.unwrap();
    let targets: Vec<_> = second.iter().map(|r| r.entry.target.as_str()).collect();
    assert_eq!(targets, ["call 2", "call 1"]);
    let last = b.audit(Some(second[1].id), 2).await.unwrap();
    assert_eq!(last.len(), 1);
    assert_eq!(
        last[0].entry,
        AuditEntry::new("cli:ops", "requeue", "call 0", 0)
    );

    assert!(store.pause("f", "alice").await.unwrap());
    assert!(!store.pause("f", "bob").await.unwrap());
    assert!(store.resume("f", "carol").await.unwrap());
    let recent: Vec<AuditEntry> = store
        .audit(None, 3)
        .await
        .unwrap()
        .into_iter()
        .map(|r| r.entry)
        .collect();
    assert_eq!(
        recent,
        [
            AuditEntry::new("carol", "resume", "f", 1),
            AuditEntry::new("bob", "pause", "f", 0),
            AuditEntry::new("alice", "pause", "f", 1),
        ]
    );
}

/// A call stored after its caller's own attempt failed (`persist = "on_failure"`) starts its
/// history with that attempt, run by no worker.
pub async fn the_callers_attempt_starts_the_history(store: &Store) {
    let b = store.backend();
    let p = progress(1, at(10));
    let call = NewCall::new("f", "[]")
        .due_at(at(15))
        .tried(p, "first attempt failed");
    let cid = call.cid;
    let plain = NewCall::new("f", "[]");
    let untried = plain.cid;
    b.enqueue(vec![call, plain], at(11)).await.unwrap();
    assert_eq!(
        attempts_of(store, cid).await,
        [(
            1,
            AttemptOutcome::Failed,
            None,
            at(10),
            at(11),
            Some("first attempt failed".into())
        )]
    );
    assert!(store.attempts(untried).await.unwrap().is_empty());
    let claims = b
        .claim("w", &names(&["f"]), 10, LEASE, at(15))
        .await
        .unwrap();
    let fence = claims.iter().find(|c| c.record.cid == cid).unwrap().fence;
    assert!(b.complete(cid, fence, 2, at(16), at(17)).await.unwrap());
    let attempts = attempts_of(store, cid).await;
    assert_eq!(attempts.len(), 2);
    assert_eq!(
        (attempts[1].0, attempts[1].1, attempts[1].2.as_deref()),
        (2, AttemptOutcome::Succeeded, Some("w"))
    );
}

/// `max_running`: a claim takes no more calls of a limited function than its limit minus its
/// calls running under a lease that has not run out, whatever the worker and the batch;
/// unlimited functions beside it are claimed as before; `next_due` leaves a full function's
/// pending calls out (but not its leases' ends); a finished attempt or an expired lease makes
/// room again.
pub async fn limited_function_claims_only_its_room(store: &Store) {
    let b = store.backend();
    let declared = vec![("f".to_owned(), Some(2)), ("g".to_owned(), None)];
    b.declare_limits(&declared, at(0)).await.unwrap();
    for _ in 0..5 {
        enqueue(store, "f", 0).await;
    }
    for _ in 0..3 {
        enqueue(store, "g", 0).await;
    }
    let both = names(&["f", "g"]);
    let first = b.claim("w1", &both, 10, LEASE, at(1)).await.unwrap();
    let of =
        |claims: &[super::Claim], f: &str| claims.iter().filter(|c| c.record.function == f).count();
    assert_eq!(
        (of(&first, "f"), of(&first, "g")),
        (2, 3),
        "f up to its limit, g all"
    );
    assert!(
        b.claim("w2", &both, 10, LEASE, at(2))
            .await
            .unwrap()
            .is_empty(),
        "another worker finds no room"
    );
    assert_eq!(
        b.next_due(&names(&["f"])).await.unwrap(),
        Some(at(31)),
        "full: its pending calls are not due, the end of its leases is"
    );
    let done = first.iter().find(|c| c.record.function == "f").unwrap();
    assert!(b
        .complete(done.record.cid, done.fence, 1, at(1), at(3))
        .await
        .unwrap());
    assert_eq!(b.next_due(&names(&["f"])).await.unwrap(), Some(at(0)));
    let second = b.claim("w2", &both, 10, LEASE, at(4)).await.unwrap();
    assert_eq!(of(&second, "f"), 1, "one finished: room for one");
    assert!(b
        .claim("w3", &both, 10, LEASE, at(5))
        .await
        .unwrap()
        .is_empty());
    // The first claim's lease ends at 31: its attempt no longer counts as running.
    let third = b.claim("w3", &both, 10, LEASE, at(31)).await.unwrap();
    assert_eq!(of(&third, "f"), 1, "an expired lease frees its slot");
    let running = b
        .list(
            &ListFilter {
                state: Some(CallState::Running),
                function: Some("f".into()),
                ..ListFilter::default()
            },
            at(31),
        )
        .await
        .unwrap();
    let live = running
        .iter()
        .filter(|r| r.lease_until.is_some_and(|l| l > at(31)))
        .count();
    assert_eq!(live, 2, "never more than the limit under a live lease");
    // A batch smaller than the room takes the batch.
    for r in running.iter().filter(|r| r.lease_until > Some(at(31))) {
        assert!(b.complete(r.cid, r.fence, 1, at(31), at(32)).await.unwrap());
    }
    assert_eq!(
        b.claim("w4", &both, 1, LEASE, at(33)).await.unwrap().len(),
        1
    );
}

/// An operator's limit wins over the declared one, also when a worker declares again later;
/// cleared, the declared one applies again; a function whose attribute drops its limit is
/// unlimited; a limit of 0 is refused.
pub async fn operator_limit_wins_over_declared(store: &Store) {
    let b = store.backend();
    assert!(b.limits().await.unwrap().is_empty());
    b.declare_limits(&[("f".to_owned(), Some(3))], at(0))
        .await
        .unwrap();
    assert!(b.set_limit("f", Some(1), at(1)).await.unwrap());
    b.declare_limits(&[("f".to_owned(), Some(3))], at(2))
        .await
        .unwrap();
    let limits = b.limits().await.unwrap();
    assert_eq!(limits.len(), 1);
    assert_eq!(
        (
            limits[0].function.as_str(),
            limits[0].declared,
            limits[0].operator,
            limits[0].effective()
        ),
        ("f", Some(3), Some(1), Some(1))
    );
    for _ in 0..6 {
        enqueue(store, "f", 0).await;
    }
    let f = names(&["f"]);
    assert_eq!(b.claim("w", &f, 10, LEASE, at(3)).await.unwrap().len(), 1);
    assert!(b.set_limit("f", None, at(4)).await.unwrap());
    assert!(
        !b.set_limit("f", None, at(4)).await.unwrap(),
        "no operator's limit left to clear"
    );
    assert_eq!(b.limits().await.unwrap()[0].effective(), Some(3));
    assert_eq!(
        b.claim("w", &f, 10, LEASE, at(5)).await.unwrap().len(),
        2,
        "the declared limit again"
    );
    assert!(matches!(
        b.set_limit("f", Some(0), at(6)).await,
        Err(StoreError::Invalid(_))
    ));
    b.declare_limits(&[("f".to_owned(), None)], at(7))
        .await
        .unwrap();
    assert!(b.limits().await.unwrap().is_empty(), "no limit left");
    assert_eq!(
        b.claim("w", &f, 10, LEASE, at(8)).await.unwrap().len(),
        3,
        "unlimited: every due call"
    );
    // An operator may limit a function no worker declared a limit for.
    assert!(b.set_limit("g", Some(1), at(9)).await.unwrap());
    enqueue(store, "g", 0).await;
    enqueue(store, "g", 0).await;
    assert_eq!(
        b.claim("w", &names(&["g"]), 10, LEASE, at(10))
            .await
            .unwrap()
            .len(),
        1
    );
}

// == Uniqueness (`durable/unique.rs`) ==

/// A call of `function` with the unique key `key` (kept `keep_secs` after success, if any).
fn unique_call(function: &str, key: &str, keep_secs: Option<u64>) -> NewCall {
    let unique = super::Unique::new(key);
    let unique = match keep_secs {
        Some(s) => unique.keep_for(Duration::from_secs(s)),
        None => unique,
    };
    NewCall::new(function, r#"{"n":1}"#).unique(unique)
}

/// Claims the one due call of `function` at `at(secs)`; returns its fence.
async fn claim_one(store: &Store, function: &str, cid: CorrelationId, secs: u64) -> u64 {
    let claims = store
        .backend()
        .claim("w", &names(&[function]), 10, LEASE, at(secs))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1, "one call of {function} is due");
    assert_eq!(claims[0].record.cid, cid);
    claims[0].fence
}

/// An equal call (same function, same key) enqueued while the first is unfinished (pending,
/// running, waiting) gets the first one's ID and stores nothing; other keys and other
/// functions are not equal. A batch enqueue refuses calls with keys; a repeated ID is still
/// an error.
pub async fn unique_key_returns_the_unfinished_call(store: &Store) {
    use super::Enqueued;
    let b = store.backend();
    let first = unique_call("f", "k", None);
    let a = first.cid;
    assert_eq!(
        b.enqueue_unique(first, at(0)).await.unwrap(),
        Enqueued::Stored(a)
    );
    assert_eq!(record(store, a).await.state, CallState::Pending);
    let again = unique_call("f", "k", None);
    let again_cid = again.cid;
    assert_eq!(
        b.enqueue_unique(again, at(1)).await.unwrap(),
        Enqueued::Existing(a)
    );
    assert!(
        store.get(again_cid).await.unwrap().is_none(),
        "nothing stored"
    );

    // Running, then waiting after a failed attempt: still unfinished.
    let fence = claim_one(store, "f", a, 2).await;
    assert_eq!(
        b.enqueue_unique(unique_call("f", "k", None), at(3))
            .await
            .unwrap(),
        Enqueued::Existing(a)
    );
    assert!(b
        .reschedule(a, fence, progress(1, at(2)), at(10), "boom".into(), at(4))
        .await
        .unwrap());
    assert_eq!(
        b.enqueue_unique(unique_call("f", "k", None), at(5))
            .await
            .unwrap(),
        Enqueued::Existing(a)
    );

    let other_key = unique_call("f", "k2", None);
    let other_fn = unique_call("g", "k", None);
    let (k2, g) = (other_key.cid, other_fn.cid);
    assert_eq!(
        b.enqueue_unique(other_key, at(5)).await.unwrap(),
        Enqueued::Stored(k2)
    );
    assert_eq!(
        b.enqueue_unique(other_fn, at(5)).await.unwrap(),
        Enqueued::Stored(g)
    );
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.total(), 3, "a, k2 and g");
    assert_eq!(stats.count("f", CallState::Waiting), 1);

    let batch = b
        .enqueue(vec![unique_call("f", "k3", None)], at(6))
        .await
        .unwrap_err();
    assert!(matches!(batch, StoreError::Invalid(_)), "{batch}");
    let taken_id = unique_call("f", "k4", None).with_cid(a);
    assert_eq!(
        b.enqueue_unique(taken_id, at(6)).await.unwrap_err(),
        StoreError::Duplicate(a)
    );
    let bad = NewCall::new("f", "{not json").unique(super::Unique::new("k5"));
    assert!(matches!(
        b.enqueue_unique(bad, at(6)).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    let keyless = NewCall::new("f", "[]");
    assert!(matches!(
        b.enqueue_unique(keyless, at(6)).await.unwrap_err(),
        StoreError::Invalid(_)
    ));
    assert_eq!(store.stats().await.unwrap().total(), 3);
}

/// A call frees its key when it finishes (succeeded, dead or cancelled): the next equal call
/// is stored. A requeued call does not take its key back.
pub async fn unique_key_is_freed_when_the_call_finishes(store: &Store) {
    use super::Enqueued;
    let b = store.backend();

    let ok = unique_call("f", "k", None);
    let ok_cid = ok.cid;
    b.enqueue_unique(ok, at(0)).await.unwrap();
    let fence = claim_one(store, "f", ok_cid, 0).await;
    assert!(b.complete(ok_cid, fence, 1, at(0), at(1)).await.unwrap());

    let dead = unique_call("f", "k", None);
    let dead_cid = dead.cid;
    assert_eq!(
        b.enqueue_unique(dead, at(2)).await.unwrap(),
        Enqueued::Stored(dead_cid),
        "the succeeded call let go of the key"
    );
    let fence = claim_one(store, "f", dead_cid, 2).await;
    assert!(b
        .bury(
            dead_cid,
            fence,
            Some(progress(1, at(2))),
            "exhausted".into(),
            None,
            at(3)
        )
        .await
        .unwrap());

    let cancelled = unique_call("f", "k", None);
    let cancelled_cid = cancelled.cid;
    assert_eq!(
        b.enqueue_unique(cancelled, at(4)).await.unwrap(),
        Enqueued::Stored(cancelled_cid),
        "the dead call let go of the key"
    );
    assert!(b.cancel(cancelled_cid, at(5)).await.unwrap());

    let last = unique_call("f", "k", None);
    let last_cid = last.cid;
    assert_eq!(
        b.enqueue_unique(last, at(6)).await.unwrap(),
        Enqueued::Stored(last_cid),
        "the cancelled call let go of the key"
    );
    assert!(b.requeue(dead_cid, at(7)).await.unwrap());
    assert_eq!(
        b.enqueue_unique(unique_call("f", "k", None), at(8))
            .await
            .unwrap(),
        Enqueued::Existing(last_cid),
        "the requeued call did not take the key back"
    );
    assert_eq!(store.stats().await.unwrap().total(), 4);
}

/// With `keep_for`, a call that succeeded keeps its key that long after it finished: an equal
/// call enqueued before then gets its ID, one enqueued after is stored. A dead call frees it
/// at once.
pub async fn unique_key_kept_for_a_time_after_success(store: &Store) {
    use super::Enqueued;
    let b = store.backend();
    let first = unique_call("f", "k", Some(60));
    let a = first.cid;
    b.enqueue_unique(first, at(0)).await.unwrap();
    let fence = claim_one(store, "f", a, 0).await;
    assert!(b.complete(a, fence, 1, at(0), at(10)).await.unwrap());
    assert_eq!(record(store, a).await.state, CallState::Succeeded);
    assert_eq!(
        b.enqueue_unique(unique_call("f", "k", Some(60)), at(69))
            .await
            .unwrap(),
        Enqueued::Existing(a),
        "59 s after it succeeded"
    );
    let later = unique_call("f", "k", Some(60));
    let later_cid = later.cid;
    assert_eq!(
        b.enqueue_unique(later, at(70)).await.unwrap(),
        Enqueued::Stored(later_cid),
        "60 s after it succeeded"
    );
    assert_eq!(
        b.enqueue_unique(unique_call("f", "k", Some(60)), at(71))
            .await
            .unwrap(),
        Enqueued::Existing(later_cid)
    );

    let fence = claim_one(store, "f", later_cid, 71).await;
    assert!(b
        .bury(
            later_cid,
            fence,
            Some(progress(1, at(71))),
            "exhausted".into(),
            None,
            at(72)
        )
        .await
        .unwrap());
    let after_dead = unique_call("f", "k", Some(60));
    let after_dead_cid = after_dead.cid;
    assert_eq!(
        b.enqueue_unique(after_dead, at(73)).await.unwrap(),
        Enqueued::Stored(after_dead_cid),
        "a dead call frees its key at once"
    );
    assert_eq!(store.stats().await.unwrap().total(), 3);
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
