use retry_runtime::retry;

#[derive(Debug)]
struct ApiError(u32);

// Misses the attempt number and the delay; `on_retry` is `Fn(u32, &E, Duration)`.
fn log(e: &ApiError) {
    eprintln!("{e:?}");
}

#[retry(max = 2, on_retry = log)]
async fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
