use retry_runtime::retry;

// Every argument error in one compile, not one per compile.
#[retry(max = 0, backoff = "exponential", delay = "5 sec", tiemout = "1s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
