use retry_runtime::retry;

#[retry(mode = "durable")]
async fn push(name: &str) -> Result<usize, String> {
    Ok(name.len())
}

fn main() {}
