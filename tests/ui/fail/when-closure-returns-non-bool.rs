use retry_runtime::retry;

#[derive(Debug)]
struct ApiError(u32);

#[retry(max = 2, when = |e: &ApiError| e.0)]
fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {}
