//! Background retries: N = 10 000 calls, each failing twice with a 1 ms wait, started from a
//! task on a multi-thread runtime, as `#[retry(mode = "background")]` and as a hand-written
//! `tokio::spawn` loop.
//!
//! `background/spawn/<who>` is the time to start all N calls (divide by N for one call);
//! `background/complete/<who>` the wall time from the first start to the last completion.

mod background_common;

use core::time::Duration;
use std::time::Instant;

use background_common::{args, Handles, Who};
use criterion::Criterion;
use tokio::runtime::Runtime;

/// One round: (time to start the N calls, time until all of them finished).
fn round(rt: &Runtime, who: Who) -> (Duration, Duration) {
    let args = args();
    let mut handles = Handles::with_capacity(who);
    rt.block_on(async move {
        tokio::spawn(async move {
            let start = Instant::now();
            handles.start(args);
            let spawned = start.elapsed();
            handles.finish().await;
            (spawned, start.elapsed())
        })
        .await
        .expect("the driving task")
    })
}

fn main() {
    let mut c = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2))
        .sample_size(30)
        .configure_from_args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_time()
        .build()
        .expect("a multi-thread runtime");
    let mut g = c.benchmark_group("background");
    for who in [Who::Hand, Who::Retry] {
        round(&rt, who);
        g.bench_function(format!("spawn/{}", who.name()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(&rt, who).0).sum());
        });
        g.bench_function(format!("complete/{}", who.name()), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| round(&rt, who).1).sum());
        });
    }
    g.finish();
    c.final_summary();
}
