use retry_runtime::retry;

// The error goes on the later key, `max`.
#[retry(attempts = 3, max = "forever")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
