use retry_runtime::retry;

const N: usize = 3;

#[retry(max = N)]
fn f() -> Result<(), String> {
    Ok(())
}

fn main() {}
