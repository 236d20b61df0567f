use retry_runtime::retry;

#[retry(factor = 1)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
