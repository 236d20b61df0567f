use retry_runtime::retry;

const LIMIT: u32 = 0;

#[retry(mode = "durable", max_running = LIMIT)]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
