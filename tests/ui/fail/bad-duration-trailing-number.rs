use retry_runtime::retry;

#[retry(max_delay = "1ms5")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
