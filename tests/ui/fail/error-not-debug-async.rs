use retry_runtime::retry;

struct ApiError;

#[retry(max = 2)]
async fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {}
