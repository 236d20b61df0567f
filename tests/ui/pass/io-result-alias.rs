use retry_runtime::retry;
use std::io;

#[retry(max = 2, delay = "0ms")]
fn read(path: &str) -> io::Result<usize> {
    Ok(path.len())
}

// A user's own alias.
type MyResult<T> = Result<T, io::Error>;

#[retry(max = 2, delay = "0ms", timeout = "1s")]
async fn read_async(path: String) -> MyResult<usize> {
    Ok(path.len())
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(read("abc").unwrap(), 3);
    assert_eq!(read_async("ab".into()).await.unwrap(), 2);
}
