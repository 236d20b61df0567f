use retry_runtime::retry;

#[retry(timeout = 5u64 * 1000)]
async fn fetch() -> Result<u32, std::io::Error> {
    Ok(1)
}

fn main() {}
