//! How fast the console's pages answer over a big store: seeds N calls (default 100,000) in a
//! SQLite file, and in PostgreSQL when `RETRY_TEST_POSTGRES_URL` is set, then times the
//! overview and list pages through the router (query and rendering, no network).
//!
//! ```sh
//! cargo run --release -p retry-console --example console_bench -- 1000000
//! ```
//!
//! The calls: 10 functions; 80% succeeded, 10% dead, 5% waiting, 5% pending; their last
//! changes spread over the last two hours (so the overview's hour holds about half of them).

use std::time::{Duration, Instant, SystemTime};

use axum::body::Body;
use axum::http::Request;
use retry_console::{router, Console, ConsoleConfig};
use retry_runtime::durable::Store;
use tower::ServiceExt;

mod big_store;

/// The median of 5 runs of `f`.
async fn median<F, Fut>(mut f: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut times = Vec::new();
    for _ in 0..5 {
        let started = Instant::now();
        f().await;
        times.push(started.elapsed());
    }
    times.sort();
    times[2]
}

async fn time_pages(label: &str, store: Store) {
    println!("{label}: the overview's queries");
    let since = SystemTime::now() - Duration::from_secs(3600);
    let stats = median(|| async { store.stats().await.map(drop).unwrap() }).await;
    let minutes = median(|| async { store.calls_per_minute(since).await.map(drop).unwrap() }).await;
    let lag = median(|| async { store.queue_lag().await.map(drop).unwrap() }).await;
    println!(
        "  stats {:.1} ms, calls per minute {:.1} ms, queue lag {:.1} ms",
        ms(stats),
        ms(minutes),
        ms(lag)
    );
    let app = router(Console::new(store, ConsoleConfig::default()).unwrap());
    let pages = [
        ("overview", "/".to_string()),
        ("list: all, latest change first", "/calls".to_string()),
        (
            "list: dead, one function",
            "/calls?function=app::function_3&state=dead".to_string(),
        ),
        (
            "list: waiting by due time",
            "/calls?state=waiting&sort=due-asc".to_string(),
        ),
        (
            "list: text in errors",
            "/calls?text=ConnectionRefused&state=dead".to_string(),
        ),
        (
            "bulk confirm: count dead",
            "/actions/bulk?action=requeue&state=dead".to_string(),
        ),
    ];
    println!("{label}:");
    for (name, uri) in pages {
        let mut times = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let answer = app
                .clone()
                .oneshot(Request::get(&uri).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert!(answer.status().is_success(), "{uri}: {}", answer.status());
            axum::body::to_bytes(answer.into_body(), 64 << 20)
                .await
                .unwrap();
            times.push(started.elapsed());
        }
        let first = times[0];
        times.sort();
        println!(
            "  {name:<34} first {:>7.1} ms   median {:>7.1} ms   best {:>7.1} ms",
            ms(first),
            ms(times[2]),
            ms(times[0])
        );
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |a| a.parse().expect("N calls"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let store = Store::open(&format!("sqlite:{}?synchronous=off", path.display()))
        .await
        .unwrap();
    big_store::seed_sqlite(&store, &path, n).await;
    time_pages(&format!("SQLite, {n} calls"), store).await;

    if std::env::var_os("RETRY_TEST_POSTGRES_URL").is_some() {
        let (store, admin, schema) = big_store::seed_postgres(n).await;
        time_pages(&format!("PostgreSQL, {n} calls"), store).await;
        big_store::common::drop_schema(&admin, &schema).await;
    }
}
