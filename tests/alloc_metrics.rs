//! Allocation counts with the feature `metrics` on and a recorder installed: a call whose
//! first attempt succeeds allocates nothing (it increments one cached counter), sync and
//! async. A separate binary from `alloc.rs`, since each has its own `#[global_allocator]`
//! and this one installs a global recorder.
//!
//! Each function is called once before it is measured: its metric handles are registered
//! on its first call (one set of allocations per function, in the recorder).
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use retry_runtime::retry;

use std::sync::OnceLock;

#[path = "common/alloc_count.rs"]
mod alloc_count;
use alloc_count::{allocations, block_on};

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

/// The `retry_calls_total{outcome="succeeded"}` counts of `sync_ok` and `async_ok` since
/// the last read (a snapshot drains the recorder).
fn succeeded() -> (u64, u64) {
    let mut counts = (0, 0);
    for (key, .., value) in snapshotter().snapshot().into_vec() {
        let key = key.key();
        let label = |name: &str| {
            key.labels()
                .find(|l| l.key() == name)
                .map(|l| l.value().to_owned())
        };
        if key.name() != "retry_calls_total" || label("outcome").as_deref() != Some("succeeded") {
            continue;
        }
        let DebugValue::Counter(n) = value else {
            panic!("a counter, not {value:?}");
        };
        match label("function").as_deref() {
            Some("alloc_metrics::sync_ok") => counts.0 += n,
            Some("alloc_metrics::async_ok") => counts.1 += n,
            _ => {}
        }
    }
    counts
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Code(u32);

#[retry(name = "alloc_metrics::sync_ok")]
fn sync_ok(x: u32) -> Result<u32, Code> {
    Ok(x + 1)
}

#[retry(name = "alloc_metrics::async_ok")]
async fn async_ok(x: u32) -> Result<u32, Code> {
    Ok(x + 1)
}

#[test]
fn a_first_attempt_success_allocates_nothing_with_metrics_on() {
    snapshotter();
    assert_eq!(sync_ok(1), Ok(2), "warm-up");
    assert_eq!(block_on(async_ok(1)), Ok(2), "warm-up");
    assert_eq!(succeeded(), (1, 1));

    let (out, n) = allocations(|| sync_ok(1));
    assert_eq!((out, n), (Ok(2), 0), "sync");
    let (out, n) = allocations(|| block_on(async_ok(1)));
    assert_eq!((out, n), (Ok(2), 0), "async");

    // And the calls were counted.
    assert_eq!(succeeded(), (1, 1));
}
