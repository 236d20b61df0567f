use retry_runtime::retry;

struct ApiError;

#[retry(max = 2)]
fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
