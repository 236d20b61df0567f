use retry_runtime::retry;

#[retry(mode = "durable", max_running = "2")]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
