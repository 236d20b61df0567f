use retry_runtime::retry;

#[retry(max = 3, throttle = "20")]
fn push() -> Result<(), String> {
    Ok(())
}

fn main() {
    let _ = push();
}
