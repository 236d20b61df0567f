use retry_runtime::retry;

#[retry(budget = "99999999999999999999999999h")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
