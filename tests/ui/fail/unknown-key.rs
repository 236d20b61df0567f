use retry_runtime::retry;

#[retry(max = 2, maxdelay = "1s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    // The function is still emitted: no "cannot find function" here.
    let _ = fetch();
}
