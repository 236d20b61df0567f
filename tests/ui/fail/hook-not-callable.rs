use retry_runtime::retry;

#[retry(max = 2, when = true)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
