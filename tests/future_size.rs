//! The future of an async `#[retry]` fn is no bigger than the retry loop one would write by
//! hand: the same arguments, an attempt counter, the current wait, `tokio::time::sleep`.
use retry_runtime::retry;
use std::time::Duration;

#[derive(Debug, PartialEq)]
struct E(u64);

// ---------------------------------------------------------------- a body with an await

#[retry(max = 3, backoff = "exp", delay = "100ms")]
async fn ours(key: u64, name: String) -> Result<u64, E> {
    let n = name.len() as u64;
    tokio::task::yield_now().await;
    if key == 0 {
        Err(E(n))
    } else {
        Ok(key + n)
    }
}

async fn hand(key: u64, name: String) -> Result<u64, E> {
    let mut attempt: u32 = 0;
    let mut delay = Duration::from_millis(100);
    loop {
        attempt += 1;
        let name = name.clone();
        let out = async {
            let n = name.len() as u64;
            tokio::task::yield_now().await;
            if key == 0 {
                Err(E(n))
            } else {
                Ok(key + n)
            }
        }
        .await;
        match out {
            Ok(v) => return Ok(v),
            Err(e) if attempt > 3 => return Err(e),
            Err(_) => {
                tokio::time::sleep(delay).await;
                delay *= 2;
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn async_retry_future_is_no_bigger_than_a_hand_written_loop() {
    // Both behave the same.
    assert_eq!(ours(1, "ab".into()).await, hand(1, "ab".into()).await);
    assert_eq!(ours(0, "ab".into()).await, hand(0, "ab".into()).await);

    let ours = std::mem::size_of_val(&ours(1, "ab".into()));
    let hand = std::mem::size_of_val(&hand(1, "ab".into()));
    println!("future sizes (await in body): #[retry] {ours} bytes, hand-written {hand} bytes");
    assert!(
        ours <= hand,
        "#[retry] future {ours} B > hand-written {hand} B"
    );
}

// ---------------------------------------------------------------- a body without an await

#[retry(max = 3, backoff = "fixed", delay = "10ms")]
async fn ours_plain(key: u64) -> Result<u64, E> {
    if key == 0 {
        Err(E(key))
    } else {
        Ok(key)
    }
}

async fn hand_plain(key: u64) -> Result<u64, E> {
    let mut attempt: u32 = 0;
    let delay = Duration::from_millis(10);
    loop {
        attempt += 1;
        let out = async {
            if key == 0 {
                Err(E(key))
            } else {
                Ok(key)
            }
        }
        .await;
        match out {
            Ok(v) => return Ok(v),
            Err(e) if attempt > 3 => return Err(e),
            Err(_) => tokio::time::sleep(delay).await,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn async_retry_future_is_no_bigger_than_a_hand_written_loop_plain_body() {
    assert_eq!(ours_plain(0).await, hand_plain(0).await);
    let ours = std::mem::size_of_val(&ours_plain(1));
    let hand = std::mem::size_of_val(&hand_plain(1));
    println!("future sizes (plain body): #[retry] {ours} bytes, hand-written {hand} bytes");
    assert!(
        ours <= hand,
        "#[retry] future {ours} B > hand-written {hand} B"
    );
}

// ---------------------------------------------------------------- a background call's handle

#[retry(max = 3, backoff = "fixed", delay = "10ms", mode = "background")]
async fn ours_background(key: u64) -> Result<u64, String> {
    Ok(key)
}

#[tokio::test(start_paused = true)]
async fn background_handle_is_no_bigger_than_two_words() {
    let handle = ours_background(7);
    let ours = std::mem::size_of_val(&handle);
    let join = std::mem::size_of::<tokio::task::JoinHandle<Result<u64, String>>>();
    println!("handle sizes: RetryHandle {ours} bytes, JoinHandle {join} bytes");
    assert_eq!(handle.await.ok(), Some(7));
    assert_eq!(
        std::mem::size_of::<retry_runtime::RetryHandle<u64, String>>(),
        ours
    );
    assert!(
        ours <= 2 * std::mem::size_of::<usize>(),
        "RetryHandle {ours} B > two words"
    );
}
