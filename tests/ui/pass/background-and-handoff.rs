use retry_runtime::{retry, Handoff};

#[retry(max = 2, delay = "0ms", mode = "background", on_done = |r| eprintln!("{r}"))]
fn save(record: String) -> Result<usize, std::io::Error> {
    Ok(record.len())
}

#[retry(max = 2, delay = "0ms", mode = "handoff")]
async fn notify(order: u64) -> Result<u64, std::io::Error> {
    Ok(order)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(save("hello".to_string()).await.unwrap(), 5);
    assert!(matches!(notify(7).await, Handoff::Done(Ok(7))));
}
