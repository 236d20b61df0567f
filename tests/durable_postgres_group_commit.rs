//! Group commit of enqueues on PostgreSQL: concurrent callers of one store share transactions,
//! each caller is answered after the transaction holding its calls committed, and a caller
//! whose calls fail a shared transaction fails alone.
//!
//! To be sure callers are gathered, the tests hold a lock on `retry_calls` that blocks inserts
//! (from another connection) while the callers queue up, then let go: the first transactions
//! wait on the lock, and every caller queued behind them is gathered.
//!
//! The server comes from `RETRY_TEST_POSTGRES_URL` (see `tests/common/pg.rs`).

use std::sync::Arc;
use std::time::Duration;

use retry_runtime::durable::{CallState, NewCall, PostgresBackend, Store, StoreError};
use tokio::task::JoinHandle;

#[path = "common/pg.rs"]
mod pg;
use pg::{connect, fresh_schema, unique};

/// At most this many transactions for callers gathered behind a lock: each committer's first
/// transaction (blocked on the lock), then one per committer for everything queued behind.
const FEW_TRANSACTIONS: u64 = 8;

/// A store on a fresh schema, and its backend (for its count of committed transactions).
async fn open() -> Option<(String, Arc<PostgresBackend>, Store)> {
    let (url, _) = fresh_schema().await?;
    let backend = Arc::new(PostgresBackend::open(&url, true).await.unwrap());
    let store = Store::from_backend(backend.clone());
    Some((url, backend, store))
}

/// A transaction on another connection holding a lock on `retry_calls` that blocks inserts
/// (not reads) until `release` is called.
struct InsertBlock(tokio_postgres::Client);

impl InsertBlock {
    async fn hold(url: &str) -> InsertBlock {
        let client = connect(url).await;
        client
            .batch_execute("BEGIN; LOCK TABLE retry_calls IN SHARE ROW EXCLUSIVE MODE")
            .await
            .unwrap();
        InsertBlock(client)
    }

    async fn release(self) {
        self.0.batch_execute("COMMIT").await.unwrap();
    }
}

/// Enqueues `calls` from a task of its own (a concurrent caller).
fn caller(store: &Store, calls: Vec<NewCall>) -> JoinHandle<Result<(), StoreError>> {
    let store = store.clone();
    tokio::spawn(async move { store.enqueue(calls).await })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_four_concurrent_callers_are_all_stored_in_few_transactions() {
    let Some((url, backend, store)) = open().await else {
        return;
    };
    let f = format!("{}::f", unique("gathered"));
    let before = backend.enqueue_commits();
    let block = InsertBlock::hold(&url).await;
    let calls: Vec<NewCall> = (0..64)
        .map(|i| NewCall::new(&f, format!("{{\"i\":{i}}}")))
        .collect();
    let callers: Vec<_> = calls
        .iter()
        .map(|c| caller(&store, vec![c.clone()]))
        .collect();
    // Every caller has queued (nothing commits while the lock is held).
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        callers.iter().all(|c| !c.is_finished()),
        "no answer before the commit"
    );
    assert_eq!(backend.enqueue_commits(), before);
    block.release().await;
    for c in callers {
        c.await.unwrap().unwrap();
    }
    let transactions = backend.enqueue_commits() - before;
    assert!(
        (1..=FEW_TRANSACTIONS).contains(&transactions),
        "64 callers in {transactions} transactions"
    );
    for (i, call) in calls.iter().enumerate() {
        let stored = store
            .get(call.cid)
            .await
            .unwrap()
            .expect("every call stored");
        assert_eq!(stored.function, f);
        assert_eq!(stored.state, CallState::Pending);
        assert_eq!(stored.args, format!("{{\"i\":{i}}}"), "its own arguments");
    }
    assert_eq!(
        store.stats().await.unwrap().count(&f, CallState::Pending),
        64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_in_a_gathered_transaction_fails_only_its_caller() {
    let Some((url, backend, store)) = open().await else {
        return;
    };
    let f = format!("{}::f", unique("dup"));
    let stored = NewCall::new(&f, "{\"stored\":true}");
    store.enqueue(vec![stored.clone()]).await.unwrap();

    let block = InsertBlock::hold(&url).await;
    // The committers' first transactions take these and wait on the lock...
    let first: Vec<_> = (0..4)
        .map(|i| caller(&store, vec![NewCall::new(&f, format!("{{\"first\":{i}}}"))]))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    // ...so these are queued behind them and gathered together: among them, a caller of a
    // call already stored, two callers of one new call, and one caller of three calls.
    let again = caller(&store, vec![stored.clone()]);
    let twin = NewCall::new(&f, "{\"twin\":true}");
    let twins = [
        caller(&store, vec![twin.clone()]),
        caller(&store, vec![twin.clone()]),
    ];
    let three: Vec<NewCall> = (0..3)
        .map(|i| NewCall::new(&f, format!("{{\"three\":{i}}}")))
        .collect();
    let trio = caller(&store, three.clone());
    let others: Vec<NewCall> = (0..40)
        .map(|i| NewCall::new(&f, format!("{{\"other\":{i}}}")))
        .collect();
    let callers: Vec<_> = others
        .iter()
        .map(|c| caller(&store, vec![c.clone()]))
        .collect();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let before = backend.enqueue_commits();
    block.release().await;

    for c in first {
        c.await.unwrap().unwrap();
    }
    match again.await.unwrap() {
        Err(StoreError::Duplicate(cid)) => assert_eq!(cid, stored.cid),
        other => panic!("the duplicate's caller: {other:?}"),
    }
    let [a, b] = twins;
    let answers = [a.await.unwrap(), b.await.unwrap()];
    assert_eq!(
        answers.iter().filter(|a| a.is_ok()).count(),
        1,
        "the first of two callers of one new call stores it: {answers:?}"
    );
    assert!(
        answers
            .iter()
            .any(|a| matches!(a, Err(StoreError::Duplicate(cid)) if *cid == twin.cid)),
        "the second is told it is a duplicate: {answers:?}"
    );
    trio.await.unwrap().unwrap();
    for c in callers {
        c.await.unwrap().unwrap();
    }
    for call in others.iter().chain(&three).chain([&twin, &stored]) {
        let found = store.get(call.cid).await.unwrap().expect("stored");
        assert_eq!(found.args, call.args, "{}", call.cid);
    }
    assert_eq!(
        store.stats().await.unwrap().count(&f, CallState::Pending),
        1 + 4 + 1 + 3 + 40,
        "every call stored once, none twice"
    );
    assert!(
        backend.enqueue_commits() > before,
        "the failed transaction's callers were committed again"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_caller_is_committed_alone_and_at_once() {
    let Some((_, backend, store)) = open().await else {
        return;
    };
    let f = format!("{}::f", unique("lone"));
    for i in 0..5 {
        let before = backend.enqueue_commits();
        let call = NewCall::new(&f, format!("{{\"i\":{i}}}"));
        tokio::time::timeout(Duration::from_secs(10), store.enqueue(vec![call.clone()]))
            .await
            .expect("no waiting for a batch to fill")
            .unwrap();
        assert_eq!(
            backend.enqueue_commits(),
            before + 1,
            "one transaction per call"
        );
        assert!(store.get(call.cid).await.unwrap().is_some());
    }
}
