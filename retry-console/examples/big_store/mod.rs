//! A big store for the console's examples: N calls of 10 functions (80% succeeded, 10% dead,
//! 5% waiting, 5% pending, every pending and waiting call already due), their last changes
//! spread over the last two hours (so the overview's hour holds about half of them).

use std::time::{Duration, Instant, SystemTime};

use retry_runtime::durable::{NewCall, Store};

#[path = "../../tests/common/mod.rs"]
pub mod common;

const BATCH: usize = 10_000;

/// Enqueues `n` calls through the store, created over the last two hours.
pub async fn enqueue(store: &Store, n: usize) {
    let now = SystemTime::now();
    let mut made = 0;
    while made < n {
        let size = BATCH.min(n - made);
        let calls = (made..made + size)
            .map(|i| {
                NewCall::new(
                    format!("app::function_{}", i % 10),
                    format!(r#"{{"order":{i},"customer":"c{}"}}"#, i % 977),
                )
            })
            .collect();
        let age = Duration::from_millis(7_200_000 * (n - made) as u64 / n as u64);
        store.backend().enqueue(calls, now - age).await.unwrap();
        made += size;
    }
}

/// The states of the seeded calls, set in bulk (the console only reads them).
pub const STATES: &str = "UPDATE {calls} SET \
    state = CASE WHEN h < 80 THEN 'succeeded' WHEN h < 90 THEN 'dead' \
                 WHEN h < 95 THEN 'waiting' ELSE 'pending' END, \
    attempts = CASE WHEN h < 95 THEN 1 + h % 5 ELSE 0 END, \
    last_error = CASE WHEN h >= 80 AND h < 95 THEN 'Os { code: 111, kind: ConnectionRefused }' END, \
    dead_reason = CASE WHEN h >= 80 AND h < 90 THEN 'policy exhausted' END, \
    next_due_at = CASE WHEN h >= 90 THEN created_at + 60000 END, \
    updated_at = created_at + 1000 \
    FROM (SELECT cid AS c, {hash} AS h FROM {calls}) AS x WHERE {calls}.cid = x.c";

/// Seeds `n` calls in the SQLite file `path` through `store` (opened on it).
pub async fn seed_sqlite(store: &Store, path: &std::path::Path, n: usize) {
    let started = Instant::now();
    enqueue(store, n).await;
    let db = rusqlite::Connection::open(path).unwrap();
    db.execute_batch(
        &STATES
            .replace("{calls}", "calls")
            .replace("{hash}", "abs(random()) % 100"),
    )
    .unwrap();
    db.execute_batch("ANALYZE").unwrap();
    drop(db);
    println!(
        "SQLite: {n} calls seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// Seeds `n` calls in a fresh PostgreSQL schema: (its store, an admin client, the schema).
pub async fn seed_postgres(n: usize) -> (Store, tokio_postgres::Client, String) {
    let (store, admin, schema) = common::postgres_store().await.unwrap();
    let started = Instant::now();
    enqueue(&store, n).await;
    admin
        .batch_execute(&format!(
            "SET search_path = {schema}; {}",
            STATES
                .replace("{calls}", "retry_calls")
                .replace("{hash}", "floor(random() * 100)::int")
        ))
        .await
        .unwrap();
    // As autovacuum would have by then: visibility map set, statistics fresh.
    admin
        .batch_execute(&format!("VACUUM ANALYZE {schema}.retry_calls"))
        .await
        .unwrap();
    println!(
        "PostgreSQL: {n} calls seeded in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    (store, admin, schema)
}
