use retry_runtime::retry;

#[retry(mode = "async")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
