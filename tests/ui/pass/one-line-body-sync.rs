#![deny(warnings)]

use retry_runtime::retry;

#[retry]
fn f() -> Result<(), std::io::Error> { Ok(()) }

fn main() {
    f().unwrap();
}
