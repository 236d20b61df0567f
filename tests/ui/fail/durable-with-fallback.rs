use retry_runtime::retry;

#[retry(mode = "durable", fallback = |_r| Ok(0))]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
