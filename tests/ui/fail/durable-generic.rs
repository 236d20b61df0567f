use retry_runtime::retry;

#[retry(mode = "durable")]
async fn push<T: serde::Serialize + serde::de::DeserializeOwned>(item: T) -> Result<(), String> {
    let _ = item;
    Ok(())
}

fn main() {}
