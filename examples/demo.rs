//! The main demonstration: one flaky downstream call under each execution mode of `#[retry]`.
//!
//! Run with `cargo run -p retry-examples --example demo`. Events and spans are printed by a `tracing`
//! subscriber, so each retry, its correlation ID and the final outcome are visible.

use retry_runtime::{current_cid, retry, Handoff, Report};
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
}
