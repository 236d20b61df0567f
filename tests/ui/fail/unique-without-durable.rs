use retry_runtime::retry;

#[retry(mode = "background", unique = "args")]
async fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
