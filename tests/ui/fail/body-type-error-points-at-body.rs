use retry_runtime::retry;

#[retry(max = 2)]
fn fetch(id: u32) -> Result<u32, String> {
    let n: u32 = "not a number";
    Ok(id + n)
}

fn main() {
    let _ = fetch(1);
}
