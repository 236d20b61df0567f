use retry_runtime::retry;

#[retry(mode = "durable")]
async fn push((a, b): (u32, u32)) -> Result<u32, String> {
    Ok(a + b)
}

fn main() {}
