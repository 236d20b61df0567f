//! Durable calls under faults (issue 17): hung attempts do not stall a worker, an attempt has a
//! default time limit, a cancel stops a running attempt (in this process at once, from
//! another handle within a second) and keeps the attempt it interrupted, and calls under names
//! no worker knows are logged. Each case runs on SQLite and, with `RETRY_TEST_POSTGRES_URL`,
//! on PostgreSQL.
//!
//! The tests run one at a time (a lock): the functions' counters and the default store are
//! process-wide.

#[path = "common/pg.rs"]
mod pg;
#[path = "common/recorder.rs"]
mod recorder;

use retry_runtime::durable::{self, CallState, NewCall, Store, Worker};
use retry_runtime::{current_cid, is_cancelled, retry, CorrelationId};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime};

static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A fresh SQLite store (and its directory, kept while the test runs).
async fn sqlite() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

/// A fresh PostgreSQL store and its URL, or `None` without a server.
async fn postgres() -> Option<(Store, String)> {
    let (url, _schema) = pg::fresh_schema().await?;
    Some((Store::open(&url).await.unwrap(), url))
}

/// Waits for `done` to hold, up to `limit`; returns how long it took.
async fn within(limit: Duration, mut done: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if done() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

async fn state(store: &Store, cid: CorrelationId) -> CallState {
    store.get(cid).await.unwrap().expect("stored").state
}

// ---------------------------------------------------------------- the functions

static HUNG: AtomicU32 = AtomicU32::new(0);
static QUICK: AtomicU32 = AtomicU32::new(0);

/// Never returns (until dropped). Two attempts at most.
#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn hangs(n: u32) -> Result<(), String> {
    let _ = n;
    HUNG.fetch_add(1, Ordering::SeqCst);
    std::future::pending::<()>().await;
    Ok(())
}

#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn quick(n: u32) -> Result<u32, String> {
    QUICK.fetch_add(1, Ordering::SeqCst);
    Ok(n)
}

static SYNC_STOPPED: AtomicU32 = AtomicU32::new(0);

/// A sync body that never ends by itself, but checks for cancellation.
#[retry(mode = "durable", max = 2, delay = "5ms")]
fn sync_hangs(n: u32) -> Result<(), String> {
    let _ = n;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        if is_cancelled() {
            SYNC_STOPPED.fetch_add(1, Ordering::SeqCst);
            return Err("stopped: cancelled".into());
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    Ok(())
}

/// What the side-effect functions saw: ("started" | "finished" | "dropped", call).
static SIDE: Mutex<Vec<(&str, CorrelationId)>> = Mutex::new(Vec::new());

fn side(what: &'static str, cid: CorrelationId) {
    SIDE.lock().unwrap().push((what, cid));
}

fn saw(what: &str, cid: CorrelationId) -> bool {
    SIDE.lock().unwrap().contains(&(what, cid))
}

struct DropMark(CorrelationId, bool);

impl Drop for DropMark {
    fn drop(&mut self) {
        if !self.1 {
            side("dropped", self.0);
        }
    }
}

/// A slow side effect: 20 s, then "finished" (the e-mail sent).
#[retry(mode = "durable", max = 3, delay = "5ms")]
async fn send_mail(to: String) -> Result<(), String> {
    let _ = to;
    let cid = current_cid().unwrap();
    side("started", cid);
    let mut mark = DropMark(cid, false);
    tokio::time::sleep(Duration::from_secs(20)).await;
    side("finished", cid);
    mark.1 = true;
    Ok(())
}

/// The same, sync, checking `is_cancelled` between steps.
#[retry(mode = "durable", max = 3, delay = "5ms")]
fn charge_card(cents: u64) -> Result<(), String> {
    let _ = cents;
    let cid = current_cid().unwrap();
    side("started", cid);
    for _ in 0..2000 {
        if is_cancelled() {
            side("dropped", cid);
            return Err("cancelled".into());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    side("finished", cid);
    Ok(())
}

// ---------------------------------------------------------------- hung attempts

/// Issue 17 #1: with 6 slots and 4 attempts that never return, the other 300 due calls run.
async fn hung_attempts_do_not_stall_the_worker(store: Store) {
    HUNG.store(0, Ordering::SeqCst);
    QUICK.store(0, Ordering::SeqCst);
    durable::set_default_store(store.clone());
    for n in 0..4 {
        hangs(n).await.unwrap();
    }
    let worker = Worker::builder(store.clone())
        .concurrency(6)
        .poll_interval(Duration::from_millis(50))
        .start();
    assert!(
        within(Duration::from_secs(5), || HUNG.load(Ordering::SeqCst) == 4)
            .await
            .is_some(),
        "the hung attempts started"
    );
    let mut quick_calls = Vec::new();
    for n in 0..300 {
        quick_calls.push(quick(n).await.unwrap());
    }
    let ran = within(Duration::from_secs(30), || {
        QUICK.load(Ordering::SeqCst) == 300
    })
    .await;
    assert!(
        ran.is_some(),
        "{} of 300 due calls ran beside 4 hung attempts",
        QUICK.load(Ordering::SeqCst)
    );
    for cid in &quick_calls {
        assert_eq!(state(&store, *cid).await, CallState::Succeeded);
    }
    worker.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_attempts_do_not_stall_the_worker_sqlite() {
    let _serial = SERIAL.lock().await;
    let (store, _dir) = sqlite().await;
    hung_attempts_do_not_stall_the_worker(store).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hung_attempts_do_not_stall_the_worker_postgres() {
    let _serial = SERIAL.lock().await;
    let Some((store, _)) = postgres().await else {
        return;
    };
    hung_attempts_do_not_stall_the_worker(store).await;
}

/// The worker's default attempt limit ends a hung call as timed out, after the attempts its
/// policy allows; a sync attempt is abandoned and sees `is_cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_call_times_out_at_the_workers_default_limit() {
    let _serial = SERIAL.lock().await;
    SYNC_STOPPED.store(0, Ordering::SeqCst);
    let (store, _dir) = sqlite().await;
    durable::set_default_store(store.clone());
    let async_cid = hangs(7).await.unwrap();
    let sync_cid = tokio::task::spawn_blocking(|| sync_hangs(7))
        .await
        .unwrap()
        .unwrap();
    let worker = Worker::builder(store.clone())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .attempt_timeout(Some(Duration::from_millis(200)))
        .start();
    for (cid, attempts) in [(async_cid, 2), (sync_cid, 3)] {
        let mut record = None;
        for _ in 0..500 {
            let r = store.get(cid).await.unwrap().unwrap();
            if r.state.is_finished() {
                record = Some(r);
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let r = record.expect("the hung call ends");
        assert_eq!(r.state, CallState::Dead, "{r:?}");
        assert_eq!(r.dead_reason.as_deref(), Some("attempt timed out"), "{r:?}");
        assert_eq!(r.attempts, attempts, "{r:?}");
        assert!(r.last_error.unwrap().contains("timed out"));
    }
    assert!(
        within(Duration::from_secs(2), || SYNC_STOPPED
            .load(Ordering::SeqCst)
            == 3)
        .await
        .is_some(),
        "each abandoned sync attempt saw is_cancelled"
    );
    worker.shutdown(Duration::from_millis(100)).await;
}

// ---------------------------------------------------------------- cancel

/// Issue 17 #2: a cancel stops the running attempt (async: dropped; sync: `is_cancelled`),
/// through this store at once and through another handle within a second (the lease is 30 s,
/// so a renewal would come too late), and the record keeps the interrupted attempt.
async fn cancel_stops_a_running_call(store: Store, other: Store, sync: bool) {
    durable::set_default_store(store.clone());
    let worker = Worker::builder(store.clone())
        .concurrency(4)
        .poll_interval(Duration::from_millis(20))
        .start();
    for (canceller, limit) in [
        (&store, Duration::from_millis(500)),
        (&other, Duration::from_millis(1800)),
    ] {
        let cid = if sync {
            tokio::task::spawn_blocking(|| charge_card(1200))
                .await
                .unwrap()
                .unwrap()
        } else {
            send_mail("ops@example.com".into()).await.unwrap()
        };
        assert!(within(Duration::from_secs(5), || saw("started", cid))
            .await
            .is_some());
        assert!(canceller.cancel(cid).await.unwrap());
        let took = within(limit, || saw("dropped", cid)).await;
        assert!(
            took.is_some(),
            "the attempt was not stopped within {limit:?}"
        );
        assert!(!saw("finished", cid), "the side effect did not complete");
        let r = store.get(cid).await.unwrap().unwrap();
        assert_eq!(r.state, CallState::Cancelled);
        assert_eq!(r.attempts, 1, "the interrupted attempt is counted");
    }
    worker.shutdown(Duration::from_millis(100)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_call_sqlite() {
    let _serial = SERIAL.lock().await;
    for sync in [false, true] {
        let (store, dir) = sqlite().await;
        let url = format!("sqlite:{}", dir.path().join("calls.db").display());
        let other = Store::open(&url).await.unwrap();
        cancel_stops_a_running_call(store, other, sync).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_stops_a_running_call_postgres() {
    let _serial = SERIAL.lock().await;
    for sync in [false, true] {
        let Some((store, url)) = postgres().await else {
            return;
        };
        let other = Store::open(&url).await.unwrap();
        cancel_stops_a_running_call(store, other, sync).await;
    }
}

#[test]
fn is_cancelled_is_false_outside_a_durable_attempt() {
    assert!(!is_cancelled());
}

// ---------------------------------------------------------------- orphans

/// Issue 17 #9: calls due for over a minute under a name no worker registered are logged at
/// WARN, once per name.
#[test]
fn calls_of_unknown_functions_are_logged_once_per_name() {
    let ((), recs) = recorder::capture(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let _serial = SERIAL.lock().await;
                let (store, _dir) = sqlite().await;
                let long_ago = SystemTime::now() - Duration::from_secs(120);
                let calls = (0..3)
                    .map(|_| NewCall::new("billing::sedn_invoice", "{}").due_at(long_ago))
                    .chain([NewCall::new("billing::fresh_typo", "{}")])
                    .collect();
                store.enqueue(calls).await.unwrap();
                let worker = Worker::builder(store.clone())
                    .poll_interval(Duration::from_millis(10))
                    .start();
                tokio::time::sleep(Duration::from_millis(300)).await;
                worker.shutdown(Duration::from_millis(100)).await;
            });
    });
    let warned: Vec<_> = recorder::events_at(&recs, tracing::Level::WARN)
        .into_iter()
        .filter(|(_, f)| recorder::field(f, "message").contains("does not register"))
        .collect();
    assert_eq!(warned.len(), 1, "{warned:?}");
    assert_eq!(
        recorder::field(&warned[0].1, "function"),
        "billing::sedn_invoice"
    );
    assert_eq!(recorder::field(&warned[0].1, "calls"), "3");
}
