use retry_runtime::retry;

#[retry(mode = "background", timeout = "none")]
async fn push() -> std::io::Result<()> {
    Ok(())
}

fn main() {}
