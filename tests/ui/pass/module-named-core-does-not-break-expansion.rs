// Modules named like the crates the expansion uses, beside the function: only absolute
// paths (`::core`, `::std`, `::retry_runtime`) survive them. Prelude names shadowed too.
#![allow(dead_code)]

use retry_runtime::retry;

mod core {}
mod std {}
mod tracing {}
mod __private {}

struct Option;
struct Some;
struct None;
struct Duration;
struct Box;
trait Clone {}
trait Future {}

type Result<T> = ::core::result::Result<T, String>;

#[retry(max = 2, delay = "0ms", max_delay = "1s", budget = "1m", jitter = "full")]
fn sync_fn(s: ::std::string::String) -> Result<usize> {
    Ok(s.len())
}

#[retry(max = 2, delay = "0ms", timeout = "1s", when = |_e| true)]
async fn async_fn(s: ::std::string::String) -> ::std::io::Result<usize> {
    Ok(s.len())
}

#[retry(mode = "background", delay = "0ms", on_done = |_r| ())]
fn background_fn(s: ::std::string::String) -> Result<usize> {
    Ok(s.len())
}

mod nested {
    mod core {}
    mod std {}

    #[retry_runtime::retry(max = 1, delay = "0ms")]
    pub fn inner() -> ::core::result::Result<u8, ()> {
        Ok(7)
    }

    pub fn call() -> u8 {
        inner().unwrap()
    }
}

fn main() {
    assert_eq!(sync_fn("ab".into()), Ok(2));
    let rt = ::tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    assert_eq!(rt.block_on(async_fn("abc".into())).unwrap(), 3);
    assert_eq!(rt.block_on(background_fn("abcd".into())).unwrap(), 4);
    assert_eq!(nested::call(), 7);
}
