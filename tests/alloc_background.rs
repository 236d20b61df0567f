//! Allocations of a background call: starting one costs as many heap allocations as the
//! hand-written `tokio::spawn` loop plus the state the handle shares with the task, and the
//! handle is two words. A counting global allocator counts this thread's allocations.

use core::cell::Cell;
use std::alloc::{GlobalAlloc, Layout, System};

use retry_runtime::{retry, RetryHandle};

struct Counting;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static COUNT: Cell<u64> = const { Cell::new(0) };
}

fn note_allocation() {
    let _ = COUNTING.try_with(|on| {
        if on.get() {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
        }
    });
}

// SAFETY: every call is forwarded unchanged to the system allocator.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note_allocation();
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract is forwarded.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Runs `f` and counts the allocations it made on this thread.
fn allocations<T>(f: impl FnOnce() -> T) -> (T, u64) {
    COUNT.with(|c| c.set(0));
    COUNTING.with(|on| on.set(true));
    let out = f();
    COUNTING.with(|on| on.set(false));
    (out, COUNT.with(Cell::get))
}

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

/// Allocations per started call, over `N` calls started from one task on a current-thread
/// runtime (none runs before the last starts), after a first round that warms up the
/// runtime's queues and the function's one-time state.
fn per_call<H>(rt: &tokio::runtime::Runtime, start: impl Fn(u64) -> H) -> u64 {
    rt.block_on(async {
        for round in 0..2 {
            let mut handles = Vec::with_capacity(usize::try_from(N).unwrap());
            let ((), n) = allocations(|| {
                for k in 0..N {
                    handles.push(start(k));
                }
            });
            drop(handles);
            tokio::task::yield_now().await;
            if round == 1 {
                return n / N;
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

#[test]
fn a_background_call_allocates_its_task_and_its_shared_state() {
    let rt = runtime();
    let hand = per_call(&rt, |k| tokio::spawn(hand(k)));
    let ours = per_call(&rt, ours);
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
