use retry_runtime::retry;

#[retry(mode = "durable", unique = "args", unique_for = "1 hour")]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
