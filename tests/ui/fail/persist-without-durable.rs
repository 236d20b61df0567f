use retry_runtime::retry;

#[retry(mode = "background", persist = "on_failure")]
fn push(order: u32) -> Result<u32, String> {
    Ok(order)
}

fn main() {}
