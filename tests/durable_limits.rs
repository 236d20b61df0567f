//! `max_running = N` across workers: four workers, each with its own handle on the store (so
//! they share nothing in this process but the store), drain calls of a function limited to 2
//! running attempts; the attempts count themselves in a shared counter, and the most ever
//! running at once never exceeds the limit. An operator's limit wins over the attribute's. On
//! SQLite, and on PostgreSQL when `RETRY_TEST_POSTGRES_URL` is set.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use retry_runtime::durable::{registered, CallState, NewCall, Store, Worker};
use retry_runtime::retry;

#[path = "common/pg.rs"]
mod pg;

/// Attempts of `limited_job` running now, and the most seen at once.
static RUNNING: AtomicUsize = AtomicUsize::new(0);
static MOST: AtomicUsize = AtomicUsize::new(0);

/// The calls each test drains.
const CALLS: u32 = 40;

#[retry(mode = "durable", max_running = 2, max = 1, delay = "5ms")]
async fn limited_job(n: u32) -> Result<u32, String> {
    let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
    MOST.fetch_max(now, Ordering::SeqCst);
    tokio::time::sleep(Duration::from_millis(5)).await;
    RUNNING.fetch_sub(1, Ordering::SeqCst);
    Ok(n)
}

/// The tests share the counters: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Four workers of 8 slots each on their own handles of the store at `url` drain `CALLS`
/// calls of `limited_job`, under an operator's limit if `operator` is given; returns the most
/// attempts seen running at once.
async fn drain(url: &str, operator: Option<u32>) -> usize {
    RUNNING.store(0, Ordering::SeqCst);
    MOST.store(0, Ordering::SeqCst);
    let name = registered()
        .into_iter()
        .find(|n| n.ends_with("limited_job"))
        .expect("registered")
        .to_owned();
    let store = Store::open(url).await.unwrap();
    if operator.is_some() {
        store.set_limit(&name, operator).await.unwrap();
    }
    let calls = (0..CALLS)
        .map(|n| NewCall::new(name.clone(), format!(r#"{{"n":{n}}}"#)))
        .collect();
    store.enqueue(calls).await.unwrap();
    let mut workers = Vec::new();
    for i in 0..4 {
        let own = Store::open(url).await.unwrap();
        workers.push(
            Worker::builder(own)
                .id(format!("limits-{i}"))
                .concurrency(8)
                .poll_interval(Duration::from_millis(50))
                .retention(None)
                .start(),
        );
    }
    let started = Instant::now();
    let deadline = started + Duration::from_secs(60);
    loop {
        let stats = store.stats().await.unwrap();
        if stats.count(&name, CallState::Succeeded) == u64::from(CALLS) {
            break;
        }
        assert!(Instant::now() < deadline, "not drained in 60 s: {stats:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = started.elapsed();
    for worker in workers {
        worker.shutdown(Duration::from_secs(2)).await;
    }
    let limits = store.limits().await.unwrap();
    let limit = limits
        .iter()
        .find(|l| l.function == name)
        .expect("the workers wrote the attribute's limit");
    assert_eq!(limit.declared, Some(2), "{limits:?}");
    assert_eq!(limit.operator, operator, "{limits:?}");
    let stats = store.stats().await.unwrap();
    assert_eq!(stats.count(&name, CallState::Succeeded), u64::from(CALLS));
    assert_eq!(
        stats.total(),
        u64::from(CALLS),
        "every call succeeded: {stats:?}"
    );
    let most = MOST.load(Ordering::SeqCst);
    println!(
        "{CALLS} calls by 4 workers in {took:?}, limit {}: at most {most} running at once",
        operator.unwrap_or(2)
    );
    most
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_sqlite_workers_never_run_more_than_max_running() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let most = drain(&url, None).await;
    assert!((1..=2).contains(&most), "{most} attempts ran at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_limit_wins_on_sqlite() {
    let _serial = SERIAL.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    assert_eq!(drain(&url, Some(1)).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_postgres_workers_never_run_more_than_max_running() {
    let _serial = SERIAL.lock().await;
    let Some((url, _schema)) = pg::fresh_schema().await else {
        return;
    };
    let most = drain(&url, None).await;
    assert!((1..=2).contains(&most), "{most} attempts ran at once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_limit_wins_on_postgres() {
    let _serial = SERIAL.lock().await;
    let Some((url, _schema)) = pg::fresh_schema().await else {
        return;
    };
    assert_eq!(drain(&url, Some(1)).await, 1);
}
