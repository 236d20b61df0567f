use retry_runtime::retry;

#[retry(max = 2, mode = "handoff")]
fn fetch() -> u32 {
    1
}

fn main() {
    let _ = fetch();
}
