use retry_runtime::retry;

// One argument; `on_retry` is `Fn(u32, &E, Duration)`.
#[retry(max = 2, on_retry = |e| eprintln!("{e:?}"))]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
