use retry_runtime::retry;

#[derive(Debug)]
struct ApiError;

// `?` on a `ParseIntError` needs `From<ParseIntError> for ApiError`.
#[retry(max = 2)]
async fn fetch(text: String) -> Result<u32, ApiError> {
    let n: u32 = text.parse()?;
    Ok(n)
}

fn main() {}
