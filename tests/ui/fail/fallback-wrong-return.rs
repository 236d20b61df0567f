use retry_runtime::retry;

// Returns `u32`; `fallback` must return the function's own `Result<u32, String>`.
#[retry(max = 2, fallback = |_r| 0)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
