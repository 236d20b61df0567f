use retry_runtime::retry;

#[retry(mode = "durable", unique = (order), unique_key = order)]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
