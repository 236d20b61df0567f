use retry_runtime::retry;

#[derive(Debug)]
struct ApiError;

#[retry(mode = "background", timeout = "1s")]
async fn save(record: String) -> Result<usize, ApiError> {
    Ok(record.len())
}

fn main() {}
