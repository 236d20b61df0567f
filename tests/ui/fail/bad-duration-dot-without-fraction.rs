use retry_runtime::retry;

#[retry(delay = "1.s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
