use retry_runtime::retry;

// The later of the two conflicting keys is `backoff`.
#[retry(factor = 3, backoff = "linear")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
