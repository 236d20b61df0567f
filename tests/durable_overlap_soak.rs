//! Issue 17 #8: no two executions of one durable call overlap, under faults, on PostgreSQL.
//!
//! Many short runs: in each, three workers (each with its own store handle and connection
//! pool, 300 ms leases) share a fresh schema and 40 calls whose function records every
//! execution's start and end (the end when it returns or is dropped, which is when its
//! worker stopped believing it held the lease); meanwhile the workers' connections are
//! terminated (`pg_terminate_backend`) every 150 to 400 ms. Then, per call, the executions
//! must not overlap in time. The figures (runs, calls, executions, faults, overlaps) are
//! printed; `SOAK_RUNS=N` runs more than the 20 of CI.

#[path = "common/pg.rs"]
mod pg;

use retry_runtime::durable::{self, CallState, Store, Worker};
use retry_runtime::{current_cid, retry, CorrelationId};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Every execution: (call, start, end), Unix nanoseconds.
static EXECUTIONS: Mutex<Vec<(CorrelationId, u128, u128)>> = Mutex::new(Vec::new());

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos()
}

/// Records the execution's end when the body returns or is dropped.
struct Execution {
    cid: CorrelationId,
    start: u128,
}

impl Drop for Execution {
    fn drop(&mut self) {
        EXECUTIONS
            .lock()
            .unwrap()
            .push((self.cid, self.start, now_ns()));
    }
}

/// 20 to 260 ms of work, some of it across a lease renewal.
#[retry(mode = "durable", max = 20, delay = "5ms")]
async fn soak_job(n: u64) -> Result<(), String> {
    let _execution = Execution {
        cid: current_cid().unwrap(),
        start: now_ns(),
    };
    tokio::time::sleep(Duration::from_millis(20 + (n * 37) % 240)).await;
    Ok(())
}

/// Pairs of executions of one call that overlap, and the calls executed more than once.
fn overlaps(executions: &[(CorrelationId, u128, u128)]) -> (usize, usize) {
    let mut by_call: HashMap<CorrelationId, Vec<(u128, u128)>> = HashMap::new();
    for (cid, start, end) in executions {
        by_call.entry(*cid).or_default().push((*start, *end));
    }
    let mut overlapping = 0;
    let mut repeated = 0;
    for runs in by_call.values_mut() {
        runs.sort_unstable();
        repeated += usize::from(runs.len() > 1);
        overlapping += runs.windows(2).filter(|w| w[1].0 < w[0].1).count();
    }
    (overlapping, repeated)
}

#[test]
fn the_overlap_check_finds_overlaps() {
    let (a, b) = (CorrelationId::new(), CorrelationId::new());
    let runs = [(a, 10, 20), (a, 15, 30), (b, 0, 5), (b, 5, 9)];
    assert_eq!(overlaps(&runs), (1, 2));
}

/// One run; returns (executions, connections terminated, overlaps, calls run more than once).
async fn one_run(server: &str) -> (usize, u64, usize, usize) {
    let (url, _schema) = pg::fresh_schema().await.expect("a server");
    let app = pg::unique("soak");
    let url = pg::with_param(&url, &format!("application_name={app}"));
    let stores: Vec<Store> = {
        let mut v = Vec::new();
        for _ in 0..3 {
            v.push(Store::open(&url).await.unwrap());
        }
        v
    };
    durable::set_default_store(stores[0].clone());
    EXECUTIONS.lock().unwrap().clear();
    let mut cids = Vec::new();
    for n in 0..40 {
        cids.push(soak_job(n).await.unwrap());
    }
    let workers: Vec<Worker> = stores
        .iter()
        .enumerate()
        .map(|(i, s)| {
            Worker::builder(s.clone())
                .id(format!("{app}-w{i}"))
                .concurrency(8)
                .lease(Duration::from_millis(300))
                .poll_interval(Duration::from_millis(20))
                .start()
        })
        .collect();
    let admin = pg::connect(server).await;
    let mut faults = 0;
    let start = Instant::now();
    loop {
        tokio::time::sleep(Duration::from_millis(150 + fastrand::u64(..250))).await;
        let mut finished = 0;
        for cid in &cids {
            if let Ok(Some(r)) = stores[0].get(*cid).await {
                finished += usize::from(r.state == CallState::Succeeded);
            }
        }
        if finished == cids.len() || start.elapsed() > Duration::from_secs(20) {
            assert_eq!(finished, cids.len(), "every call succeeded within 20 s");
            break;
        }
        let killed = admin
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE application_name = $1",
                &[&app],
            )
            .await
            .unwrap();
        faults += killed.len() as u64;
    }
    for w in workers {
        w.shutdown(Duration::from_millis(500)).await;
    }
    let executions = EXECUTIONS.lock().unwrap().clone();
    let (overlapping, repeated) = overlaps(&executions);
    (executions.len(), faults, overlapping, repeated)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_two_executions_of_a_call_overlap_under_faults() {
    let Some(server) = pg::server_url() else {
        return;
    };
    let runs: usize = std::env::var("SOAK_RUNS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20);
    let (mut executions, mut faults, mut overlapping, mut repeated) = (0, 0, 0, 0);
    for _ in 0..runs {
        let (e, f, o, r) = one_run(&server).await;
        executions += e;
        faults += f;
        overlapping += o;
        repeated += r;
    }
    eprintln!(
        "overlap soak: {runs} runs, {} calls, {executions} executions, {faults} connections \
         terminated, {repeated} calls run more than once, {overlapping} overlaps",
        runs * 40
    );
    assert_eq!(overlapping, 0, "executions of one call overlapped");
}
