//! Async `#[retry]` functions polled by an executor other than tokio's (`futures-executor`):
//! their waits and retries work with no tokio runtime in sight.
use retry_runtime::retry;
use std::cell::Cell;

#[derive(Debug, Clone, PartialEq)]
struct E(u32);

/// Counts an attempt and returns its number.
fn tick(calls: &Cell<u32>) -> u32 {
    calls.set(calls.get() + 1);
    calls.get()
}

#[retry(max = 2, delay = "10ms")]
async fn fails_once_10ms(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[retry(max = 2, delay = "0ms")]
async fn fails_once_zero_delay(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn async_retry_works_under_a_non_tokio_executor() {
    let calls = Cell::new(0);
    assert_eq!(futures_executor::block_on(fails_once_10ms(&calls)), Ok(2));
    assert_eq!(calls.get(), 2);
}

#[test]
fn async_retry_with_zero_delay_works_under_a_non_tokio_executor() {
    let calls = Cell::new(0);
    assert_eq!(
        futures_executor::block_on(fails_once_zero_delay(&calls)),
        Ok(2)
    );
    assert_eq!(calls.get(), 2);
}
