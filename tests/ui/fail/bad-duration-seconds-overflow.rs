use retry_runtime::retry;

// Fits in a u128 of nanoseconds, but not in `Duration`'s u64 seconds.
#[retry(delay = "18446744073709551616s")]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
