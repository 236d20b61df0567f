use retry_runtime::retry;

#[retry(mode = background)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
