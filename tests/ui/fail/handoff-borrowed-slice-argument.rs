use retry_runtime::retry;

#[retry(mode = "handoff")]
async fn save(bytes: &[u8]) -> Result<usize, std::io::Error> {
    Ok(bytes.len())
}

fn main() {}
