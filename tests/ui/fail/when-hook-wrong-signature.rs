use retry_runtime::retry;

#[derive(Debug)]
struct ApiError(u32);

// Takes the error by value; `when` is `Fn(&E) -> bool`.
fn is_transient(e: ApiError) -> bool {
    e.0 < 500
}

#[retry(max = 2, when = is_transient)]
fn fetch() -> Result<u32, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
