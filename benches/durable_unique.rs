//! A unique enqueue against a plain one (goal: at most 1.3x), on a SQLite file store
//! (`synchronous = FULL`, WAL) and on PostgreSQL (`RETRY_BENCH_POSTGRES_URL`, else
//! `RETRY_TEST_POSTGRES_URL`; a fresh schema).
//!
//! Per store and per number of concurrent callers (1, then 32 tokio tasks): rounds of `N`
//! calls each way, interleaved (plain first in even rounds, unique first in odd ones), each
//! call one `Store::enqueue(vec![call])` or one `Store::enqueue_unique(call)` whose key is
//! new (the call is stored: the write a unique enqueue adds is the index entry and the check
//! for an expired key). Also the answer for a key already held (nothing stored). Reported:
//! the median per-call time of the rounds, and the ratio. `RETRY_BENCH_QUICK=1`: small sizes.

#![allow(clippy::cast_precision_loss)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use retry_runtime::durable::{NewCall, Store, Unique};
use tokio::runtime::Runtime;

static KEYS: AtomicU64 = AtomicU64::new(0);

fn call(unique: bool) -> NewCall {
    let n = KEYS.fetch_add(1, Ordering::Relaxed);
    let call = NewCall::new("bench::unique", format!(r#"{{"n":{n}}}"#));
    if unique {
        call.unique(Unique::new(format!("key-{n}")))
    } else {
        call
    }
}

/// `n` enqueues by `callers` tasks; the time per call.
async fn run(store: &Store, n: u64, callers: u64, how: &'static str) -> Duration {
    let start = Instant::now();
    let per = n / callers;
    let tasks: Vec<_> = (0..callers)
        .map(|_| {
            let store = store.clone();
            tokio::spawn(async move {
                for _ in 0..per {
                    match how {
                        "plain" => store.enqueue(vec![call(false)]).await.unwrap(),
                        "unique" => {
                            assert!(store.enqueue_unique(call(true)).await.unwrap().is_stored());
                        }
                        _ => {
                            let held =
                                NewCall::new("bench::unique", "{}").unique(Unique::new("held"));
                            assert!(!store.enqueue_unique(held).await.unwrap().is_stored());
                        }
                    }
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    start.elapsed() / u32::try_from(per * callers).unwrap()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn measure(rt: &Runtime, label: &str, store: &Store, n: u64, rounds: usize) {
    rt.block_on(async {
        let held = NewCall::new("bench::unique", "{}").unique(Unique::new("held"));
        store.enqueue_unique(held).await.unwrap();
        run(store, 50, 1, "plain").await;
        run(store, 50, 1, "unique").await;
    });
    for callers in [1, 32] {
        let (mut plain, mut unique, mut existing) = (Vec::new(), Vec::new(), Vec::new());
        for round in 0..rounds {
            rt.block_on(async {
                if round % 2 == 0 {
                    plain.push(run(store, n, callers, "plain").await);
                    unique.push(run(store, n, callers, "unique").await);
                } else {
                    unique.push(run(store, n, callers, "unique").await);
                    plain.push(run(store, n, callers, "plain").await);
                }
                existing.push(run(store, n, callers, "existing").await);
            });
        }
        let (p, u, e) = (median(plain), median(unique), median(existing));
        println!(
            "{label:<10} callers {callers:>2}: plain {:>8.1} us/call, unique {:>8.1} us/call \
             ({:.2}x), key already held {:>8.1} us/call",
            p.as_secs_f64() * 1e6,
            u.as_secs_f64() * 1e6,
            u.as_secs_f64() / p.as_secs_f64(),
            e.as_secs_f64() * 1e6,
        );
        // The same, for benches/report.py (`durable_unique.jsonl`).
        println!(
            "durable-unique-result: {{\"store\":\"{label}\",\"callers\":{callers},\
             \"calls\":{n},\"rounds\":{rounds},\"plain_us\":{:.3},\"unique_us\":{:.3},\
             \"held_us\":{:.3},\"ratio\":{:.4}}}",
            p.as_secs_f64() * 1e6,
            u.as_secs_f64() * 1e6,
            e.as_secs_f64() * 1e6,
            u.as_secs_f64() / p.as_secs_f64(),
        );
    }
}

fn main() {
    let quick = std::env::var("RETRY_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (n, rounds) = if quick { (256, 3) } else { (2048, 7) };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();

    let dir =
        std::env::var("CARGO_TARGET_TMPDIR").map_or_else(|_| std::env::temp_dir(), Into::into);
    let path = dir.join(format!("unique-bench-{}.db", std::process::id()));
    let store = rt
        .block_on(Store::open(&format!("sqlite:{}", path.display())))
        .unwrap();
    measure(&rt, "sqlite", &store, n, rounds);
    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }

    // The benchmark's server first (benches/run.sh: durable defaults, fsync on), then the
    // tests' one.
    let server = ["RETRY_BENCH_POSTGRES_URL", "RETRY_TEST_POSTGRES_URL"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()));
    if let Some(server) = server {
        let schema = format!("unique_bench_{}", std::process::id());
        let url = rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("CREATE SCHEMA {schema}"))
                .await
                .unwrap();
            let sep = if server.contains('?') { '&' } else { '?' };
            format!("{server}{sep}options=-csearch_path%3D{schema}")
        });
        let store = rt.block_on(Store::open(&url)).unwrap();
        measure(&rt, "postgres", &store, n, rounds);
        drop(store);
        rt.block_on(async {
            let (client, conn) = tokio_postgres::connect(&server, tokio_postgres::NoTls)
                .await
                .unwrap();
            tokio::spawn(conn);
            client
                .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
                .await
                .unwrap();
        });
    } else {
        println!("postgres: neither RETRY_BENCH_POSTGRES_URL nor RETRY_TEST_POSTGRES_URL is set, skipped");
    }
}
