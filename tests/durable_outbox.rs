//! Typed durable calls (`push_invoice::call(..)`, the companion `#[retry(mode = "durable")]`
//! writes beside the function): enqueued inside the caller's own transaction (rusqlite on the
//! store's SQLite file, tokio-postgres), in a store, now or scheduled for later.
//!
//! The PostgreSQL tests need `RETRY_TEST_POSTGRES_URL` (see `tests/durable_postgres.rs`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime};

use retry_runtime::durable::{
    CallRecord, CallState, DurableFn, PostgresBackend, Schedule, Store, StoreError, Worker,
};
use retry_runtime::{retry, CorrelationId};

#[path = "common/pg.rs"]
mod pg;
use pg::{connect, fresh_schema};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Invoice {
    id: u64,
    cents: u64,
}

static PUSHED: AtomicU32 = AtomicU32::new(0);

#[retry(mode = "durable", max = 3, delay = "10ms")]
async fn push_invoice(invoice: Invoice, note: String) -> Result<(), std::io::Error> {
    assert_eq!(note, "paid");
    PUSHED.fetch_add(u32::try_from(invoice.id).unwrap(), Ordering::SeqCst);
    Ok(())
}

#[retry(mode = "durable")]
fn reindex(shard: u32) -> Result<(), String> {
    let _ = shard;
    Ok(())
}

/// Its argument serializes only when the map is empty (JSON keys must be strings).
#[retry(mode = "durable")]
async fn tally(counts: HashMap<(u8, u8), u32>) -> Result<(), String> {
    let _ = counts;
    Ok(())
}

fn invoice(id: u64) -> Invoice {
    Invoice { id, cents: 1200 }
}

struct SqliteFile {
    store: Store,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

async fn sqlite_store() -> SqliteFile {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    SqliteFile {
        store,
        path,
        _dir: dir,
    }
}

/// The program's own connection to the store's file, with its own table.
fn app_connection(path: &std::path::Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.busy_timeout(Duration::from_secs(5)).unwrap();
    conn.execute_batch("CREATE TABLE IF NOT EXISTS invoices (id INTEGER PRIMARY KEY, cid TEXT)")
        .unwrap();
    conn
}

/// Waits until the call is finished, up to 10 s.
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

#[test]
fn the_companion_names_the_function_as_it_is_registered() {
    assert_eq!(push_invoice::NAME, "durable_outbox::push_invoice");
    let call = push_invoice::call(invoice(1), "paid".into());
    assert_eq!(call.function(), "durable_outbox::push_invoice");
    assert_eq!(call.schedule(), Schedule::Now);
    let now = SystemTime::now();
    let stored = call
        .after(Duration::from_secs(60))
        .into_new_call(now)
        .unwrap();
    assert_eq!(stored.due, Some(now + Duration::from_secs(60)));
    let args: serde_json::Value = serde_json::from_str(&stored.args).unwrap();
    assert_eq!(
        args,
        serde_json::json!({"invoice": {"id": 1, "cents": 1200}, "note": "paid"}),
        "the arguments as the function's own enqueue stores them"
    );
}

#[tokio::test]
async fn typed_enqueue_in_a_rusqlite_transaction_is_stored_on_commit_only() {
    let file = sqlite_store().await;
    let mut conn = app_connection(&file.path);

    let tx = conn.transaction().unwrap();
    tx.execute("INSERT INTO invoices (id) VALUES (1)", [])
        .unwrap();
    let dropped = push_invoice::call(invoice(1), "paid".into())
        .enqueue_in_sqlite(&tx)
        .unwrap();
    tx.rollback().unwrap();
    assert_eq!(file.store.get(dropped).await.unwrap(), None, "rolled back");

    let tx = conn.transaction().unwrap();
    let call = push_invoice::call(invoice(2), "paid".into());
    let cid = call.cid();
    tx.execute(
        "INSERT INTO invoices (id, cid) VALUES (2, ?1)",
        [cid.to_string()],
    )
    .unwrap();
    assert_eq!(call.enqueue_in_sqlite(&tx).unwrap(), cid);
    assert_eq!(
        file.store.get(cid).await.unwrap(),
        None,
        "not visible before the commit"
    );
    tx.commit().unwrap();
    let rec = file.store.get(cid).await.unwrap().expect("committed");
    assert_eq!(rec.function, "durable_outbox::push_invoice");
    assert_eq!(rec.state, CallState::Pending);
    let rows: i64 = conn
        .query_row("SELECT count(*) FROM invoices", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        rows, 1,
        "the invoice of the rolled-back transaction is gone too"
    );
    let stats = file.store.stats().await.unwrap();
    assert_eq!(stats.total(), 1);
}

#[tokio::test]
async fn a_worker_runs_a_call_enqueued_on_another_connection() {
    let file = sqlite_store().await;
    let before = PUSHED.load(Ordering::SeqCst);
    // A long poll: only the wake-up gets the call run within the test's 10 s.
    let worker = Worker::builder(file.store.clone())
        .poll_interval(Duration::from_secs(600))
        .start();
    let mut conn = app_connection(&file.path);
    let tx = conn.transaction().unwrap();
    let cid = push_invoice::call(invoice(1000), "paid".into())
        .enqueue_in_sqlite(&tx)
        .unwrap();
    tx.commit().unwrap();
    file.store.wake_workers();
    let rec = finished(&file.store, cid).await;
    assert_eq!(rec.state, CallState::Succeeded);
    assert_eq!(rec.attempts, 1);
    assert!(PUSHED.load(Ordering::SeqCst) >= before + 1000);
    worker.shutdown(Duration::from_secs(5)).await;

    // Without a wake-up, a worker finds it at its next poll.
    let worker = Worker::builder(file.store.clone())
        .poll_interval(Duration::from_millis(50))
        .start();
    let cid = push_invoice::call(invoice(2000), "paid".into())
        .enqueue_in_sqlite(&conn)
        .unwrap();
    assert_eq!(finished(&file.store, cid).await.state, CallState::Succeeded);
    worker.shutdown(Duration::from_secs(5)).await;
}

#[tokio::test]
async fn enqueue_in_sqlite_refuses_a_file_that_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("other.db")).unwrap();
    conn.execute_batch("CREATE TABLE calls (x)").unwrap();
    let err = reindex::call(1).enqueue_in_sqlite(&conn).unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err:?}");
    assert!(err.to_string().contains("Store::open"), "{err}");
    let n: i64 = conn
        .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn scheduled_typed_calls_keep_their_due_time_in_each_form() {
    let file = sqlite_store().await;
    let hour = Duration::from_secs(3600);
    let before = SystemTime::now();
    let later = reindex::call(1)
        .after(hour)
        .enqueue_on(&file.store)
        .await
        .unwrap();
    let noon = SystemTime::UNIX_EPOCH + Duration::from_secs(1_900_000_000);
    let conn = app_connection(&file.path);
    let fixed = reindex::call(2).at(noon).enqueue_in_sqlite(&conn).unwrap();
    let after = SystemTime::now();

    let due = file
        .store
        .get(later)
        .await
        .unwrap()
        .unwrap()
        .next_due_at
        .unwrap();
    let ms = Duration::from_millis(1);
    assert!(due + ms >= before + hour && due <= after + hour, "{due:?}");
    let rec = file.store.get(fixed).await.unwrap().unwrap();
    assert_eq!(rec.next_due_at, Some(noon));
    assert_eq!(rec.state, CallState::Pending);

    // Neither is claimed now; both are once their due times pass.
    let f = vec![reindex::NAME.to_owned()];
    let b = file.store.backend();
    let lease = Duration::from_secs(30);
    assert!(b.claim("w", &f, 10, lease, after).await.unwrap().is_empty());
    let claims = b.claim("w", &f, 10, lease, after + hour).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].record.cid, later);
    let done = after + hour;
    assert!(b
        .complete(later, claims[0].fence, 1, done, done)
        .await
        .unwrap());
    let claims = b.claim("w", &f, 10, lease, noon).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].record.cid, fixed);
}

#[test]
fn the_default_store_takes_typed_calls_from_sync_code_too() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let file = rt.block_on(sqlite_store());
    retry_runtime::durable::set_default_store(file.store.clone());
    // The only test of this binary that sets the default store.
    let cid = reindex::call(3)
        .after(Duration::from_secs(90))
        .enqueue_blocking()
        .unwrap();
    let rec = rt.block_on(file.store.get(cid)).unwrap().expect("stored");
    assert_eq!(rec.args, r#"{"shard":3}"#);
    assert!(rec.next_due_at.unwrap() > SystemTime::now() + Duration::from_secs(80));
    let cid = rt
        .block_on(push_invoice::call(invoice(4), "paid".into()).enqueue())
        .unwrap();
    assert!(rt.block_on(file.store.get(cid)).unwrap().is_some());
}

#[tokio::test]
async fn an_argument_that_does_not_serialize_fails_the_enqueue_and_stores_nothing() {
    let file = sqlite_store().await;
    let conn = app_connection(&file.path);
    let counts = HashMap::from([((1, 2), 3)]);
    let err = tally::call(counts).enqueue_in_sqlite(&conn).unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert!(err.to_string().contains("`counts`"), "{err}");
    let err = tally::call(HashMap::from([((1, 2), 3)]))
        .enqueue_on(&file.store)
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Invalid(_)), "{err:?}");
    assert_eq!(file.store.stats().await.unwrap().total(), 0);
    tally::call(HashMap::new())
        .enqueue_in_sqlite(&conn)
        .unwrap();
    assert_eq!(file.store.stats().await.unwrap().total(), 1);
}

#[tokio::test]
async fn typed_enqueue_in_a_tokio_postgres_transaction() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let backend = std::sync::Arc::new(PostgresBackend::open(&url, true).await.unwrap());
    let store = Store::from_backend(backend.clone());
    let mut rx = backend.listen().await.unwrap();
    let mut client = connect(&url).await;
    client
        .batch_execute("CREATE TABLE invoices (id BIGINT PRIMARY KEY, cid TEXT)")
        .await
        .unwrap();

    let tx = client.transaction().await.unwrap();
    tx.execute("INSERT INTO invoices (id) VALUES (1)", &[])
        .await
        .unwrap();
    let dropped = push_invoice::call(invoice(1), "paid".into())
        .enqueue_in(&tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.get(dropped).await.unwrap(), None, "rolled back");

    let tx = client.transaction().await.unwrap();
    let call = push_invoice::call(invoice(2), "paid".into());
    let cid = call.cid();
    tx.execute(
        "INSERT INTO invoices (id, cid) VALUES (2, $1)",
        &[&cid.to_string()],
    )
    .await
    .unwrap();
    assert_eq!(call.enqueue_in(&tx).await.unwrap(), cid);
    let later = reindex::call(9)
        .after(Duration::from_secs(3600))
        .enqueue_in(&tx)
        .await
        .unwrap();
    assert_eq!(store.get(cid).await.unwrap(), None, "not before the commit");
    tx.commit().await.unwrap();

    let rec = store.get(cid).await.unwrap().expect("committed");
    assert_eq!(rec.function, push_invoice::NAME);
    assert_eq!(rec.state, CallState::Pending);
    let args: serde_json::Value = serde_json::from_str(&rec.args).unwrap();
    assert_eq!(args["invoice"]["id"], 2);
    let rows: i64 = client
        .query_one("SELECT count(*) FROM invoices", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1);
    let due = store
        .get(later)
        .await
        .unwrap()
        .unwrap()
        .next_due_at
        .unwrap();
    assert!(
        due > SystemTime::now() + Duration::from_secs(3500),
        "{due:?}"
    );

    // The commit woke the workers of both functions (the rollback, no one).
    let mut woken = Vec::new();
    while woken.len() < 2 {
        let name = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a wake-up within 30 s")
            .expect("listening");
        if name == push_invoice::NAME || name == reindex::NAME {
            woken.push(name);
        }
    }
    woken.sort();
    assert_eq!(woken, [push_invoice::NAME, reindex::NAME]);
}
