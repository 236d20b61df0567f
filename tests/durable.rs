//! `mode = "durable"`: calls stored before they run, run by a worker, retried by the engine's
//! rules, buried as dead letters when given up, and resumed by a worker started later.
//!
//! Every test has a store file of its own, made the process's default store for the test's
//! duration; a lock runs the tests one at a time, since the default store is process-wide.

use retry_runtime::durable::{self, CallRecord, CallState, NewCall, Store, Worker};
use retry_runtime::{current_cid, retry, CorrelationId, Report};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

struct Fixture {
    store: Store,
    _dir: tempfile::TempDir,
    _serial: tokio::sync::MutexGuard<'static, ()>,
}

async fn fixture() -> Fixture {
    let serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    durable::set_default_store(store.clone());
    Fixture {
        store,
        _dir: dir,
        _serial: serial,
    }
}

fn worker(store: &Store) -> Worker {
    Worker::builder(store.clone())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .lease(Duration::from_millis(600))
        .start()
}

/// Waits until the call is finished (succeeded, dead or cancelled), up to 10 s.
async fn finished(store: &Store, cid: CorrelationId) -> CallRecord {
    for _ in 0..1000 {
        if let Some(r) = store.get(cid).await.unwrap() {
            if r.state.is_finished() {
                return r;
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("call {cid} did not finish: {:?}", store.get(cid).await);
}

// ---------------------------------------------------------------- the functions

static FLAKY_CALLS: Mutex<Vec<(u32, Option<CorrelationId>)>> = Mutex::new(Vec::new());

/// Fails its first two attempts per order, then succeeds.
#[retry(mode = "durable", max = 5, backoff = "fixed", delay = "10ms")]
async fn flaky_push(order: u32, note: String) -> Result<u32, String> {
    let seen = {
        let mut calls = FLAKY_CALLS.lock().unwrap();
        calls.push((order, current_cid()));
        calls.iter().filter(|(o, _)| *o == order).count()
    };
    assert_eq!(note, "hello");
    if seen < 3 {
        Err(format!("attempt {seen} of order {order} failed"))
    } else {
        Ok(order * 10)
    }
}

static EXHAUSTED: Mutex<Vec<(String, u32, String)>> = Mutex::new(Vec::new());

fn alert(r: &Report<std::io::Error>) {
    EXHAUSTED.lock().unwrap().push((
        r.name.to_string(),
        r.attempts,
        r.last_error
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
    ));
}

/// Always fails: a sync durable function.
#[retry(mode = "durable", max = 2, delay = "5ms", on_exhausted = alert)]
fn always_down(id: u64) -> std::io::Result<()> {
    Err(std::io::Error::other(format!("down for {id}")))
}

/// Rejects every error: one attempt, then the dead letters.
#[retry(mode = "durable", max = 5, delay = "5ms", when = |_e: &String| false, name = "orders::reject")]
async fn rejected(order: u32) -> Result<(), String> {
    Err(format!("order {order} is invalid"))
}

static RUNS: AtomicU32 = AtomicU32::new(0);

#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn counted(n: u32) -> Result<u32, String> {
    RUNS.fetch_add(1, Ordering::SeqCst);
    Ok(n)
}

#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn panics(n: u32) -> Result<u32, String> {
    assert!(n == 0, "boom {n}");
    Ok(n)
}

// ---------------------------------------------------------------- tests

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_durable_call_is_stored_then_run_by_a_worker_until_it_succeeds() {
    let f = fixture().await;
    FLAKY_CALLS.lock().unwrap().clear();
    // Stored before any worker runs: the call waits in the store.
    let cid = flaky_push(7, "hello".into()).await.unwrap();
    let rec = f.store.get(cid).await.unwrap().unwrap();
    assert_eq!(rec.state, CallState::Pending);
    assert_eq!(rec.function, "durable::flaky_push");
    let args: serde_json::Value = serde_json::from_str(&rec.args).unwrap();
    assert_eq!(args, serde_json::json!({"order": 7, "note": "hello"}));
    assert_eq!(rec.attempts, 0);

    let w = worker(&f.store);
    let rec = finished(&f.store, cid).await;
    w.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rec.state, CallState::Succeeded);
    assert_eq!(rec.attempts, 3);
    assert!(rec
        .last_error
        .as_deref()
        .unwrap()
        .contains("attempt 2 of order 7"));
    // Every attempt ran inside the call's context: its cid is the stored call's.
    let calls = FLAKY_CALLS.lock().unwrap().clone();
    assert_eq!(calls.len(), 3);
    assert!(calls.iter().all(|(o, c)| *o == 7 && *c == Some(cid)));
}

/// The worker writes every attempt it runs, with its outcome, worker, times and error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_worker_records_every_attempt_it_runs() {
    use retry_runtime::durable::AttemptOutcome;
    let f = fixture().await;
    FLAKY_CALLS.lock().unwrap().clear();
    let flaky = flaky_push(9, "hello".into()).await.unwrap();
    let refused = rejected(3).await.unwrap();
    let w = worker(&f.store);
    let id = w.id().to_owned();
    finished(&f.store, flaky).await;
    finished(&f.store, refused).await;
    w.shutdown(Duration::from_secs(1)).await;
    let attempts = f.store.attempts(flaky).await.unwrap();
    let seen: Vec<_> = attempts
        .iter()
        .map(|a| (a.attempt, a.outcome, a.error.clone()))
        .collect();
    assert_eq!(
        seen,
        [
            (
                1,
                AttemptOutcome::Failed,
                Some("attempt 1 of order 9 failed".to_owned())
            ),
            (
                2,
                AttemptOutcome::Failed,
                Some("attempt 2 of order 9 failed".to_owned())
            ),
            (3, AttemptOutcome::Succeeded, None),
        ]
    );
    for (a, b) in attempts.iter().zip(&attempts[1..]) {
        assert!(a.ended_at <= b.started_at, "{a:?} then {b:?}");
    }
    assert!(attempts
        .iter()
        .all(|a| a.worker.as_deref() == Some(id.as_str()) && a.started_at <= a.ended_at));
    let attempts = f.store.attempts(refused).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].outcome, AttemptOutcome::Dead);
    assert_eq!(attempts[0].error.as_deref(), Some("order 3 is invalid"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_calls_become_dead_letters_and_run_their_hooks_in_the_worker() {
    let f = fixture().await;
    EXHAUSTED.lock().unwrap().clear();
    // A sync durable function returns once the call is committed, blocking its thread.
    let cid = tokio::task::spawn_blocking(|| always_down(42))
        .await
        .unwrap()
        .unwrap();
    let w = worker(&f.store);
    let rec = finished(&f.store, cid).await;
    w.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rec.state, CallState::Dead);
    assert_eq!(rec.attempts, 3);
    assert_eq!(rec.dead_reason.as_deref(), Some("retries exhausted"));
    assert_eq!(rec.last_error.as_deref(), Some("down for 42"));
    assert_eq!(
        EXHAUSTED.lock().unwrap().clone(),
        [(
            "durable::always_down".to_string(),
            3,
            "down for 42".to_string()
        )]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_not_worth_retrying_is_buried_after_one_attempt_under_the_pinned_name() {
    let f = fixture().await;
    let cid = rejected(9).await.unwrap();
    assert_eq!(
        f.store.get(cid).await.unwrap().unwrap().function,
        "orders::reject"
    );
    let w = worker(&f.store);
    let rec = finished(&f.store, cid).await;
    w.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rec.state, CallState::Dead);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.dead_reason.as_deref(), Some("error not retryable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_attempt_is_buried_as_panicked() {
    let f = fixture().await;
    let cid = panics(3).await.unwrap();
    let w = worker(&f.store);
    let rec = finished(&f.store, cid).await;
    w.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rec.state, CallState::Dead);
    assert_eq!(rec.dead_reason.as_deref(), Some("panicked"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn arguments_that_no_longer_decode_go_to_the_dead_letters_and_unknown_functions_stay() {
    let f = fixture().await;
    // A call stored by an older build, whose argument was a string.
    let old = NewCall::new("durable::counted", r#"{"n":"seven"}"#);
    // And a call of a function this program does not have.
    let orphan = NewCall::new("billing::renamed_long_ago", r#"{"x":1}"#);
    f.store
        .enqueue(vec![old.clone(), orphan.clone()])
        .await
        .unwrap();
    let w = worker(&f.store);
    let rec = finished(&f.store, old.cid).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    w.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rec.state, CallState::Dead);
    assert_eq!(rec.attempts, 0, "no attempt ran");
    assert_eq!(
        rec.dead_reason.as_deref(),
        Some("arguments no longer decode")
    );
    assert!(rec.last_error.unwrap().contains("`n`"));
    let orphan = f.store.get(orphan.cid).await.unwrap().unwrap();
    assert_eq!(orphan.state, CallState::Pending, "left untouched");
    assert!(!durable::registered().contains(&"billing::renamed_long_ago"));
    assert_eq!(durable::orphans(&f.store.stats().await.unwrap()), 1);
    assert!(durable::registered().contains(&"durable::counted"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_left_by_a_stopped_worker_are_finished_by_the_next_one() {
    let f = fixture().await;
    RUNS.store(0, Ordering::SeqCst);
    let mut cids = Vec::new();
    for n in 0..50 {
        cids.push(counted(n).await.unwrap());
    }
    let stats = f.store.stats().await.unwrap();
    assert_eq!(stats.count("durable::counted", CallState::Pending), 50);
    // A first worker, stopped at once; a second finishes what is left.
    worker(&f.store).shutdown(Duration::ZERO).await;
    let w = worker(&f.store);
    let mut results = HashMap::new();
    for cid in &cids {
        results.insert(*cid, finished(&f.store, *cid).await.state);
    }
    w.shutdown(Duration::from_secs(1)).await;
    assert!(results.values().all(|s| *s == CallState::Succeeded));
    assert!(RUNS.load(Ordering::SeqCst) >= 50);
}

// ---------------------------------------------------------------- persist = "on_failure"

static FIRST_TRIES: AtomicU32 = AtomicU32::new(0);

/// Succeeds for even orders at once; odd orders fail their first attempt (in the caller) and
/// succeed in the worker; order 0 is rejected.
#[retry(
    mode = "durable",
    persist = "on_failure",
    max = 3,
    delay = "10ms",
    when = |e: &String| !e.contains("invalid")
)]
async fn export(order: u32) -> Result<u32, String> {
    let n = FIRST_TRIES.fetch_add(1, Ordering::SeqCst);
    if order == 0 {
        return Err("order 0 is invalid".into());
    }
    if order % 2 == 1 && n == 0 {
        return Err(format!("export of {order} failed"));
    }
    Ok(order)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persist_on_failure_writes_nothing_until_a_retryable_failure() {
    let f = fixture().await;
    FIRST_TRIES.store(0, Ordering::SeqCst);
    // The happy path: the first attempt's value, and no write.
    assert_eq!(export(4).await.unwrap(), durable::Outcome::Done(Ok(4)));
    // An error not worth retrying comes back as it is, and no write either.
    FIRST_TRIES.store(0, Ordering::SeqCst);
    assert_eq!(
        export(0).await.unwrap(),
        durable::Outcome::Done(Err("order 0 is invalid".into()))
    );
    assert_eq!(f.store.stats().await.unwrap().total(), 0);

    // A retryable failure is committed before the caller hears of it, waiting, with the
    // caller's attempt counted.
    FIRST_TRIES.store(0, Ordering::SeqCst);
    let durable::Outcome::Stored(cid) = export(7).await.unwrap() else {
        panic!("a retryable failure is stored");
    };
    let rec = f.store.get(cid).await.unwrap().unwrap();
    assert_eq!(rec.state, CallState::Waiting);
    assert_eq!(rec.attempts, 1);
    assert_eq!(rec.last_error.as_deref(), Some("export of 7 failed"));
    assert!(rec.started_at.is_some() && rec.next_due_at.is_some());

    let w = worker(&f.store);
    let rec = finished(&f.store, cid).await;
    w.shutdown(Duration::from_secs(1)).await;
    assert_eq!(rec.state, CallState::Succeeded);
    assert_eq!(rec.attempts, 2);
}

// ---------------------------------------------------------------- results and waiting

#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Receipt {
    order: u32,
    lines: Vec<String>,
}

/// Its `Ok` value is `Serialize`: kept as the call's result.
#[retry(mode = "durable", max = 2, delay = "5ms")]
async fn receipt(order: u32) -> Result<Receipt, String> {
    Ok(Receipt {
        order,
        lines: vec![format!("line of {order}")],
    })
}

/// An `Ok` type that is not `Serialize`: still a durable function, its result not kept.
#[derive(Debug)]
struct Opaque(#[allow(dead_code)] u32);

#[retry(mode = "durable", max = 2, delay = "5ms")]
fn opaque(n: u32) -> Result<Opaque, String> {
    Ok(Opaque(n))
}

#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn refused(n: u32) -> Result<u32, String> {
    Err(format!("refused {n}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_gets_the_result_or_how_the_call_ended() {
    use retry_runtime::durable::{Finished, WaitError};
    let f = fixture().await;
    // Cancelled before any worker runs.
    let cancelled = refused(0).await.unwrap();
    assert!(f.store.cancel(cancelled).await.unwrap());

    let w = worker(&f.store);
    let ok = receipt(7).await.unwrap();
    let dead = refused(1).await.unwrap();
    let kept_none = tokio::task::spawn_blocking(|| opaque(3))
        .await
        .unwrap()
        .unwrap();
    let wait =
        |cid| tokio::time::timeout(Duration::from_secs(10), f.store.wait_for::<Receipt>(cid));

    assert_eq!(
        wait(ok).await.expect("finished in 10 s").unwrap(),
        Receipt {
            order: 7,
            lines: vec!["line of 7".into()]
        }
    );
    assert_eq!(
        finished(&f.store, ok).await.result.as_deref(),
        Some(r#"{"order":7,"lines":["line of 7"]}"#)
    );
    assert_eq!(
        wait(dead).await.expect("finished in 10 s"),
        Err(WaitError::Dead {
            reason: "retries exhausted".into(),
            error: Some("refused 1".into())
        })
    );
    assert_eq!(finished(&f.store, dead).await.attempts, 2);
    assert_eq!(
        wait(cancelled).await.expect("at once"),
        Err(WaitError::Cancelled)
    );
    assert_eq!(
        f.store.wait(kept_none).await.unwrap(),
        Finished::Succeeded {
            result: None,
            attempts: 1
        },
        "not Serialize: no result"
    );
    assert!(matches!(
        f.store.wait_for::<u32>(kept_none).await,
        Err(WaitError::Value(_))
    ));
    w.shutdown(Duration::from_secs(5)).await;
}
