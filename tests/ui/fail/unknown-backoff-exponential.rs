use retry_runtime::retry;

// The spelled-out name of `"exp"`.
#[retry(backoff = "exponential")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
