use retry_runtime::retry;

#[derive(Debug)]
struct ApiError(u32);

// Returns the status, not a verdict; `when` is `Fn(&E) -> bool`.
fn status(e: &ApiError) -> u32 {
    e.0
}

#[retry(max = 2, when = status)]
fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
