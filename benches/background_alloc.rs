//! Heap bytes per background call: a counting global allocator, N = 10 000 calls that each
//! fail twice with a 1 ms wait, as `#[retry(mode = "background")]` and as a hand-written
//! `tokio::spawn` loop. Prints one JSON line per contestant for `benches/run.sh`.
//!
//! The calls start from one task on a current-thread runtime, which runs no other task until
//! all N have started, so the peak is reached with all N calls alive at once. (The size of a
//! task does not depend on the runtime flavour.) A first round warms the runtime up (its run
//! queue, the `tracing` call sites); the second is measured: peak live bytes minus the live
//! bytes before the first call, over N. The arguments and the vector of handles are made
//! before that, so they are not counted.

mod background_common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use background_common::{args, Handles, Transient, Who, N};
use retry_runtime::RetryHandle;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;

struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);
static ALLOCS: AtomicUsize = AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, Ordering::Relaxed) + by;
    PEAK.fetch_max(now, Ordering::Relaxed);
}

// SAFETY: every call is passed on to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc`, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// One round: (peak live bytes above the live bytes at its start, allocations made).
fn round(rt: &Runtime, who: Who) -> (usize, usize) {
    let args = args();
    let mut handles = Handles::with_capacity(who);
    rt.block_on(async move {
        tokio::spawn(async move {
            let base = LIVE.load(Ordering::Relaxed);
            PEAK.store(base, Ordering::Relaxed);
            ALLOCS.store(0, Ordering::Relaxed);
            handles.start(args);
            handles.finish().await;
            (
                PEAK.load(Ordering::Relaxed) - base,
                ALLOCS.load(Ordering::Relaxed),
            )
        })
        .await
        .expect("the driving task")
    })
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    for who in [Who::Hand, Who::Retry] {
        round(&rt, who);
        let (peak, allocs) = round(&rt, who);
        let handle = match who {
            Who::Hand => size_of::<JoinHandle<Result<u64, Transient>>>(),
            Who::Retry => size_of::<RetryHandle<u64, Transient>>(),
        };
        #[allow(clippy::cast_precision_loss)]
        let per = |x: usize| x as f64 / N as f64;
        println!(
            "alloc-result: {{\"who\": \"{}\", \"n\": {N}, \"peak_bytes_per_call\": {:.1}, \
             \"allocs_per_call\": {:.2}, \"handle_bytes\": {handle}}}",
            who.name(),
            per(peak),
            per(allocs),
        );
    }
}
