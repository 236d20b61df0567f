use retry_runtime::retry;

const DELAY_MS: u32 = 5;

#[retry(delay = DELAY_MS)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
