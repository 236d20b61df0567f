use retry_runtime::retry;

const NONE: u32 = 0;

#[retry(max = NONE)]
fn f() -> Result<(), String> {
    Ok(())
}

fn main() {}
