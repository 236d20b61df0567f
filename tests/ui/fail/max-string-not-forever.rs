use retry_runtime::retry;

#[retry(max = "always")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
