//! A real worker's row in the store's workers: registered when it starts (its ID, host,
//! process), its heartbeat advancing with the calls it runs, the calls it holds listed, and
//! marked stopped by a clean shutdown. On SQLite, and on PostgreSQL when
//! `RETRY_TEST_POSTGRES_URL` is set.

use std::time::{Duration, Instant, SystemTime};

use retry_runtime::durable::{registered, NewCall, Store, Worker, WorkerRecord, WorkerStatus};
use retry_runtime::retry;

#[path = "common/pg.rs"]
mod pg;

#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn heartbeat_job(ms: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

/// The row of worker `id`, waiting up to 10 s for `until` to hold.
async fn row_when(
    store: &Store,
    id: &str,
    what: &str,
    until: impl Fn(&WorkerRecord) -> bool,
) -> WorkerRecord {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let rows = store.workers().await.unwrap();
        if let Some(row) = rows.iter().find(|w| w.id == id).filter(|w| until(w)) {
            return row.clone();
        }
        assert!(
            Instant::now() < deadline,
            "no row of {id} where {what} after 10 s: {rows:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn heartbeats_of_a_real_worker(url: &str) {
    let name = registered()
        .into_iter()
        .find(|n| n.ends_with("heartbeat_job"))
        .expect("registered")
        .to_owned();
    // The operator's handle is not the worker's: nothing is shared in the process.
    let operator = Store::open(url).await.unwrap();
    let before = SystemTime::now();
    let worker = Worker::builder(Store::open(url).await.unwrap())
        .id("heartbeat-worker")
        .concurrency(4)
        .heartbeat_interval(Duration::from_millis(50))
        .poll_interval(Duration::from_millis(20))
        .start();

    let first = row_when(&operator, "heartbeat-worker", "it registered", |_| true).await;
    assert_eq!(first.pid, std::process::id());
    assert!(!first.host.is_empty());
    assert!(first.started_at >= before - Duration::from_secs(1));
    assert_eq!(first.heartbeat_interval, Duration::from_millis(50));
    assert_eq!(first.status, WorkerStatus::Live);
    assert_eq!(first.stopped_at, None);

    // Two calls that run long enough for a few heartbeats to count them.
    let calls: Vec<NewCall> = (0..2)
        .map(|_| NewCall::new(name.clone(), r#"{"ms":800}"#))
        .collect();
    let cids: Vec<_> = calls.iter().map(|c| c.cid).collect();
    operator.enqueue(calls).await.unwrap();
    let busy = row_when(&operator, "heartbeat-worker", "it runs 2 calls", |w| {
        w.running == 2
    })
    .await;
    assert!(
        busy.heartbeat_at > first.heartbeat_at,
        "the heartbeat advanced: {:?} then {:?}",
        first.heartbeat_at,
        busy.heartbeat_at
    );
    let mut held = busy.held.clone();
    held.sort_by_key(ToString::to_string);
    let mut expected = cids.clone();
    expected.sort_by_key(ToString::to_string);
    assert_eq!(held, expected, "the calls it holds");
    assert_eq!(busy.status, WorkerStatus::Live);

    // Idle again: the next heartbeats say so, and keep advancing.
    let idle = row_when(&operator, "heartbeat-worker", "it runs nothing", |w| {
        w.running == 0 && w.heartbeat_at > busy.heartbeat_at
    })
    .await;
    assert!(idle.held.is_empty(), "{idle:?}");
    let later = row_when(&operator, "heartbeat-worker", "a later heartbeat", |w| {
        w.heartbeat_at > idle.heartbeat_at
    })
    .await;
    assert_eq!(later.status, WorkerStatus::Live);

    worker.shutdown(Duration::from_secs(2)).await;
    let stopped = row_when(&operator, "heartbeat-worker", "it stopped", |w| {
        w.stopped_at.is_some()
    })
    .await;
    assert_eq!(stopped.status, WorkerStatus::Stopped);
    assert_eq!(stopped.running, 0);
    // No heartbeat after the stop.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = row_when(&operator, "heartbeat-worker", "it is still there", |_| true).await;
    assert_eq!(after.heartbeat_at, stopped.heartbeat_at);
    assert_eq!(after.status, WorkerStatus::Stopped);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_worker_registers_heartbeats_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    heartbeats_of_a_real_worker(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_worker_registers_heartbeats_and_stops() {
    let Some((url, _schema)) = pg::fresh_schema().await else {
        return;
    };
    heartbeats_of_a_real_worker(&url).await;
}
