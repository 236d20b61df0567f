use retry_runtime::retry;

#[retry(max = 2, delay = "0ms")]
fn total(items: impl IntoIterator<Item = u32> + Clone) -> Result<u32, String> {
    Ok(items.into_iter().sum())
}

#[retry(max = 2, delay = "0ms")]
fn show(name: &impl std::fmt::Display) -> Result<String, String> {
    Ok(name.to_string())
}

#[retry(max = 2, delay = "0ms")]
async fn total_async(items: impl IntoIterator<Item = u32> + Clone) -> Result<u32, String> {
    Ok(items.into_iter().sum())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(total(vec![1, 2, 3]), Ok(6));
    assert_eq!(show(&5), Ok("5".to_string()));
    assert_eq!(total_async([4, 5]).await, Ok(9));
}
