#![deny(warnings)]

use retry_runtime::retry;

#[retry]
async fn f() -> Result<(), std::io::Error> { Ok(()) }

#[tokio::main(flavor = "current_thread")]
async fn main() {
    f().await.unwrap();
}
