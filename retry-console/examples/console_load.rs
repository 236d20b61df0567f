//! What 10 browsers on the console cost the workers: a store holding N calls (default
//! 100,000, see `big_store`) gets D more calls of a no-op durable function (default 100,000
//! on SQLite, 30,000 on PostgreSQL), and one `Worker` (concurrency 32) drains them, once
//! with nobody looking and once with 10 browsers open on the overview, each loading the page
//! and then fetching its live part every 5 seconds as `assets/refresh.js` does, over HTTP on
//! loopback. The rounds alternate which goes first; the figure is the drain rate of each and
//! their ratio, per round and as medians. The store's durability is its default
//! (`synchronous = FULL` on SQLite).
//!
//! ```sh
//! cargo run --release -p retry-console --example console_load -- [N] [D-SQLite] [D-PostgreSQL] [ROUNDS]
//! ```
//!
//! With `RETRY_TEST_POSTGRES_URL` set, the same on PostgreSQL.

#![allow(clippy::cast_precision_loss)] // counts shown as f64 rates

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use http::Request;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use retry_console::{router, Console, ConsoleConfig};
use retry_runtime::durable::{NewCall, Store, Worker};
use retry_runtime::retry;

mod big_store;

/// Attempts run so far by the no-op (the end of a drain is when it reaches the target).
static RAN: AtomicU64 = AtomicU64::new(0);

#[retry(mode = "durable", name = "load::noop", max = 3, delay = "10ms")]
async fn noop(n: u64) -> Result<u64, String> {
    RAN.fetch_add(1, Ordering::Relaxed);
    Ok(n)
}

const BROWSERS: usize = 10;
const REFRESH: Duration = Duration::from_secs(5);

/// Serves the console over `store` on a loopback port; its address.
async fn serve(store: Store) -> std::net::SocketAddr {
    let app = router(Console::new(store, ConsoleConfig::default()).unwrap());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// A browser on the overview until `stop`: the page, then its live part every 5 s. Returns
/// the requests made and the time spent waiting for answers.
async fn browser(addr: std::net::SocketAddr, stop: Arc<AtomicBool>) -> (u64, Duration) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Body>();
    let mut requests = 0;
    let mut busy = Duration::ZERO;
    let mut path = "/";
    while !stop.load(Ordering::Relaxed) {
        let started = Instant::now();
        let answer = client
            .request(
                Request::get(format!("http://{addr}{path}"))
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert!(answer.status().is_success(), "{path}: {}", answer.status());
        axum::body::to_bytes(Body::new(answer.into_body()), 64 << 20)
            .await
            .unwrap();
        busy += started.elapsed();
        requests += 1;
        path = "/live";
        let wake = Instant::now() + REFRESH;
        while Instant::now() < wake && !stop.load(Ordering::Relaxed) {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    (requests, busy)
}

/// Enqueues `d` calls of the no-op, then drains them with one worker, with `browsers`
/// browsers on the console meanwhile: calls per second, requests made, median answer time.
async fn drain(store: &Store, addr: std::net::SocketAddr, d: u64, browsers: usize) -> f64 {
    for chunk in (0..d).collect::<Vec<_>>().chunks(10_000) {
        let calls = chunk
            .iter()
            .map(|n| NewCall::new("load::noop", format!(r#"{{"n":{n}}}"#)))
            .collect();
        store.enqueue(calls).await.unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let watchers: Vec<_> = (0..browsers)
        .map(|_| tokio::spawn(browser(addr, stop.clone())))
        .collect();
    let target = RAN.load(Ordering::Relaxed) + d;
    let started = Instant::now();
    let worker = Worker::builder(store.clone()).concurrency(32).start();
    while RAN.load(Ordering::Relaxed) < target {
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "no drain in 15 minutes"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let took = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let mut requests = 0;
    let mut busy = Duration::ZERO;
    for w in watchers {
        let (r, b) = w.await.unwrap();
        requests += r;
        busy += b;
    }
    worker.shutdown(Duration::from_secs(10)).await;
    let rate = d as f64 / took.as_secs_f64();
    let mean = if requests == 0 {
        0.0
    } else {
        busy.as_secs_f64() * 1000.0 / requests as f64
    };
    println!(
        "    {browsers:>2} browsers: {d} calls in {:.2} s = {rate:.0} calls/s; {requests} page \
         requests, {mean:.1} ms each on average",
        took.as_secs_f64()
    );
    rate
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

async fn rounds(label: &str, store: &Store, d: u64, rounds: usize) {
    let addr = serve(store.clone()).await;
    let (mut alone, mut watched, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for round in 0..rounds {
        println!("  {label}, round {}", round + 1);
        let (a, w) = if round % 2 == 0 {
            let a = drain(store, addr, d, 0).await;
            (a, drain(store, addr, d, BROWSERS).await)
        } else {
            let w = drain(store, addr, d, BROWSERS).await;
            (drain(store, addr, d, 0).await, w)
        };
        alone.push(a);
        watched.push(w);
        ratios.push(w / a);
    }
    let ratio = median(ratios);
    println!(
        "{label}: medians: alone {:.0} calls/s, with {BROWSERS} browsers {:.0} calls/s; \
         median ratio {ratio:.3} (cost {:.1}%)",
        median(alone),
        median(watched),
        (1.0 - ratio) * 100.0
    );
}

#[tokio::main]
async fn main() {
    let arg = |i: usize, default: u64| {
        std::env::args()
            .nth(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let n = usize::try_from(arg(1, 100_000)).unwrap();
    let (d_sqlite, d_pg) = (arg(2, 100_000), arg(3, 30_000));
    let count = usize::try_from(arg(4, 3)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    {
        let seeding = Store::open(&format!("sqlite:{}?synchronous=off", path.display()))
            .await
            .unwrap();
        big_store::seed_sqlite(&seeding, &path, n).await;
    }
    let store = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap();
    rounds(&format!("SQLite, {n} calls"), &store, d_sqlite, count).await;

    if std::env::var_os("RETRY_TEST_POSTGRES_URL").is_some() {
        let (store, admin, schema) = big_store::seed_postgres(n).await;
        rounds(&format!("PostgreSQL, {n} calls"), &store, d_pg, count).await;
        big_store::common::drop_schema(&admin, &schema).await;
    }
}
