use retry_runtime::retry;

struct Order;

#[retry(mode = "durable", unique_key = Order)]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
