//! How soon a caller waiting for a durable call (`Store::wait_for`) learns of its success when
//! the call runs in ANOTHER PROCESS, on PostgreSQL: the worker process's outcome write fires
//! `NOTIFY retry_finished`, which the waiter's `LISTEN` connection hears, and the waiter reads
//! the call. Prints one `durable-wait-pg-result: {json}` line.
//!
//! A worker process (this binary again, in its child mode: one `Worker`, concurrency 1) runs
//! `bench::pg_stamp`, which sleeps 5 ms (so the waiter is surely waiting), then returns the
//! Unix time in microseconds: its success, kept as the call's result. The parent enqueues one
//! call at a time and waits for it; measured: from the stamp to the parent's `wait_for`
//! returning it (one machine, one clock). Five calls warm up first (connections, the `LISTEN`).
//!
//! Seen on the two shared cores of the development machine (PostgreSQL 15, loaded by other
//! builds), two runs of 300 calls: median 1.8 ms, p90 6.0 and 8.5 ms, p99 18.8 and 20.5 ms.
//!
//! Needs `RETRY_BENCH_POSTGRES_URL` or `RETRY_TEST_POSTGRES_URL`; without either it prints a
//! "skipped" line and exits 0. `RETRY_BENCH_QUICK=1` measures 50 calls instead of 300.
//!
//! ```sh
//! RETRY_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:54329/db \
//!     cargo bench -p retry-benches --bench durable_wait_pg
//! ```

// Microseconds shown as f64 milliseconds; a percentile's index rounded from an f64.
#![allow(
    clippy::cast_precision_loss,
    clippy::cast_possible_truncation,
    clippy::cast_sign_loss
)]

use core::time::Duration;
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use retry_runtime::durable::{NewCall, Store, Worker};
use retry_runtime::retry;
use serde_json::json;

const STAMP: &str = "bench::pg_stamp";
const CHILD_URL: &str = "RETRY_BENCH_WAIT_CHILD_URL";

/// Sleeps `ms`, then succeeds with the time of its success (Unix microseconds).
#[retry(mode = "durable", name = "bench::pg_stamp", max = 3, delay = "10ms")]
async fn pg_stamp(ms: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(unix_us(SystemTime::now()))
}

fn unix_us(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()).unwrap_or(0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// The worker process: opens the store, starts its worker, says `ready`, runs until its
/// standard input closes.
fn worker_child(url: &str) {
    let rt = runtime();
    let store = rt.block_on(Store::open_existing(url)).expect("the store");
    let worker = {
        let _enter = rt.enter();
        Worker::builder(store).concurrency(1).start()
    };
    println!("ready");
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    rt.block_on(worker.shutdown(Duration::from_secs(1)));
}

fn percentile(sorted: &[u64], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i] as f64 / 1000.0
}

fn main() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        worker_child(&url);
        return;
    }
    let Some(server) = ["RETRY_BENCH_POSTGRES_URL", "RETRY_TEST_POSTGRES_URL"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
    else {
        println!("durable-wait-pg-result: {}", json!({ "kind": "skipped" }));
        return;
    };
    let quick = std::env::var_os("RETRY_BENCH_QUICK").is_some_and(|v| v != "0");
    let n = if quick { 50 } else { 300 };
    let rt = runtime();
    let schema = format!("retry_bench_wait_{}", std::process::id());
    let admin = |sql: String| {
        let server = server.clone();
        rt.block_on(async move {
            let (client, connection) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .expect("PostgreSQL");
            tokio::spawn(connection);
            client.batch_execute(&sql).await.expect("the schema");
        });
    };
    admin(format!(
        "DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema}"
    ));
    let sep = if server.contains('?') { '&' } else { '?' };
    let url = format!("{server}{sep}options=-csearch_path%3D{schema}");
    let store = rt.block_on(Store::open(&url)).expect("the store");

    let mut child = Command::new(std::env::current_exe().expect("this binary"))
        .env(CHILD_URL, &url)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("the worker process");
    let mut lines = BufReader::new(child.stdout.take().expect("its stdout")).lines();
    assert!(
        lines.any(|l| l.is_ok_and(|l| l == "ready")),
        "the worker process is ready"
    );

    let mut took = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n + 5 {
        let call = NewCall::new(STAMP, r#"{"ms":5}"#);
        let cid = call.cid;
        let stamp: u64 = rt.block_on(async {
            store.enqueue(vec![call]).await.expect("enqueued");
            tokio::time::timeout(Duration::from_secs(30), store.wait_for::<u64>(cid))
                .await
                .expect("finished within 30 s")
                .expect("succeeded")
        });
        let learned = unix_us(SystemTime::now());
        if i >= 5 {
            took.push(learned.saturating_sub(stamp));
        }
    }
    let wall = started.elapsed();
    drop(child.stdin.take());
    let _ = child.wait();
    admin(format!("DROP SCHEMA IF EXISTS {schema} CASCADE"));

    took.sort_unstable();
    println!(
        "durable-wait-pg-result: {}",
        json!({
            "kind": "wait_latency",
            "calls": n,
            "median_ms": percentile(&took, 0.5),
            "p90_ms": percentile(&took, 0.9),
            "p99_ms": percentile(&took, 0.99),
            "max_ms": percentile(&took, 1.0),
            "min_ms": percentile(&took, 0.0),
            "wall_s": wall.as_secs_f64(),
        })
    );
}
