//! An async service that hands off a failing downstream call: the request is answered as
//! soon as the first attempt has failed, the retries go on in the background, and their
//! outcome is logged by the completion callback with the request's correlation ID.
//!
//! Run with `cargo run -p retry-examples --example handoff_service`.

use retry_runtime::{retry, Handoff, Report};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[derive(Debug)]
enum Downstream {
    Busy { retry_after_ms: u64 },
}

fn log_done(r: &Report<Downstream>) {
    tracing::info!(cid = %r.cid, reason = %r.reason, attempts = r.attempts, "notification finished");
}

/// Notifies the billing service; it is busy for the first two calls and says how long to wait.
#[retry(
    max = 4,
    delay = "100ms",
    delay_from = |e: &Downstream| match e {
        Downstream::Busy { retry_after_ms } => Some(Duration::from_millis(*retry_after_ms)),
    },
    mode = "handoff",
    on_done = log_done,
)]
async fn notify_billing(order: u64) -> Result<u64, Downstream> {
    if ATTEMPTS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(Downstream::Busy { retry_after_ms: 30 });
    }
    Ok(order)
}

/// The request handler: answers at once, whatever the downstream does.
async fn handle_request(order: u64) -> &'static str {
    match notify_billing(order).await {
        Handoff::Done(Ok(_)) => "billed",
        Handoff::Done(Err(_)) => "billing refused",
        Handoff::Retrying(handle) => {
            tracing::info!(cid = %handle.cid(), "billing busy; retrying in the background");
            "accepted; billing will follow"
        }
    }
}

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();

    println!("response: {}", handle_request(7).await);
    // Serve other requests... here, just let the background retries run their course.
    while retry_runtime::in_flight() > 0 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let unfinished = retry_runtime::shutdown(Duration::from_secs(2)).await;
    println!("all background work done; unfinished: {}", unfinished.len());
}
