use retry_runtime::retry;

#[retry(max = 2)]
const fn fetch() -> Result<u32, u32> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
