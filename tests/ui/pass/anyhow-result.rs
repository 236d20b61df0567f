use retry_runtime::retry;

#[retry(max = 2, delay = "0ms")]
fn parse(text: &str) -> anyhow::Result<u32> {
    Ok(text.parse()?)
}

#[retry(max = 2, delay = "0ms", timeout = "1s", when = |e| !e.to_string().is_empty())]
async fn parse_async(text: String) -> anyhow::Result<u32> {
    let n: u32 = text.parse()?;
    anyhow::ensure!(n > 0, "zero");
    Ok(n)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(parse("7").unwrap(), 7);
    assert_eq!(parse_async("8".into()).await.unwrap(), 8);
}
