//! Allocations of a background call: starting one costs as many heap allocations as the
//! hand-written `tokio::spawn` loop plus the state the handle shares with the task, and the
//! handle is two words. A counting global allocator counts this thread's allocations.

use retry_runtime::{retry, RetryHandle};

#[path = "common/alloc_count.rs"]
mod alloc_count;
use alloc_count::allocated;

#[retry(max = 3, backoff = "fixed", delay = "1ms", mode = "background")]
async fn ours(key: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    Ok(key)
}

async fn hand(key: u64) -> Result<u64, String> {
    tokio::task::yield_now().await;
    Ok(key)
}

const N: u64 = 64;

/// Allocations and bytes per started call, over `N` calls started from one task on a
/// current-thread runtime (none runs before the last starts), after a first round that warms
/// up the runtime's queues and the function's one-time state.
fn per_call<H>(rt: &tokio::runtime::Runtime, start: impl Fn(u64) -> H) -> (u64, u64) {
    rt.block_on(async {
        for round in 0..2 {
            let mut handles = Vec::with_capacity(usize::try_from(N).unwrap());
            let ((), n, bytes) = allocated(|| {
                for k in 0..N {
                    handles.push(start(k));
                }
            });
            drop(handles);
            tokio::task::yield_now().await;
            if round == 1 {
                return (n / N, bytes / N);
            }
        }
        unreachable!()
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a runtime")
}

/// (allocations, bytes) per started call of the hand-written spawn and of `#[retry]`.
fn hand_and_ours() -> ((u64, u64), (u64, u64)) {
    let rt = runtime();
    (
        per_call(&rt, |k| tokio::spawn(hand(k))),
        per_call(&rt, ours),
    )
}

#[test]
fn a_background_call_allocates_its_task_and_its_shared_state() {
    let ((hand, _), (ours, _)) = hand_and_ours();
    println!("allocations per started call: #[retry] background {ours}, tokio::spawn {hand}");
    assert_eq!(hand, 1, "the hand-written spawn allocates its task");
    // The goal is the hand loop's one; the second is the `Arc` of status, cancel flag and
    // ID that the handle shares with the task (see benches/why.md).
    assert_eq!(
        ours,
        hand + 1,
        "the task and the state shared with the handle"
    );
}

/// The task holds what the call needs across its waits once: the driver is an `async` block
/// over its captures, not an `async fn`, whose future would hold its arguments twice (as
/// arguments and as the locals they move into). That duplication took a call from 784 to
/// 1,040 bytes on x86-64, where tokio rounds a task up to a multiple of 128 bytes.
#[test]
fn a_background_call_holds_its_state_once() {
    let ((_, hand), (_, ours)) = hand_and_ours();
    println!("bytes per started call: #[retry] background {ours}, tokio::spawn {hand}");
    assert!(
        ours <= hand + 640,
        "a background call takes {ours} bytes, the hand-written spawn {hand}"
    );
}

#[test]
fn the_handle_is_two_words() {
    let handle = size_of::<RetryHandle<u64, String>>();
    println!("size_of::<RetryHandle<u64, String>>() = {handle}");
    assert_eq!(handle, 2 * size_of::<usize>());
    assert_eq!(
        size_of::<Option<RetryHandle<u64, String>>>(),
        handle,
        "a niche is left"
    );
}
