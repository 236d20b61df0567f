use retry_runtime::retry;
use std::time::Duration;

#[derive(Debug)]
struct ApiError(u64);

// Returns `Duration`; `delay_from` is `Fn(&E) -> Option<Duration>`.
#[retry(max = 2, delay_from = |e: &ApiError| Duration::from_millis(e.0))]
fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {}
