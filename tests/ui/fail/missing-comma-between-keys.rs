use retry_runtime::retry;

#[retry(max = 3 delay = "1s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
