use retry_runtime::retry;

#[retry(backoff = "fixed", factor = 3)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
