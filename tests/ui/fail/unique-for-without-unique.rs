use retry_runtime::retry;

#[retry(mode = "durable", unique_for = "1h")]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
