use retry_runtime::{retry, Report};

// Borrows the report; `fallback` is `Fn(Report<E>) -> R`, taking it by value.
fn recover(_r: &Report<String>) -> Result<u32, String> {
    Ok(0)
}

#[retry(max = 2, fallback = recover)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
