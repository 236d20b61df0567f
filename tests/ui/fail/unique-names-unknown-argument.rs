use retry_runtime::retry;

#[retry(mode = "durable", unique = (order, regoin))]
async fn push(order: u32, region: String) -> Result<u32, String> {
    let _ = region;
    Ok(order)
}

fn main() {}
