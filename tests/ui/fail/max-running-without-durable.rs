use retry_runtime::retry;

#[retry(max = 3, max_running = 2)]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

#[retry(mode = "background", max_running = 2)]
async fn push_later(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
