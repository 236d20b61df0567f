use retry_runtime::retry;

#[retry(crate = ::retry_runtime)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
