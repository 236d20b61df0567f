use retry_runtime::retry;

#[retry(delay = "1.0000000001s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
