use retry_runtime::retry;

#[derive(Debug)]
struct ApiError;

#[retry(max = 2, timeout = "1s")]
async fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {}
