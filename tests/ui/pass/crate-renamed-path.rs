// The dependency under another name: `crate = "..."` tells the expansion where it is.
extern crate retry_runtime as my_retry;

use my_retry::retry;

#[retry(max = 2, delay = "0ms", crate = "::my_retry")]
fn absolute() -> Result<u32, String> {
    Ok(1)
}

#[retry(max = 2, delay = "0ms", crate = "my_retry")]
async fn relative() -> Result<u32, String> {
    Ok(2)
}

mod inner {
    #[my_retry::retry(max = 2, delay = "0ms", crate = "::my_retry")]
    pub fn nested() -> std::io::Result<u32> {
        Ok(3)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    assert_eq!(absolute(), Ok(1));
    assert_eq!(relative().await, Ok(2));
    assert_eq!(inner::nested().unwrap(), 3);
}
