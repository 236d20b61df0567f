//! Durable calls on a PostgreSQL store shared by worker processes. Prints one
//! `durable-pg-result: {json}` line per figure for `benches/run.sh` (`durable_pg.jsonl`), which
//! `benches/report.py` turns into the "Durable calls (PostgreSQL)" section of BENCHMARKS.md.
//!
//! 1. Throughput: N no-op calls (`bench::pg_noop`) are stored first (1,000 per transaction),
//!    then 1, 2 or 4 worker processes (this binary again, in its child mode, one `Worker` each,
//!    concurrency 32, batch 64) open the store and say they are ready; the clock starts when
//!    the parent tells them all to go, and stops when no unfinished call is left
//!    (`Store::next_due`, one index lookup, polled every 10 ms so as not to load the server
//!    the workers share), confirmed by `Store::stats` counting all N succeeded. Every
//!    measurement has a fresh schema (`CREATE SCHEMA`, and the store URL's
//!    `options=-csearch_path%3D<schema>`). Beside them, in the same run, the same
//!    with one worker process on a fresh SQLite file store (`sqlite:PATH`, WAL,
//!    `synchronous = FULL`). The order of the four rotates from round to round.
//! 2. Failover: worker process A (lease L) claims a call of `bench::pg_block`, which sleeps for
//!    an hour; worker process B, with the same lease, is started and idles. Right after A
//!    renews the lease (the parent polls the call's `lease_until`: the worst case, a whole
//!    lease left), A is killed with SIGKILL; measured: from the kill to the start of B's attempt
//!    of that call (wall clock; B's attempt prints its start time).
//! 3. Enqueue: calls per second of the durable no-op (`pg_noop(i).await`, which returns once
//!    its call is committed) from 1 caller and from 64 concurrent callers (tokio tasks) in
//!    this process, on a fresh schema each, after 50 calls from one task to warm up.
//!    `RETRY_BENCH_PG_ONLY=enqueue` runs only this part (`=drain` only parts 1 and 2).
//!
//! Needs `RETRY_BENCH_POSTGRES_URL` or `RETRY_TEST_POSTGRES_URL` (a database the bench may
//! create schemas in; `source .ci/postgres.sh` starts one); without either it prints a
//! "skipped" line and exits 0. `RETRY_BENCH_QUICK=1` runs small sizes and one round.

#![allow(clippy::cast_precision_loss)] // counts and durations shown as f64 rates

use core::hint::black_box;
use core::time::Duration;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use retry_runtime::durable::{self, CallState, NewCall, Store, Worker};
use retry_runtime::retry;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

// ---------------------------------------------------------------- the functions

/// The registered names, pinned so the stores can be filled directly.
const NOOP: &str = "bench::pg_noop";
const BLOCK: &str = "bench::pg_block";

/// What a worker process prints when its attempt of `bench::pg_block` starts, then the Unix
/// time in microseconds.
const ATTEMPT_START: &str = "attempt-start: ";

/// Succeeds at once.
#[retry(mode = "durable", name = "bench::pg_noop", max = 3, delay = "10ms")]
async fn pg_noop(n: u64) -> Result<u64, String> {
    Ok(black_box(n))
}

/// Says when it starts, then sleeps for `secs` (the failover's call: it is killed first).
#[retry(mode = "durable", name = "bench::pg_block", max = 3, delay = "10ms")]
async fn pg_block(secs: u64) -> Result<u64, String> {
    println!("{ATTEMPT_START}{}", unix_us(SystemTime::now()));
    tokio::time::sleep(Duration::from_secs(secs)).await;
    Ok(secs)
}

fn unix_us(t: SystemTime) -> u64 {
    u64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_micros()).unwrap_or(0)
}

// ---------------------------------------------------------------- sizes

struct Sizes {
    quick: bool,
    rounds: usize,
    /// Calls stored before each throughput measurement.
    n: u64,
    concurrency: usize,
    batch: usize,
    workers: [usize; 3],
    /// The failover's lease and its number of trials.
    lease: Duration,
    failovers: usize,
    /// Calls stored by each enqueue measurement, and its numbers of concurrent callers.
    enqueued: u64,
    callers: [usize; 2],
    /// `RETRY_BENCH_PG_ONLY`: `Some("enqueue")` or `Some("drain")` runs that part alone.
    only: Option<String>,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = std::env::var_os("RETRY_BENCH_QUICK").is_some_and(|v| v != "0");
        Sizes {
            quick,
            rounds: if quick { 1 } else { 3 },
            n: if quick { 2_000 } else { 20_000 },
            concurrency: 32,
            batch: 64,
            workers: [1, 2, 4],
            lease: Duration::from_secs(2),
            failovers: if quick { 1 } else { 3 },
            enqueued: if quick { 2_000 } else { 10_000 },
            callers: [1, 64],
            only: std::env::var("RETRY_BENCH_PG_ONLY")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

fn emit(v: &Value) {
    println!("durable-pg-result: {v}");
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn args_json(n: u64) -> String {
    format!("{{\"n\":{n}}}")
}

// ---------------------------------------------------------------- stores

/// The server's URL from the environment, if any.
fn server_url() -> Option<String> {
    ["RETRY_BENCH_POSTGRES_URL", "RETRY_TEST_POSTGRES_URL"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// A client on `url`, its connection driven by a task of its own.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to PostgreSQL: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A schema made for one measurement, dropped (with the store's tables) by [`Schema::drop_it`].
struct Schema {
    server: String,
    name: String,
    url: String,
}

impl Schema {
    async fn new(server: &str, what: &str) -> Schema {
        let name = format!("retry_bench_{}_{what}", std::process::id());
        let client = connect(server).await;
        client
            .batch_execute(&format!(
                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
            ))
            .await
            .expect("a fresh schema");
        let sep = if server.contains('?') { '&' } else { '?' };
        let url = format!("{server}{sep}options=-csearch_path%3D{name}");
        Schema {
            server: server.to_owned(),
            name,
            url,
        }
    }

    async fn drop_it(self) {
        let client = connect(&self.server).await;
        client
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await
            .expect("the schema dropped");
    }
}

/// A directory for a SQLite store file, removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("durable-pg-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a directory for the store file");
        Dir(path)
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.0.join("calls.db").display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Stores `n` calls of the no-op, 1,000 per transaction.
async fn fill(store: &Store, n: u64) {
    let mut i = 0;
    while i < n {
        let end = (i + 1_000).min(n);
        let calls = (i..end).map(|k| NewCall::new(NOOP, args_json(k))).collect();
        store.enqueue(calls).await.expect("a batch of calls");
        i = end;
    }
}

// ---------------------------------------------------------------- worker processes

const CHILD_URL: &str = "RETRY_BENCH_PG_CHILD_URL";
const CHILD_ID: &str = "RETRY_BENCH_PG_CHILD_ID";
const CHILD_CONCURRENCY: &str = "RETRY_BENCH_PG_CHILD_CONCURRENCY";
const CHILD_BATCH: &str = "RETRY_BENCH_PG_CHILD_BATCH";
const CHILD_LEASE_MS: &str = "RETRY_BENCH_PG_CHILD_LEASE_MS";

/// What a worker process is told.
struct WorkerConfig {
    concurrency: usize,
    batch: usize,
    lease: Duration,
}

/// A worker process: it opens the store and prints `ready`, starts its worker when a line
/// arrives on its standard input, and shuts it down when that input closes.
struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl WorkerProcess {
    fn spawn(url: &str, id: &str, config: &WorkerConfig) -> WorkerProcess {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD_URL, url)
            .env(CHILD_ID, id)
            .env(CHILD_CONCURRENCY, config.concurrency.to_string())
            .env(CHILD_BATCH, config.batch.to_string())
            .env(CHILD_LEASE_MS, config.lease.as_millis().to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("a worker process");
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().expect("the child's stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        WorkerProcess {
            child,
            stdin,
            lines,
        }
    }

    /// The rest of the next line starting with `prefix` (other lines are skipped).
    fn expect(&self, prefix: &str, within: Duration) -> String {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix(prefix) {
                        return rest.to_owned();
                    }
                }
                Err(e) => panic!("no `{prefix}` line from a worker process in {within:?}: {e}"),
            }
        }
    }

    fn go(&mut self) {
        let stdin = self.stdin.as_mut().expect("a running worker process");
        stdin
            .write_all(b"go\n")
            .and_then(|()| stdin.flush())
            .expect("the go line");
    }

    /// Closes its input (its worker shuts down) and waits up to 10 s for it to exit.
    fn stop(mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "a worker process failed: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("a worker process did not stop in 10 s");
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn env_parse<T: core::str::FromStr>(key: &str) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} is not set to a number"))
}

/// The child's side.
fn worker_child(url: &str) {
    let id = std::env::var(CHILD_ID).expect(CHILD_ID);
    let concurrency: usize = env_parse(CHILD_CONCURRENCY);
    let batch: usize = env_parse(CHILD_BATCH);
    let lease = Duration::from_millis(env_parse(CHILD_LEASE_MS));
    let rt = runtime();
    let store = rt
        .block_on(Store::open_existing(url))
        .expect("the filled store");
    println!("ready");
    let mut line = String::new();
    std::io::stdin().read_line(&mut line).expect("the go line");
    let worker = {
        let _enter = rt.enter();
        Worker::builder(store)
            .id(id)
            .concurrency(concurrency)
            .batch(batch)
            .lease(lease)
            .start()
    };
    let mut rest = Vec::new();
    let _ = std::io::stdin().read_to_end(&mut rest);
    rt.block_on(worker.shutdown(Duration::from_secs(1)));
}

// ---------------------------------------------------------------- 1. throughput

/// Which store a throughput measurement runs on.
#[derive(Clone, Copy)]
enum Kind {
    Postgres(usize),
    Sqlite,
}

/// Starts `workers` processes on the filled `store` (at `url`) and times them from "go" until
/// the store counts its `n` no-op calls succeeded.
fn drain(rt: &Runtime, store: &Store, url: &str, workers: usize, sizes: &Sizes) -> Duration {
    let config = WorkerConfig {
        concurrency: sizes.concurrency,
        batch: sizes.batch,
        lease: Duration::from_secs(30),
    };
    let mut procs: Vec<_> = (0..workers)
        .map(|i| WorkerProcess::spawn(url, &format!("bench-{i}"), &config))
        .collect();
    for p in &procs {
        p.expect("ready", Duration::from_secs(60));
    }
    let start = Instant::now();
    for p in &mut procs {
        p.go();
    }
    // The cheap check first (the earliest unfinished call: one index lookup), so that the
    // polling does not load the server the workers share; then the counts, to confirm.
    let functions = [NOOP.to_owned()];
    let took = rt.block_on(async {
        loop {
            if store
                .next_due(&functions)
                .await
                .expect("next_due")
                .is_none()
            {
                let took = start.elapsed();
                let stats = store.stats().await.expect("stats");
                assert_eq!(stats.count_state(CallState::Dead), 0, "a call died");
                if stats.count(NOOP, CallState::Succeeded) >= sizes.n {
                    break took;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "the workers did not drain the store in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    for p in procs {
        p.stop();
    }
    took
}

fn throughput(rt: &Runtime, server: &str, kind: Kind, round: usize, sizes: &Sizes) {
    let (store_name, workers, took) = match kind {
        Kind::Postgres(workers) => {
            let schema = rt.block_on(Schema::new(server, &format!("w{workers}_r{round}")));
            let store = rt
                .block_on(Store::open(&schema.url))
                .expect("a fresh store");
            rt.block_on(fill(&store, sizes.n));
            let took = drain(rt, &store, &schema.url, workers, sizes);
            drop(store);
            rt.block_on(schema.drop_it());
            ("postgres", workers, took)
        }
        Kind::Sqlite => {
            let dir = Dir::new(&format!("r{round}"));
            let store = rt.block_on(Store::open(&dir.url())).expect("a fresh store");
            rt.block_on(fill(&store, sizes.n));
            let took = drain(rt, &store, &dir.url(), 1, sizes);
            ("sqlite", 1, took)
        }
    };
    emit(&json!({
        "kind": "throughput", "store": store_name, "workers": workers, "round": round,
        "n": sizes.n, "concurrency": sizes.concurrency, "batch": sizes.batch,
        "secs": took.as_secs_f64(), "per_s": rate(sizes.n, took),
    }));
}

// ---------------------------------------------------------------- 2. failover

fn failover(rt: &Runtime, server: &str, trial: usize, sizes: &Sizes) {
    let schema = rt.block_on(Schema::new(server, &format!("failover_{trial}")));
    let store = rt
        .block_on(Store::open(&schema.url))
        .expect("a fresh store");
    let config = WorkerConfig {
        concurrency: 4,
        batch: sizes.batch,
        lease: sizes.lease,
    };
    let mut a = WorkerProcess::spawn(&schema.url, "bench-a", &config);
    a.expect("ready", Duration::from_secs(60));
    a.go();
    let call = NewCall::new(BLOCK, "{\"secs\":3600}");
    let cid = call.cid;
    rt.block_on(store.enqueue(vec![call]))
        .expect("the blocking call");
    a.expect(ATTEMPT_START, Duration::from_secs(30));
    let mut b = WorkerProcess::spawn(&schema.url, "bench-b", &config);
    b.expect("ready", Duration::from_secs(60));
    b.go();
    // Wait for A's next renewal, then kill it at once: a whole lease left to run out.
    let lease_of = |store: &Store| {
        let record = rt
            .block_on(store.get(cid))
            .expect("the call")
            .expect("the call is stored");
        assert_eq!(
            record.worker.as_deref(),
            Some("bench-a"),
            "A holds the call"
        );
        record.lease_until.expect("a running call has a lease")
    };
    let first = lease_of(&store);
    let deadline = Instant::now() + sizes.lease;
    let lease_until = loop {
        let now = lease_of(&store);
        if now > first {
            break now;
        }
        assert!(Instant::now() < deadline, "A did not renew its lease");
        std::thread::sleep(Duration::from_millis(2));
    };
    let killed = SystemTime::now();
    a.child.kill().expect("SIGKILL to A");
    let _ = a.child.wait();
    let started: u64 = b
        .expect(ATTEMPT_START, sizes.lease * 3 + Duration::from_secs(10))
        .parse()
        .expect("a time");
    let killed_us = unix_us(killed);
    let gap_ms = started.saturating_sub(killed_us) as f64 / 1_000.0;
    let left_ms = lease_until
        .duration_since(killed)
        .unwrap_or_default()
        .as_secs_f64()
        * 1_000.0;
    let record = rt
        .block_on(store.get(cid))
        .expect("the call")
        .expect("the call is stored");
    assert_eq!(
        record.worker.as_deref(),
        Some("bench-b"),
        "B holds the call"
    );
    emit(&json!({
        "kind": "failover", "trial": trial,
        "lease_ms": sizes.lease.as_millis(),
        "kill_to_start_ms": gap_ms,
        "lease_left_at_kill_ms": left_ms,
        "after_expiry_ms": gap_ms - left_ms,
    }));
    b.stop();
    drop(a);
    drop(store);
    rt.block_on(schema.drop_it());
}

// ---------------------------------------------------------------- 3. enqueue

/// Calls from one task before the clock starts (connections opened, statements prepared).
const WARM_UP: u64 = 50;

/// `callers` tasks call the durable no-op until `sizes.enqueued` calls are stored, each
/// waiting for its call's commit, on a fresh schema that is the process's default store.
fn enqueue(rt: &Runtime, server: &str, callers: usize, round: usize, sizes: &Sizes) {
    let schema = rt.block_on(Schema::new(server, &format!("enqueue_{callers}")));
    let n = sizes.enqueued;
    let took = rt.block_on(async {
        let store = Store::open(&schema.url).await.expect("a fresh store");
        durable::set_default_store(store.clone());
        for i in 0..WARM_UP {
            pg_noop(n + i).await.expect("an enqueued call");
        }
        let next = Arc::new(AtomicU64::new(0));
        let start = Instant::now();
        let tasks: Vec<_> = (0..callers)
            .map(|_| {
                let next = Arc::clone(&next);
                tokio::spawn(async move {
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        if i >= n {
                            break;
                        }
                        pg_noop(i).await.expect("an enqueued call");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("a caller");
        }
        let took = start.elapsed();
        let stats = store.stats().await.expect("stats");
        assert_eq!(
            stats.count(NOOP, CallState::Pending),
            n + WARM_UP,
            "calls missing"
        );
        took
    });
    emit(&json!({
        "kind": "enqueue", "store": "postgres", "round": round, "callers": callers,
        "calls": n, "secs": took.as_secs_f64(), "per_s": rate(n, took),
    }));
    rt.block_on(schema.drop_it());
}

// ---------------------------------------------------------------- main

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

fn main() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        worker_child(&url);
        return;
    }
    let Some(server) = server_url() else {
        println!(
            "durable_pg: skipped: no PostgreSQL (set RETRY_BENCH_POSTGRES_URL or \
             RETRY_TEST_POSTGRES_URL, e.g. `source .ci/postgres.sh`)"
        );
        emit(&json!({ "kind": "skipped", "reason": "no PostgreSQL URL" }));
        return;
    };
    let sizes = Sizes::from_env();
    let rt = runtime();
    let version: String = rt.block_on(async {
        connect(&server)
            .await
            .query_one("SHOW server_version", &[])
            .await
            .expect("the server's version")
            .get(0)
    });
    emit(&json!({
        "kind": "setup",
        "quick": sizes.quick,
        "server_version": version,
        "threads": std::thread::available_parallelism().map_or(1, usize::from),
        "n": sizes.n,
        "rounds": sizes.rounds,
        "concurrency": sizes.concurrency,
        "batch": sizes.batch,
        "sqlite": rusqlite_version(),
    }));
    if sizes.only.as_deref() != Some("drain") {
        for round in 0..sizes.rounds {
            for callers in sizes.callers {
                enqueue(&rt, &server, callers, round, &sizes);
            }
        }
    }
    if sizes.only.as_deref() == Some("enqueue") {
        return;
    }
    let mut kinds = vec![Kind::Sqlite];
    kinds.extend(sizes.workers.iter().map(|&w| Kind::Postgres(w)));
    for round in 0..sizes.rounds {
        for kind in &kinds {
            throughput(&rt, &server, *kind, round, &sizes);
        }
        kinds.rotate_left(1);
    }
    for trial in 0..sizes.failovers {
        failover(&rt, &server, trial, &sizes);
    }
}

/// The SQLite library the store is built on.
fn rusqlite_version() -> &'static str {
    rusqlite::version()
}
