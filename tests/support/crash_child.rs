//! The child process of `tests/durable_crash.rs`: stores N durable calls of a flaky function
//! (unless an earlier run of it stored them all), then runs a worker until it is killed.
//!
//! `crash-child DIR N`: the store is `DIR/calls.db`; every call it stores is logged to
//! `DIR/enqueued.log` once committed (`N CID`), `DIR/enqueued.done` marks the end of
//! enqueueing, and every successful execution of the function appends `CID N` to
//! `DIR/executions.log`.

use retry_runtime::durable::{self, Store, Worker};
use retry_runtime::{current_cid, retry};
use std::collections::HashSet;
use std::io::Write;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

static DIR: OnceLock<PathBuf> = OnceLock::new();

fn append(file: &str, line: &str) {
    let path = DIR.get().expect("the directory is set first").join(file);
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .expect("the log opens");
    // One write per line, in append mode: a kill cannot interleave two lines.
    f.write_all(format!("{line}\n").as_bytes())
        .expect("the log is written");
}

/// Fails about half its attempts; records each success.
#[retry(
    mode = "durable",
    max = 30,
    backoff = "fixed",
    delay = "2ms",
    name = "crash::job"
)]
async fn job(n: u32) -> Result<u32, String> {
    tokio::time::sleep(Duration::from_micros(fastrand::u64(100..1500))).await;
    if fastrand::bool() {
        return Err(format!("job {n} failed this time"));
    }
    let cid = current_cid().expect("a durable attempt runs in its call's context");
    append("executions.log", &format!("{cid} {n}"));
    Ok(n)
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(args.next().expect("usage: crash-child DIR N"));
    let n: u32 = args
        .next()
        .and_then(|a| a.parse().ok())
        .expect("usage: crash-child DIR N");
    DIR.set(dir.clone()).expect("set once");
    let url = format!("sqlite:{}", dir.join("calls.db").display());
    let store = Store::open(&url).await.expect("the store opens");
    durable::set_default_store(store.clone());

    if !dir.join("enqueued.done").exists() {
        let logged: HashSet<u32> = std::fs::read_to_string(dir.join("enqueued.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').next()?.parse().ok())
            .collect();
        let todo: Vec<u32> = (0..n).filter(|i| !logged.contains(i)).collect();
        // 64 callers at once, so their commits are shared.
        for chunk in todo.chunks(64) {
            let mut set = tokio::task::JoinSet::new();
            for &i in chunk {
                set.spawn(async move { (i, job(i).await) });
            }
            while let Some(r) = set.join_next().await {
                let (i, cid) = r.expect("the enqueue task ends");
                let cid = cid.expect("the call is stored");
                append("enqueued.log", &format!("{i} {cid}"));
            }
        }
        std::fs::write(dir.join("enqueued.done"), b"").expect("the marker is written");
    }
    println!("READY");
    let _worker = Worker::builder(store)
        .concurrency(16)
        .lease(Duration::from_millis(500))
        .poll_interval(Duration::from_millis(50))
        .start();
    // Run until killed.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
