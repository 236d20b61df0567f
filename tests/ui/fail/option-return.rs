use retry_runtime::retry;

#[retry(max = 2)]
async fn fetch() -> Option<u32> {
    Some(1)
}

fn main() {}
