use retry_runtime::retry;

#[retry(mode = "durable", persist = "on_failure", unique = "args")]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
