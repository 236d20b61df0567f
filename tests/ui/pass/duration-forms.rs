use retry_runtime::retry;
use std::time::Duration;

const WAIT: Duration = Duration::from_millis(0);

fn cap() -> Duration {
    Duration::from_secs(1)
}

#[retry(delay = "0ns", max_delay = "1m30s", budget = "1.5h", backoff = "linear")]
fn literals() -> Result<u8, String> {
    Ok(1)
}

// Days and weeks are units too (`retry_duration::UNIT_LIST`).
#[retry(delay = "1us", max_delay = "1d", budget = "1w")]
fn days_and_weeks() -> Result<u8, String> {
    Ok(4)
}

#[retry(delay = WAIT, max_delay = cap(), budget = Duration::from_secs(60), factor = 1.5)]
fn expressions() -> Result<u8, String> {
    Ok(2)
}

#[retry(attempts = 1, delay = "250us", timeout = Duration::from_millis(500))]
async fn async_expressions() -> Result<u8, std::io::Error> {
    Ok(3)
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(literals(), Ok(1));
    assert_eq!(expressions(), Ok(2));
    assert_eq!(days_and_weeks(), Ok(4));
    assert_eq!(async_expressions().await.unwrap(), 3);
}
