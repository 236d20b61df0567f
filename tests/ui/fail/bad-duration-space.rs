use retry_runtime::retry;

#[retry(delay = "5 sec")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
