use retry_runtime::retry;
use std::time::Duration;

#[derive(Debug)]
struct ApiError(u64);

// Takes the error by value; `delay_from` is `Fn(&E) -> Option<Duration>`.
fn retry_after(e: ApiError) -> Option<Duration> {
    Some(Duration::from_millis(e.0))
}

#[retry(max = 2, delay_from = retry_after)]
fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
