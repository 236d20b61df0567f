//! An idle worker makes at most one cheap query per poll interval, and claims (and registers
//! in the store's workers, and declares its limits) only at start: counted by the SQLite
//! store's writer, which commits every claim, and, in memory (where there is no reader
//! connection), every query.

use retry_runtime::durable::{Backend, SqliteBackend, Store, Synchronous, Worker};
use retry_runtime::retry;
use std::sync::Arc;
use std::time::Duration;

/// Registered, so the worker has a function to look for.
#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn idle_job(n: u32) -> Result<u32, String> {
    Ok(n)
}

/// Runs an idle worker on `backend` for 1 s at a 100 ms poll; the writer's commits meanwhile.
async fn idle_commits(backend: &Arc<SqliteBackend>) -> u64 {
    let store = Store::from_backend(Arc::clone(backend) as Arc<dyn Backend>);
    let before = backend.commits();
    let worker = Worker::builder(store)
        .poll_interval(Duration::from_millis(100))
        .retention(None)
        .start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Before the shutdown, which commits the release of the worker's leases.
    let commits = backend.commits() - before;
    worker.shutdown(Duration::from_secs(1)).await;
    commits
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_makes_one_query_per_poll_interval() {
    let _ = idle_job; // registered by its attribute
    let dir = tempfile::tempdir().unwrap();
    // In a file, the due-time queries go to the reader: the writer commits only claims.
    let file = Arc::new(
        SqliteBackend::open_file(&dir.path().join("calls.db"), Synchronous::Normal, true).unwrap(),
    );
    // In memory, every query goes through the writer: claims and due-time queries.
    let memory = Arc::new(SqliteBackend::open_memory().unwrap());
    let (claims, queries) = tokio::join!(idle_commits(&file), idle_commits(&memory));
    println!("idle worker, 1 s at a 100 ms poll: {claims} claims, {queries} queries");
    // Its registration in the store's workers and the declaration of its functions' limits
    // (`max_running`, none here: the declaration clears a limit the code no longer has) are
    // two more writes at start (its heartbeats, every 5 s by default, do not come within the
    // second).
    assert!(
        claims <= 3,
        "an idle worker claims only at start (and registers and declares once): {claims} writes"
    );
    // 1 s of 100 ms intervals: 10 of them, and the first look at start (a claim, then the due
    // time), the registration and the declaration; a slow scheduler only makes fewer.
    assert!(
        queries <= 14,
        "{queries} claims and due-time queries in 10 poll intervals"
    );
    assert!(queries >= 1, "the worker looked at the store: {queries}");
}
