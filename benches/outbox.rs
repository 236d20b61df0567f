//! Enqueuing a durable call inside the caller's transaction against a plain insert of one row
//! in the same transaction, on PostgreSQL (tokio-postgres) and on SQLite (rusqlite on the
//! store's own file). Prints one `outbox-result: {json}` line per figure.
//!
//! Each transaction inserts one order row, then either one more plain row (`outbox_plain`:
//! an id, a function name and a JSON text, like the call's own columns) or the typed call
//! (`push::call(id).enqueue_in(&tx)` / `.enqueue_in_sqlite(&tx)`), then commits. Measured:
//! the whole transaction (BEGIN to COMMIT, fsync included) and the second statement alone, as
//! medians over `N` transactions, the two kinds alternating so that the server's and the
//! disk's drifts fall on both. PostgreSQL: a fresh schema; `synchronous_commit` as the server
//! has it. SQLite: a fresh file, WAL, `synchronous = FULL` on both connections.
//!
//! Needs `RETRY_BENCH_POSTGRES_URL` or `RETRY_TEST_POSTGRES_URL` for the PostgreSQL half (else
//! it is skipped). `RETRY_BENCH_QUICK=1` runs 200 transactions of each kind instead of 2,000.

#![allow(clippy::cast_precision_loss)] // durations shown as f64 microseconds

use std::time::{Duration, Instant};

use retry_runtime::durable::Store;
use retry_runtime::retry;
use serde_json::json;

#[retry(mode = "durable", name = "bench::outbox_push")]
async fn push(order: i64) -> Result<(), String> {
    let _ = order;
    Ok(())
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1e6
}

fn emit(
    store: &str,
    plain_tx: Vec<Duration>,
    call_tx: Vec<Duration>,
    plain: Vec<Duration>,
    call: Vec<Duration>,
) {
    let (pt, ct, ps, cs) = (
        median(plain_tx),
        median(call_tx),
        median(plain),
        median(call),
    );
    println!(
        "outbox-result: {}",
        json!({
            "store": store,
            "plain_tx_us": pt, "enqueue_tx_us": ct, "tx_ratio": ct / pt,
            "plain_stmt_us": ps, "enqueue_stmt_us": cs, "stmt_ratio": cs / ps,
        })
    );
}

fn server_url() -> Option<String> {
    ["RETRY_BENCH_POSTGRES_URL", "RETRY_TEST_POSTGRES_URL"]
        .iter()
        .find_map(|k| std::env::var(k).ok().filter(|u| !u.is_empty()))
}

async fn postgres(server: &str, n: usize) {
    let (admin, conn) = tokio_postgres::connect(server, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    let schema = format!("retry_outbox_bench_{}", std::process::id());
    admin
        .batch_execute(&format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
        ))
        .await
        .unwrap();
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-csearch_path%3D{schema}");
    let _store = Store::open(&url).await.unwrap(); // creates the store's tables
    let (mut client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(
            "CREATE TABLE orders (id BIGINT PRIMARY KEY); \
             CREATE TABLE outbox_plain (id TEXT PRIMARY KEY, function TEXT NOT NULL, args TEXT NOT NULL)",
        )
        .await
        .unwrap();
    let (mut plain_tx, mut call_tx, mut plain, mut call) = (vec![], vec![], vec![], vec![]);
    for i in 0..2 * n {
        let id = i64::try_from(i).unwrap();
        let start = Instant::now();
        let tx = client.transaction().await.unwrap();
        tx.execute("INSERT INTO orders (id) VALUES ($1)", &[&id])
            .await
            .unwrap();
        let s = Instant::now();
        if i % 2 == 0 {
            let args = format!(r#"{{"order":{id}}}"#);
            tx.execute(
                "INSERT INTO outbox_plain (id, function, args) VALUES ($1, $2, $3)",
                &[&id.to_string(), &"bench::outbox_push", &args],
            )
            .await
            .unwrap();
        } else {
            push::call(id).enqueue_in(&tx).await.unwrap();
        }
        let stmt = s.elapsed();
        tx.commit().await.unwrap();
        let whole = start.elapsed();
        if i < 20 {
            continue; // warm-up: statements prepared, caches filled
        }
        if i % 2 == 0 {
            plain.push(stmt);
            plain_tx.push(whole);
        } else {
            call.push(stmt);
            call_tx.push(whole);
        }
    }
    emit("postgres", plain_tx, call_tx, plain, call);
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}

async fn sqlite(n: usize) {
    let dir = std::env::temp_dir().join(format!("retry-outbox-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("app.db");
    let _store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    let mut db = rusqlite::Connection::open(&path).unwrap();
    db.busy_timeout(Duration::from_secs(5)).unwrap();
    db.execute_batch(
        "PRAGMA journal_mode = WAL; PRAGMA synchronous = FULL; \
         CREATE TABLE orders (id INTEGER PRIMARY KEY); \
         CREATE TABLE outbox_plain (id TEXT PRIMARY KEY, function TEXT NOT NULL, args TEXT NOT NULL)",
    )
    .unwrap();
    let (mut plain_tx, mut call_tx, mut plain, mut call) = (vec![], vec![], vec![], vec![]);
    for i in 0..2 * n {
        let id = i64::try_from(i).unwrap();
        let start = Instant::now();
        let tx = db.transaction().unwrap();
        tx.execute("INSERT INTO orders (id) VALUES (?1)", [id])
            .unwrap();
        let s = Instant::now();
        if i % 2 == 0 {
            let args = format!(r#"{{"order":{id}}}"#);
            tx.prepare_cached("INSERT INTO outbox_plain (id, function, args) VALUES (?1, ?2, ?3)")
                .unwrap()
                .execute(rusqlite::params![
                    id.to_string(),
                    "bench::outbox_push",
                    args
                ])
                .unwrap();
        } else {
            push::call(id).enqueue_in_sqlite(&tx).unwrap();
        }
        let stmt = s.elapsed();
        tx.commit().unwrap();
        let whole = start.elapsed();
        if i < 20 {
            continue;
        }
        if i % 2 == 0 {
            plain.push(stmt);
            plain_tx.push(whole);
        } else {
            call.push(stmt);
            call_tx.push(whole);
        }
    }
    emit("sqlite", plain_tx, call_tx, plain, call);
    let _ = std::fs::remove_dir_all(&dir);
}

fn main() {
    let n = if std::env::var("RETRY_BENCH_QUICK").is_ok() {
        200
    } else {
        2000
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        sqlite(n).await;
        match server_url() {
            Some(url) => postgres(&url, n).await,
            None => println!("outbox: PostgreSQL skipped (no RETRY_BENCH_POSTGRES_URL)"),
        }
    });
}
