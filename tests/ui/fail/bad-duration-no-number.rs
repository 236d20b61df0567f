use retry_runtime::retry;

#[retry(delay = "ms")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
