use retry_runtime::retry;

#[retry(name = billing::charge)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
