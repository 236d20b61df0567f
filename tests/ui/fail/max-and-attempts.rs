use retry_runtime::retry;

// The error goes on the later key, `attempts`.
#[retry(max = 2, delay = "1ms", attempts = 3)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
