//! An idle worker makes at most one cheap query per poll interval: a store that counts the
//! worker's requests, and nothing due.

use retry_runtime::durable::{
    Backend, BoxFuture, CallRecord, CallState, Claim, ListFilter, NewCall, Progress, SqliteBackend,
    Stats, Store, StoreError, Worker,
};
use retry_runtime::{retry, CorrelationId};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A backend that counts the claims and due-time queries, and passes everything on.
struct Counting {
    inner: SqliteBackend,
    claims: AtomicU32,
    next_dues: AtomicU32,
}

impl Backend for Counting {
    fn enqueue(
        &self,
        calls: Vec<NewCall>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<(), StoreError>> {
        self.inner.enqueue(calls, now)
    }
    fn claim<'a>(
        &'a self,
        worker: &'a str,
        functions: &'a [String],
        limit: usize,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<Claim>, StoreError>> {
        self.claims.fetch_add(1, Ordering::SeqCst);
        self.inner.claim(worker, functions, limit, lease, now)
    }
    fn renew(
        &self,
        cid: CorrelationId,
        fence: u64,
        lease: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.renew(cid, fence, lease, now)
    }
    fn complete(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner
            .complete(cid, fence, attempts, attempt_started, now)
    }
    fn reschedule(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Progress,
        due: SystemTime,
        error: String,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.reschedule(cid, fence, progress, due, error, now)
    }
    fn bury(
        &self,
        cid: CorrelationId,
        fence: u64,
        progress: Option<Progress>,
        reason: String,
        error: Option<String>,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.bury(cid, fence, progress, reason, error, now)
    }
    fn release<'a>(
        &'a self,
        worker: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.release(worker, now)
    }
    fn cancel(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.cancel(cid, now)
    }
    fn get(&self, cid: CorrelationId) -> BoxFuture<'_, Result<Option<CallRecord>, StoreError>> {
        self.inner.get(cid)
    }
    fn list<'a>(
        &'a self,
        filter: &'a ListFilter,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Vec<CallRecord>, StoreError>> {
        self.inner.list(filter, now)
    }
    fn requeue(
        &self,
        cid: CorrelationId,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<bool, StoreError>> {
        self.inner.requeue(cid, now)
    }
    fn requeue_dead<'a>(
        &'a self,
        function: Option<&'a str>,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<u64, StoreError>> {
        self.inner.requeue_dead(function, now)
    }
    fn purge(
        &self,
        state: CallState,
        older_than: Duration,
        now: SystemTime,
    ) -> BoxFuture<'_, Result<u64, StoreError>> {
        self.inner.purge(state, older_than, now)
    }
    fn stats(&self) -> BoxFuture<'_, Result<Stats, StoreError>> {
        self.inner.stats()
    }
    fn next_due<'a>(
        &'a self,
        functions: &'a [String],
    ) -> BoxFuture<'a, Result<Option<SystemTime>, StoreError>> {
        self.next_dues.fetch_add(1, Ordering::SeqCst);
        self.inner.next_due(functions)
    }
}

/// Registered, so the worker has a function to look for.
#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn idle_job(n: u32) -> Result<u32, String> {
    Ok(n)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_worker_makes_one_query_per_poll_interval() {
    let _ = idle_job; // registered by its attribute
    let backend = Arc::new(Counting {
        inner: SqliteBackend::open_memory().unwrap(),
        claims: AtomicU32::new(0),
        next_dues: AtomicU32::new(0),
    });
    let store = Store::from_backend(Arc::clone(&backend) as Arc<dyn Backend>);
    let poll = Duration::from_millis(100);
    let worker = Worker::builder(store)
        .poll_interval(poll)
        .retention(None)
        .start();
    tokio::time::sleep(Duration::from_secs(1)).await;
    worker.shutdown(Duration::from_secs(1)).await;
    let (claims, next_dues) = (
        backend.claims.load(Ordering::SeqCst),
        backend.next_dues.load(Ordering::SeqCst),
    );
    println!("idle worker, 1 s at a 100 ms poll: {claims} claims, {next_dues} due-time queries");
    // 1 s of 100 ms intervals: 10 of them, and the first look at start (a claim, then the due
    // time); a slow scheduler only makes fewer.
    assert!(
        claims <= 1,
        "an idle worker claims only at start: {claims} claims"
    );
    assert!(
        claims + next_dues <= 12,
        "{claims} claims and {next_dues} due-time queries in 10 poll intervals"
    );
}
