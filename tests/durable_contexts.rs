//! A durable call works from every caller context the docs allow, on every store: a sync
//! function from plain sync code (no tokio runtime) and from a runtime's blocking thread, a
//! `persist = "on_failure"` sync function from plain sync code, and an async function in a
//! runtime and under another executor. Each call must be committed when the caller returns.
//!
//! One test per store, run one after the other (the default store is process-wide).

use std::sync::Mutex;

use retry_runtime::durable::{self, Outcome, Store, StoreError};
use retry_runtime::{retry, CorrelationId};

#[path = "common/pg.rs"]
mod pg;

/// The default store is one per process: one store's test at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

#[retry(mode = "durable", max = 1)]
fn sync_job(n: u32) -> Result<u32, String> {
    Ok(n)
}

#[retry(mode = "durable", max = 1)]
async fn async_job(n: u32) -> Result<u32, String> {
    Ok(n)
}

#[retry(mode = "durable", persist = "on_failure", max = 3, delay = "1ms")]
fn sync_first_fails(n: u32) -> Result<u32, String> {
    Err(format!("down for {n}"))
}

/// Calls the durable functions from each context; returns the IDs of the stored calls.
async fn call_from_every_context() -> Vec<(&'static str, CorrelationId)> {
    let mut stored = Vec::new();
    let plain = std::thread::spawn(|| sync_job(1)).join().expect("no panic");
    stored.push(("sync, no runtime", plain.unwrap()));
    let blocking = tokio::task::spawn_blocking(|| sync_job(2))
        .await
        .expect("no panic");
    stored.push(("sync, a runtime's blocking thread", blocking.unwrap()));
    let first = std::thread::spawn(|| sync_first_fails(3))
        .join()
        .expect("no panic");
    let Ok(Outcome::Stored(cid)) = first else {
        panic!("persist = on_failure, no runtime: {first:?}");
    };
    stored.push(("persist on_failure, no runtime", cid));
    stored.push(("async, in a runtime", async_job(4).await.unwrap()));
    let other = std::thread::spawn(|| futures_executor::block_on(async_job(5)))
        .join()
        .expect("no panic");
    stored.push(("async, another executor", other.unwrap()));
    stored
}

async fn check_store(store: Store) {
    durable::set_default_store(store.clone());
    for (context, cid) in call_from_every_context().await {
        let record: Result<_, StoreError> = store.get(cid).await;
        assert!(record.unwrap().is_some(), "{context}: the call is stored");
    }
}

/// Runs `test` on a two-thread runtime, one store's test at a time.
fn one_at_a_time(test: impl std::future::Future<Output = ()>) {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
        .block_on(test);
}

#[test]
fn every_context_on_sqlite() {
    one_at_a_time(async {
        let dir = tempfile::tempdir().unwrap();
        let url = format!("sqlite:{}", dir.path().join("calls.db").display());
        check_store(Store::open(&url).await.unwrap()).await;
    });
}

#[test]
fn every_context_on_postgres() {
    one_at_a_time(async {
        let Some((url, _)) = pg::fresh_schema().await else {
            return;
        };
        check_store(Store::open(&url).await.unwrap()).await;
    });
}

/// A store opened in a runtime that has ended since, used from plain sync code.
#[test]
fn a_postgres_store_outlives_the_runtime_that_opened_it() {
    let _one = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let opened = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let Some((url, _)) = opened.block_on(pg::fresh_schema()) else {
        return;
    };
    let store = opened.block_on(Store::open(&url)).unwrap();
    drop(opened);
    durable::set_default_store(store.clone());
    let cid = sync_job(6).unwrap();
    let record = futures_executor::block_on(store.get(cid)).unwrap();
    assert!(record.is_some());
}
