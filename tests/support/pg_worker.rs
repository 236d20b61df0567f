//! The worker process of `tests/durable_postgres_workers.rs`: many of them share one
//! PostgreSQL store, and the test kills them, terminates their connections and restarts the
//! server under them.
//!
//! `pg-worker URL WORKER_NAME LOGDIR [enqueue N] [--job flaky|slow|storm] [--concurrency C]`
//!
//! Opens the store at `URL`; with `enqueue N`, stores N durable calls of the job (64 callers at
//! once), logging each acknowledged one to `LOGDIR/enqueued.log` (`N CID`) and marking the end
//! with `LOGDIR/enqueued.done`. Then runs a worker named `WORKER_NAME` (concurrency C, default
//! 8; lease 1 s; poll 100 ms) until it is killed.
//!
//! Every attempt of a job appends to `LOGDIR/WORKER_NAME.log`, one write per line:
//! `start CID WORKER SEQ START_NS` when it starts and `end CID WORKER SEQ START_NS END_NS
//! ok|err|dropped` when it ends (`dropped`: the worker abandoned the attempt, e.g. after losing
//! its lease), with wall-clock Unix nanoseconds; `SEQ` numbers the process's attempts. An
//! attempt cut by SIGKILL leaves its `start` line only.
//!
//! The jobs: `flaky` (`pgw::job`) fails about half its attempts; `slow` (`pgw::slow`) sleeps
//! 300 ms and succeeds; `storm` (`pgw::storm`) fails while `LOGDIR/recovered` does not exist.

use retry_runtime::durable::{self, Store, Worker};
use retry_runtime::{current_cid, retry, CorrelationId};
use std::fs::File;
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const USAGE: &str = "usage: pg-worker URL WORKER_NAME LOGDIR [enqueue N] \
                     [--job flaky|slow|storm] [--concurrency C]";

static DIR: OnceLock<PathBuf> = OnceLock::new();
static NAME: OnceLock<String> = OnceLock::new();
static LOG: OnceLock<File> = OnceLock::new();
static SEQ: AtomicU64 = AtomicU64::new(0);

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

/// Appends a line to the worker's log: one `write` on a file opened in append mode, so lines
/// never interleave and a kill leaves only whole lines.
fn log(line: &str) {
    let mut f = LOG.get().expect("the log is opened first");
    f.write_all(format!("{line}\n").as_bytes())
        .expect("the log is written");
}

/// One attempt, logged when it starts and when it ends (or is dropped unfinished).
struct Attempt {
    cid: CorrelationId,
    seq: u64,
    start: u128,
    ended: bool,
}

impl Attempt {
    fn start() -> Self {
        let cid = current_cid().expect("a durable attempt runs in its call's context");
        let seq = SEQ.fetch_add(1, Ordering::Relaxed);
        let start = now_ns();
        let name = NAME.get().expect("the name is set first");
        log(&format!("start {cid} {name} {seq} {start}"));
        Attempt {
            cid,
            seq,
            start,
            ended: false,
        }
    }

    fn end(mut self, outcome: &str) {
        self.write_end(outcome);
    }

    fn write_end(&mut self, outcome: &str) {
        self.ended = true;
        let name = NAME.get().expect("the name is set first");
        log(&format!(
            "end {} {name} {} {} {} {outcome}",
            self.cid,
            self.seq,
            self.start,
            now_ns()
        ));
    }
}

impl Drop for Attempt {
    fn drop(&mut self) {
        if !self.ended {
            self.write_end("dropped");
        }
    }
}

/// Fails about half its attempts.
#[retry(
    mode = "durable",
    name = "pgw::job",
    max = 30,
    delay = "2ms",
    backoff = "fixed"
)]
async fn job(n: u32) -> Result<u32, String> {
    let attempt = Attempt::start();
    tokio::time::sleep(Duration::from_micros(fastrand::u64(1_000..10_000))).await;
    if fastrand::bool() {
        attempt.end("err");
        return Err(format!("job {n} failed this time"));
    }
    attempt.end("ok");
    Ok(n)
}

/// Sleeps 300 ms, then succeeds.
#[retry(
    mode = "durable",
    name = "pgw::slow",
    max = 30,
    delay = "2ms",
    backoff = "fixed"
)]
async fn slow(n: u32) -> Result<u32, String> {
    let attempt = Attempt::start();
    tokio::time::sleep(Duration::from_millis(300)).await;
    attempt.end("ok");
    Ok(n)
}

/// Fails until the test creates `LOGDIR/recovered`; backs off exponentially meanwhile.
#[retry(
    mode = "durable",
    name = "pgw::storm",
    max = 30,
    delay = "20ms",
    backoff = "exp",
    max_delay = "400ms"
)]
async fn storm(n: u32) -> Result<u32, String> {
    let attempt = Attempt::start();
    tokio::time::sleep(Duration::from_micros(fastrand::u64(500..2_000))).await;
    let dir = DIR.get().expect("the directory is set first");
    if !dir.join("recovered").exists() {
        attempt.end("err");
        return Err(format!("job {n}: the downstream service is down"));
    }
    attempt.end("ok");
    Ok(n)
}

/// Stores one call of `kind`; a store error is retried a few times (such a call was never
/// acknowledged, so the test does not look for it).
async fn enqueue_one(kind: &str, i: u32) -> Option<CorrelationId> {
    for _ in 0..5 {
        let stored = match kind {
            "slow" => slow(i).await,
            "storm" => storm(i).await,
            _ => job(i).await,
        };
        match stored {
            Ok(cid) => return Some(cid),
            Err(e) => {
                eprintln!("enqueue of {i} failed: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    None
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let mut args = std::env::args().skip(1);
    let url = args.next().expect(USAGE);
    let name = args.next().expect(USAGE);
    let dir = PathBuf::from(args.next().expect(USAGE));
    let (mut enqueue, mut kind, mut concurrency) = (0_u32, String::from("flaky"), 8_usize);
    while let Some(arg) = args.next() {
        let value = args.next().expect(USAGE);
        match arg.as_str() {
            "enqueue" => enqueue = value.parse().expect(USAGE),
            "--job" => kind = value,
            "--concurrency" => concurrency = value.parse().expect(USAGE),
            _ => panic!("{USAGE}"),
        }
    }
    assert!(
        ["flaky", "slow", "storm"].contains(&kind.as_str()),
        "{USAGE}"
    );
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join(format!("{name}.log")))
        .expect("the log opens");
    LOG.set(log).expect("set once");
    NAME.set(name.clone()).expect("set once");
    DIR.set(dir.clone()).expect("set once");

    let store = Store::open(&url).await.expect("the store opens");
    durable::set_default_store(store.clone());

    if enqueue > 0 {
        let mut enqueued = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("enqueued.log"))
            .expect("the enqueue log opens");
        let all: Vec<u32> = (0..enqueue).collect();
        // 64 callers at once.
        for chunk in all.chunks(64) {
            let mut set = tokio::task::JoinSet::new();
            for &i in chunk {
                let kind = kind.clone();
                set.spawn(async move { (i, enqueue_one(&kind, i).await) });
            }
            while let Some(r) = set.join_next().await {
                if let (i, Some(cid)) = r.expect("the enqueue task ends") {
                    enqueued
                        .write_all(format!("{i} {cid}\n").as_bytes())
                        .expect("the enqueue log is written");
                }
            }
        }
        std::fs::write(dir.join("enqueued.done"), b"").expect("the marker is written");
    }

    let _worker = Worker::builder(store)
        .concurrency(concurrency)
        .lease(Duration::from_secs(1))
        .poll_interval(Duration::from_millis(100))
        .id(name)
        .start();
    // Run until killed.
    loop {
        tokio::time::sleep(Duration::from_secs(3600)).await;
    }
}
