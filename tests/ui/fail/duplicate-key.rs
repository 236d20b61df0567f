use retry_runtime::retry;

#[retry(max = 2, delay = "1ms", max = 3)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
