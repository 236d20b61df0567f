use retry_runtime::retry;

#[retry(max = 2)]
fn fetch() -> Result<u32, String> {
    Ok("one")
}

fn main() {}
