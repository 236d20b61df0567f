use retry_runtime::{retry, Report};
use std::time::Duration;

#[derive(Debug)]
struct ApiError(u64);

fn transient(e: &ApiError) -> bool {
    e.0 < 500
}
fn retry_after(e: &ApiError) -> Option<Duration> {
    (e.0 == 429).then(|| Duration::from_millis(0))
}
fn log(n: u32, e: &ApiError, d: Duration) {
    eprintln!("{n} {e:?} {d:?}");
}
fn alert(r: &Report<ApiError>) {
    eprintln!("{r}");
}
fn recover(_r: Report<ApiError>) -> Result<u32, ApiError> {
    Ok(0)
}

#[retry(
    max = 2,
    delay = "0ms",
    when = transient,
    delay_from = retry_after,
    on_retry = log,
    on_exhausted = alert,
    fallback = recover,
)]
fn fetch(code: u64) -> Result<u32, ApiError> {
    Err(ApiError(code))
}

fn main() {
    assert_eq!(fetch(429).unwrap(), 0);
}
