//! Typed durable calls enqueued inside a `sqlx` PostgreSQL transaction (retry-runtime's `sqlx`
//! feature): stored, and workers woken, if and only if the caller commits.
//!
//! Needs `RETRY_TEST_POSTGRES_URL` (see `tests/durable_postgres.rs`); the root package's
//! dev-dependency turns the feature on.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use retry_runtime::durable::{CallState, DurableFn, NewCall, PostgresBackend, Store, StoreError};
use retry_runtime::retry;
use sqlx::Connection;

#[path = "common/pg.rs"]
mod pg;
use pg::fresh_schema;

#[retry(mode = "durable")]
async fn confirm_order(order: u64, email: String) -> Result<(), std::io::Error> {
    let _ = (order, email);
    Ok(())
}

#[tokio::test]
async fn typed_enqueue_in_a_sqlx_transaction_is_stored_on_commit_only() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let backend = Arc::new(PostgresBackend::open(&url, true).await.unwrap());
    let store = Store::from_backend(backend.clone());
    let mut rx = backend.listen().await.unwrap();
    let mut conn = sqlx::PgConnection::connect(&url).await.unwrap();
    sqlx::query("CREATE TABLE orders (id BIGINT PRIMARY KEY, cid TEXT)")
        .execute(&mut conn)
        .await
        .unwrap();

    let mut tx = conn.begin().await.unwrap();
    sqlx::query("INSERT INTO orders (id) VALUES (1)")
        .execute(&mut *tx)
        .await
        .unwrap();
    let dropped = confirm_order::call(1, "a@example.com".into())
        .enqueue_in_sqlx(&mut tx)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.get(dropped).await.unwrap(), None, "rolled back");

    let mut tx = conn.begin().await.unwrap();
    let call = confirm_order::call(2, "b@example.com".into()).after(Duration::from_secs(3600));
    let cid = call.cid();
    sqlx::query("INSERT INTO orders (id, cid) VALUES (2, $1)")
        .bind(cid.to_string())
        .execute(&mut *tx)
        .await
        .unwrap();
    assert_eq!(call.enqueue_in_sqlx(&mut tx).await.unwrap(), cid);
    // A duplicate fails alone: its savepoint is rolled back and the transaction goes on.
    let again = NewCall::new("f", "[]").with_cid(cid);
    let err = PostgresBackend::enqueue_in_sqlx(&mut tx, &[again], SystemTime::now())
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Duplicate(cid));
    assert_eq!(store.get(cid).await.unwrap(), None, "not before the commit");
    tx.commit().await.unwrap();

    let rec = store.get(cid).await.unwrap().expect("committed");
    assert_eq!(rec.function, confirm_order::NAME);
    assert_eq!(rec.state, CallState::Pending);
    assert_eq!(rec.args, r#"{"email":"b@example.com","order":2}"#);
    assert!(rec.next_due_at.unwrap() > SystemTime::now() + Duration::from_secs(3500));
    let (orders,): (i64,) = sqlx::query_as("SELECT count(*) FROM orders")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(orders, 1);

    // The commit woke the function's workers once; the rollback, no one.
    let woken = loop {
        let name = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a wake-up within 30 s")
            .expect("listening");
        if name == confirm_order::NAME {
            break name;
        }
    };
    assert_eq!(woken, confirm_order::NAME);
    let claims = store
        .backend()
        .claim(
            "w",
            &[confirm_order::NAME.to_owned()],
            10,
            Duration::from_secs(30),
            SystemTime::now(),
        )
        .await
        .unwrap();
    assert!(claims.is_empty(), "due in an hour");
}
