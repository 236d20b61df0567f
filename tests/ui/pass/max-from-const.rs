use retry_runtime::retry;
use std::sync::atomic::{AtomicU32, Ordering};

const RETRIES: u32 = 4;
const N: u32 = 2;

static MAX_CALLS: AtomicU32 = AtomicU32::new(0);
static ATTEMPTS_CALLS: AtomicU32 = AtomicU32::new(0);

#[retry(max = RETRIES, delay = "0ms")]
fn with_max() -> Result<(), String> {
    MAX_CALLS.fetch_add(1, Ordering::Relaxed);
    Err("down".into())
}

#[retry(attempts = N + 1, delay = "0ms")]
fn with_attempts() -> Result<(), String> {
    ATTEMPTS_CALLS.fetch_add(1, Ordering::Relaxed);
    Err("down".into())
}

fn main() {
    assert!(with_max().is_err());
    assert_eq!(MAX_CALLS.load(Ordering::Relaxed), RETRIES + 1);
    assert!(with_attempts().is_err());
    assert_eq!(ATTEMPTS_CALLS.load(Ordering::Relaxed), N + 1);
}
