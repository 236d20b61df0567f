//! The main demonstration: one flaky downstream call under each execution mode of `#[retry]`.
//!
//! Run with `cargo run -p retry-examples --example demo`. Events and spans are printed by a `tracing`
//! subscriber, so each retry, its correlation ID and the final outcome are visible.

use retry_runtime::{current_cid, durable, retry, Handoff, Report};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

/// What the downstream service answers when it fails.
#[derive(Debug)]
enum Downstream {
    Unavailable,
    Rejected,
}

static CALLS: AtomicU32 = AtomicU32::new(0);

fn flaky(fail_twice_in_three: bool) -> Result<u32, Downstream> {
    let n = CALLS.fetch_add(1, Ordering::SeqCst);
    if fail_twice_in_three && n % 3 != 2 {
        Err(Downstream::Unavailable)
    } else {
        Ok(n)
    }
}

fn transient(e: &Downstream) -> bool {
    matches!(e, Downstream::Unavailable)
}

fn alert(r: &Report<Downstream>) {
    println!("  on_exhausted: {r}");
}

/// Inline, sync: every attempt runs in the caller.
#[retry(max = 4, backoff = "exp", delay = "20ms", when = transient, on_exhausted = alert)]
fn fetch_price(sku: String) -> Result<u32, Downstream> {
    println!(
        "  attempt for {sku} (cid {})",
        current_cid().expect("in a call")
    );
    flaky(true)
}

/// Inline, async, with a per-attempt timeout and a fallback.
#[retry(
    attempts = 3,
    backoff = "linear",
    delay = "10ms",
    timeout = "200ms",
    fallback = |r| { println!("  fallback after {} attempts ({})", r.attempts, r.reason); Ok(0) },
)]
async fn fetch_stock(sku: String) -> Result<u32, std::io::Error> {
    let _ = sku;
    Err(std::io::Error::other("warehouse offline"))
}

/// Background: the caller gets a handle at once; every attempt runs in a task.
#[retry(max = 5, delay = "10ms", jitter = "equal", mode = "background",
        on_done = |r| println!("  on_done: {r}"))]
async fn push_invoice(id: u64) -> Result<u64, Downstream> {
    flaky(true).map(|_| id)
}

/// Hand-off: the first attempt runs here; only a failure moves to the background.
#[retry(max = 3, delay = "10ms", mode = "handoff", when = transient,
        on_done = |r| println!("  on_done: {} after {} attempt(s)", r.reason, r.attempts))]
fn save_activity(user: String) -> Result<(), Downstream> {
    if user.is_empty() {
        return Err(Downstream::Rejected);
    }
    flaky(true).map(|_| ())
}

static EXPORTS: AtomicU32 = AtomicU32::new(0);

/// Durable: stored before it runs; a worker runs it, here or in a later run of this program.
/// Its first attempt in each process fails.
#[retry(mode = "durable", max = 5, backoff = "fixed", delay = "1s")]
async fn export_report(day: String) -> Result<usize, Downstream> {
    if EXPORTS.fetch_add(1, Ordering::SeqCst) == 0 {
        println!("  exporting {day}: the warehouse is down");
        return Err(Downstream::Unavailable);
    }
    println!("  exporting {day}: done");
    Ok(day.len())
}

/// The durable part: the first run stores a call and stops before its retry; the next run
/// finds it in the store and finishes it.
async fn durable_demo() -> Result<(), durable::StoreError> {
    let path = std::env::temp_dir().join("retry-demo-calls.db");
    let store = durable::Store::open(&format!("sqlite:{}", path.display())).await?;
    durable::set_default_store(store.clone());
    println!("durable (SQLite store {}):", path.display());
    let left = store
        .list(&durable::ListFilter {
            function: Some("demo::export_report".into()),
            ..durable::ListFilter::default()
        })
        .await?
        .into_iter()
        .filter(|r| !r.state.is_finished())
        .collect::<Vec<_>>();
    let worker = durable::Worker::builder(store.clone())
        .poll_interval(Duration::from_millis(100))
        .start();
    if left.is_empty() {
        let cid = export_report("2026-12-01".into()).await?;
        println!("  stored call {cid}; a worker runs its first attempt");
        let rec = loop {
            let rec = store.get(cid).await?.expect("the call is stored");
            if rec.attempts >= 1 && rec.state != durable::CallState::Running {
                break rec;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        };
        worker.shutdown(Duration::from_secs(1)).await;
        println!(
            "  this run stops now: the call is {} after {} attempt(s) and survives the restart; \
             run the demo again to see the next run finish it",
            rec.state, rec.attempts
        );
    } else {
        println!(
            "  found {} call(s) left by the previous run; resuming",
            left.len()
        );
        for r in left {
            let rec = loop {
                let rec = store.get(r.cid).await?.expect("the call is stored");
                if rec.state.is_finished() {
                    break rec;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            };
            println!(
                "  call {} left by the previous run: {} after {} attempt(s) in all",
                rec.cid, rec.state, rec.attempts
            );
        }
        worker.shutdown(Duration::from_secs(1)).await;
    }
    Ok(())
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_max_level(tracing::Level::INFO)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    println!("inline (sync):");
    println!("  result: {:?}", fetch_price("sku-1".into()));

    println!("inline (async) with timeout and fallback:");
    println!("  result: {:?}", fetch_stock("sku-2".into()).await);

    println!("background:");
    let handle = push_invoice(42);
    println!("  handle {} is {:?}", handle.cid(), handle.status());
    println!("  result: {:?}", handle.await.map_err(|f| f.reason()));

    println!("hand-off:");
    match save_activity("ada".into()) {
        Handoff::Done(r) => println!("  first attempt decided: {r:?}"),
        Handoff::Retrying(h) => {
            println!(
                "  first attempt failed; retrying in the background as {}",
                h.cid()
            );
            println!("  result: {:?}", h.await.map_err(|f| f.reason()));
        }
    }

    println!("hand-off, not retryable:");
    if let Handoff::Done(r) = save_activity(String::new()) {
        println!("  returned at once: {r:?}");
    }

    let unfinished = retry_runtime::shutdown(Duration::from_secs(1)).await;
    println!("shutdown: {} unfinished call(s)", unfinished.len());

    if let Err(e) = durable_demo().await {
        println!("  durable demo failed: {e}");
        std::process::exit(1);
    }
}
