use retry_runtime::retry;

#[retry(delay = "-1s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
