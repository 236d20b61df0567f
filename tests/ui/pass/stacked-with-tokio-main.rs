use retry_runtime::retry;

#[retry(max = 2, delay = "0ms")]
#[inline]
#[must_use = "the outcome matters"]
#[allow(clippy::unnecessary_wraps)]
async fn fetch(id: u32) -> Result<u32, String> {
    Ok(id)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(fetch(3).await, Ok(3));
}
