use retry_runtime::retry;

#[retry(max = 2, mode = "durable")]
async fn fetch(id: u64) -> u32 {
    let _ = id;
    1
}

fn main() {
    let _ = fetch(1);
}
