use retry_runtime::retry;

#[retry(jitter = true)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
