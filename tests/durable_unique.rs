//! Unique durable calls: many enqueuers of one key at once store exactly one call, on SQLite
//! and on PostgreSQL; the SQL function `retry_enqueue` stores the row the Rust enqueue stores.
//! (The single-enqueuer rules are conformance cases: `unique_key_*`.)
//!
//! The PostgreSQL tests need `RETRY_TEST_POSTGRES_URL` (see `tests/durable_postgres.rs`).

use std::collections::HashSet;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use retry_runtime::durable::{CallState, Enqueued, ListFilter, NewCall, Store, Unique, POLL_ALL};
use retry_runtime::CorrelationId;

#[path = "common/pg.rs"]
mod pg;
use pg::{connect, fresh_schema};

const ENQUEUERS: usize = 32;
const ROUNDS: usize = 5;

/// `ENQUEUERS` tasks enqueue a call with the same key at once, `ROUNDS` times (a new key each
/// round): each round exactly one call is stored, and every enqueuer gets its ID.
async fn many_enqueuers_store_one_call(store: &Store) {
    for round in 0..ROUNDS {
        let key = format!("invoice-{round}");
        let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(ENQUEUERS));
        let tasks: Vec<_> = (0..ENQUEUERS)
            .map(|i| {
                let (store, key, barrier) = (store.clone(), key.clone(), barrier.clone());
                tokio::spawn(async move {
                    let call = NewCall::new("billing::charge", format!(r#"{{"by":{i}}}"#))
                        .unique(Unique::new(key));
                    barrier.wait().await;
                    store.enqueue_unique(call).await.unwrap()
                })
            })
            .collect();
        let mut answers = Vec::new();
        for t in tasks {
            answers.push(t.await.unwrap());
        }
        let stored: Vec<_> = answers.iter().filter(|a| a.is_stored()).collect();
        assert_eq!(stored.len(), 1, "round {round}: {answers:?}");
        let cids: HashSet<CorrelationId> = answers.iter().map(|a| a.cid()).collect();
        assert_eq!(cids.len(), 1, "round {round}: every enqueuer gets one ID");
        let rows = store
            .list(&ListFilter {
                function: Some("billing::charge".into()),
                ..ListFilter::default()
            })
            .await
            .unwrap();
        assert_eq!(rows.len(), round + 1, "one row per round");
        assert!(rows.iter().any(|r| r.cid == stored[0].cid()));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_enqueuers_of_one_key_store_one_call_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    many_enqueuers_store_one_call(&Store::open(&url).await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn many_enqueuers_of_one_key_store_one_call_on_postgres() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    many_enqueuers_store_one_call(&Store::open(&url).await.unwrap()).await;
}

/// The columns of a row of `retry_calls`, as JSON, without those that differ between two
/// enqueues (ID, times, arguments' spelling).
async fn row(client: &tokio_postgres::Client, cid: &str) -> serde_json::Value {
    let row = client
        .query_one(
            "SELECT (to_jsonb(c) - 'cid' - 'created_at' - 'updated_at' - 'next_due_at' \
                 - 'claimable_at' - 'args')::text \
             FROM retry_calls c WHERE cid = $1",
            &[&cid],
        )
        .await
        .unwrap();
    serde_json::from_str(row.get(0)).unwrap()
}

fn millis(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap().as_millis()).unwrap()
}

/// `SELECT retry_enqueue(...)` in a client's own transaction: invisible until commit, then
/// the same row as the Rust enqueue, an ID the runtime parses (minted now), the workers woken,
/// claimed and decoded; scheduling and unique keys; arguments that are not an object refused.
#[tokio::test]
async fn retry_enqueue_in_sql_stores_the_row_the_rust_enqueue_stores() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let mut wake_ups = store.backend().wake_ups().await.unwrap().unwrap();
    assert_eq!(
        wake_ups.recv().await.as_deref(),
        Some(POLL_ALL),
        "listening"
    );
    let mut client = connect(&url).await;

    let before = millis(SystemTime::now());
    let tx = client.transaction().await.unwrap();
    let cid: String = tx
        .query_one(
            "SELECT retry_enqueue('mail::send', '{\"to\": \"ops@example.com\"}'::jsonb)",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let parsed: CorrelationId = cid.parse().expect("a correlation ID");
    assert_eq!(parsed.to_string(), cid);
    assert!(
        store.get(parsed).await.unwrap().is_none(),
        "not visible before the commit"
    );
    tx.commit().await.unwrap();
    let after = millis(SystemTime::now());
    let minted = i64::try_from(parsed.as_u128() >> 80).unwrap();
    assert!(
        (before - 5..=after + 5).contains(&minted),
        "{before} <= {minted} <= {after}"
    );

    // The channel is the database's: other tests' schemas notify on it too.
    let woken = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(f) = wake_ups.recv().await {
            if f == "mail::send" {
                return f;
            }
        }
        unreachable!("the listener stopped")
    })
    .await
    .expect("a wake-up for mail::send");
    assert_eq!(woken, "mail::send");

    let rec = store.get(parsed).await.unwrap().expect("stored");
    assert_eq!(rec.state, CallState::Pending);
    assert_eq!(rec.function, "mail::send");
    let args: serde_json::Value = serde_json::from_str(&rec.args).unwrap();
    assert_eq!(args, serde_json::json!({"to": "ops@example.com"}));
    let due = millis(rec.next_due_at.unwrap());
    assert!((before..=after).contains(&due), "due at once");

    // The same row as `Store::enqueue` writes, column for column.
    let rust = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
    let rust_cid = rust.cid;
    store.enqueue(vec![rust]).await.unwrap();
    assert_eq!(
        row(&client, &cid).await,
        row(&client, &rust_cid.to_string()).await
    );

    // A worker claims both and reads the arguments.
    let claims = store
        .backend()
        .claim(
            "w",
            &["mail::send".to_string()],
            10,
            Duration::from_secs(30),
            SystemTime::now(),
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 2);
    let claimed = claims.iter().find(|c| c.record.cid == parsed).unwrap();
    let args: serde_json::Value = serde_json::from_str(&claimed.record.args).unwrap();
    assert_eq!(args["to"], "ops@example.com");
}

/// `retry_enqueue` with `delay` or `run_at`, and with a unique key shared with the Rust enqueue.
#[tokio::test]
async fn retry_enqueue_schedules_and_keeps_unique_keys() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let client = connect(&url).await;

    // Scheduling: after a delay, or at a time.
    let later: String = client
        .query_one(
            "SELECT retry_enqueue('mail::send', '{}', delay => interval '1 hour')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let rec = store.get(later.parse().unwrap()).await.unwrap().unwrap();
    let wait = rec
        .next_due_at
        .unwrap()
        .duration_since(rec.created_at)
        .unwrap();
    assert_eq!(wait, Duration::from_secs(3600));
    let at: String = client
        .query_one(
            "SELECT retry_enqueue('mail::send', '{}', run_at => '2030-01-01T00:00:00Z')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let rec = store.get(at.parse().unwrap()).await.unwrap().unwrap();
    assert_eq!(millis(rec.next_due_at.unwrap()), 1_893_456_000_000);

    // Unique keys, shared with the Rust enqueue of the same function.
    let keyed =
        |key: &str| format!("SELECT retry_enqueue('report::build', '{{}}', unique_key => '{key}')");
    let first: String = client.query_one(&keyed("day-1"), &[]).await.unwrap().get(0);
    let second: String = client.query_one(&keyed("day-1"), &[]).await.unwrap().get(0);
    assert_eq!(first, second);
    let from_rust = store
        .enqueue_unique(NewCall::new("report::build", "{}").unique(Unique::new("day-1")))
        .await
        .unwrap();
    assert_eq!(from_rust, Enqueued::Existing(first.parse().unwrap()));
    assert_eq!(
        store
            .stats()
            .await
            .unwrap()
            .count("report::build", CallState::Pending),
        1
    );
}

/// `retry_enqueue` refuses arguments that are not an object, and other mistakes, with a clear
/// message, and stores nothing.
#[tokio::test]
async fn retry_enqueue_refuses_arguments_that_are_not_an_object() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let client = connect(&url).await;

    // Arguments that are not an object, and other mistakes, raise with a clear message.
    for (sql, says) in [
        (
            "SELECT retry_enqueue('mail::send', '[1, 2]')",
            "must be a JSON object keyed by parameter name",
        ),
        (
            "SELECT retry_enqueue('mail::send', 'null'::jsonb)",
            "must be a JSON object",
        ),
        (
            "SELECT retry_enqueue('', '{}')",
            "`function` must be the registered name",
        ),
        (
            "SELECT retry_enqueue('f', '{}', run_at => now(), delay => interval '1 s')",
            "not both",
        ),
    ] {
        let err = client.query_one(sql, &[]).await.unwrap_err();
        let db = err.as_db_error().expect("a database error");
        assert!(db.message().contains(says), "{sql}: {}", db.message());
    }
    assert_eq!(store.stats().await.unwrap().total(), 0);
}

// == The attribute ==

#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct Body {
    text: String,
}

/// Keyed by every argument.
#[retry_runtime::retry(mode = "durable", name = "unique::by_args", unique = "args")]
async fn by_args(id: u64, body: Body) -> Result<(), std::io::Error> {
    let _ = (id, body);
    Ok(())
}

/// Keyed by `id` alone, kept an hour after success.
#[retry_runtime::retry(mode = "durable", name = "unique::by_id", unique = (id), unique_for = "1h")]
async fn by_id(id: u64, body: Body) -> Result<(), std::io::Error> {
    let _ = (id, body);
    Ok(())
}

/// Keyed by an expression of the arguments; a sync function.
#[retry_runtime::retry(
    mode = "durable",
    name = "unique::by_expr",
    unique_key = format!("{region}/{}", id % 10)
)]
fn by_expr(id: u64, region: String) -> Result<(), std::io::Error> {
    let _ = (id, region);
    Ok(())
}

fn body(text: &str) -> Body {
    Body { text: text.into() }
}

/// The keys `unique = "args"`, `unique = (id)` and `unique_key = ...` make, seen through the
/// calls they make the same: equal keys give the first call's ID and store nothing more.
/// (The only test of this file that sets the default store.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unique_durable_functions_return_the_unfinished_calls_id() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    retry_runtime::durable::set_default_store(store.clone());
    let count = |f: &'static str| {
        let store = store.clone();
        async move { store.stats().await.unwrap().count(f, CallState::Pending) }
    };

    let a = by_args(1, body("x")).await.unwrap();
    assert_eq!(by_args(1, body("x")).await.unwrap(), a);
    assert_ne!(by_args(1, body("y")).await.unwrap(), a, "another argument");
    assert_ne!(by_args(2, body("x")).await.unwrap(), a);
    assert_eq!(count("unique::by_args").await, 3);
    let rec = store.get(a).await.unwrap().unwrap();
    let args: serde_json::Value = serde_json::from_str(&rec.args).unwrap();
    assert_eq!(
        args,
        serde_json::json!({"id": 1, "body": {"text": "x"}}),
        "stored as usual"
    );

    let b = by_id(1, body("x")).await.unwrap();
    assert_eq!(
        by_id(1, body("other")).await.unwrap(),
        b,
        "only `id` counts"
    );
    assert_ne!(by_id(2, body("x")).await.unwrap(), b);
    assert_eq!(count("unique::by_id").await, 2);

    let c = tokio::task::spawn_blocking(|| {
        let c = by_expr(3, "eu".into()).unwrap();
        assert_eq!(by_expr(13, "eu".into()).unwrap(), c, "the same `eu/3`");
        assert_ne!(by_expr(3, "us".into()).unwrap(), c);
        c
    })
    .await
    .unwrap();
    assert_eq!(count("unique::by_expr").await, 2);
    assert!(store.get(c).await.unwrap().is_some());
}
