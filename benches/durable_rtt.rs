//! Durable calls on PostgreSQL with the database across a network: the drain and enqueue of
//! `benches/durable_pg.rs` with round-trip time added between the store's users and the
//! server, and the round trips each call costs. Prints one `durable-rtt-result: {json}` line
//! per figure (`benches/run.sh` writes them to `durable_rtt.jsonl`).
//!
//! The network is a delaying TCP proxy on loopback (`benches/rtt_proxy/mod.rs`, in this
//! process): it adds half the round-trip time to each direction as a delay line (every chunk
//! leaves at its arrival + the delay, in order; pipelined data does not wait for answers, so
//! the link adds latency, not a throughput limit), and counts round trips (client "flights":
//! what a connection sends after it last received something), bytes and chunks each way, and
//! the flights by the statement they carry. `netem` was not used: this machine's kernel has
//! no `sch_netem` (`tc qdisc add dev lo root netem` in a network namespace: "Specified qdisc
//! kind is unknown"). Each figure is measured at 1 ms added round-trip time and, as the
//! control, at 0 ms through the same proxy. Only the measured traffic goes through the
//! proxy: this process fills the store, polls for the end and counts on direct connections.
//! The proxied connections are plain (`sslmode=disable`, unless the URL sets `sslmode`), so
//! that the proxy can read which statement each round trip carries.
//!
//! 1. Drain: N no-op calls (`bench::rtt_noop`) are stored first on a fresh schema, then 1 or
//!    4 worker processes (this binary again, in its child mode, one `Worker` each,
//!    concurrency 32, batch 64, lease 30 s: no renewal in a drain) open the store through one
//!    proxy started for the measurement, which all of them connect through, and say they are
//!    ready; the clock and the counters start when the parent tells them all to go, and stop
//!    when no unfinished call is left (`Store::next_due` on a direct connection, every 10 ms),
//!    confirmed by `Store::stats` counting all N succeeded. Round trips per call: the
//!    proxy's flights in that interval over N, in all and by path (claim, outcome, poll,
//!    heartbeat, renewal, the workers' start, new connections, housekeeping, other), from
//!    the statements' labels, with the flights of each statement (`statements`).
//! 2. Idle: the same worker processes, once drained, are left idle; after 1 s to settle, the
//!    flights over an idle interval (10 s, 3 s quick) are the background traffic (polls,
//!    heartbeats, the `LISTEN` connections), reported per second and per worker process.
//! 3. Enqueue: calls per second of the durable no-op (`rtt_noop(i).await`, which returns once
//!    its call is committed) from 1 caller and from 64 concurrent callers (tokio tasks) in this
//!    process, its default store opened through a proxy, on a fresh schema each, after 50
//!    calls from one task to warm up (connections opened, statements prepared); round trips
//!    per call as above.
//!
//! 0. Calibration: sequential `SELECT 1`s through the proxy (1,000; 200 quick), one round trip
//!    each: their mean time at 1 ms less that at 0 ms is the round-trip time it really adds,
//!    and their round trips per query (1) check the count; the same without the proxy.
//!
//! Beside each pair, the direct control: the same measurement without the proxy (a rate only,
//! nothing counted; plain connections too), for what the proxy itself costs (its threads
//! share the machine's CPUs).
//! 4. Renewals: 32 calls of `bench::rtt_sleep`, each attempt 3 s long, run by one worker
//!    process (concurrency 32) whose lease is 1.5 s, so renewed every 0.5 s while they run;
//!    round trips per call by path, at 1 ms, from "go" until all 32 have succeeded (once,
//!    after the rounds).
//!
//! The order of the measurements at 0 and 1 ms alternates within each round. Needs
//! `RETRY_BENCH_POSTGRES_URL` or `RETRY_TEST_POSTGRES_URL` (a database the bench may create
//! schemas in, reached over TCP as `postgres://user@host:port/db`); without either it prints a
//! "skipped" line and exits 0. `RETRY_BENCH_QUICK=1` runs small sizes and one round;
//! `RETRY_BENCH_RTT_ONLY=drain`, `=enqueue` or `=renewal` runs that part alone (with the
//! calibration, except `renewal`).

#![allow(clippy::cast_precision_loss)] // counts and durations shown as f64 rates

#[path = "rtt_proxy/mod.rs"]
mod rtt_proxy;

use core::hint::black_box;
use core::time::Duration;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};
use std::time::Instant;

use retry_runtime::durable::{self, CallState, NewCall, Store, Worker};
use retry_runtime::retry;
use rtt_proxy::{Counts, RttProxy};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

const NOOP: &str = "bench::rtt_noop";
const SLEEP: &str = "bench::rtt_sleep";

/// Succeeds at once.
#[retry(mode = "durable", name = "bench::rtt_noop", max = 3, delay = "10ms")]
async fn rtt_noop(n: u64) -> Result<u64, String> {
    Ok(black_box(n))
}

/// Sleeps for `ms`, then succeeds: an attempt long enough for its lease to be renewed.
#[retry(mode = "durable", name = "bench::rtt_sleep", max = 3, delay = "10ms")]
async fn rtt_sleep(ms: u64) -> Result<u64, String> {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    Ok(ms)
}

// ---------------------------------------------------------------- sizes

struct Sizes {
    quick: bool,
    rounds: usize,
    /// Added round-trip times, in milliseconds.
    rtts: [u64; 2],
    /// Calls stored before each drain.
    n: u64,
    concurrency: usize,
    batch: usize,
    workers: [usize; 2],
    idle: Duration,
    /// Calls stored by each enqueue measurement with one caller, and with many.
    enqueued_one: u64,
    enqueued_many: u64,
    callers: [usize; 2],
    /// Sequential `SELECT 1`s of the calibration.
    pings: u64,
    /// The renewals' measurement: calls, each attempt's length, the lease.
    sleepers: u64,
    sleep: Duration,
    lease: Duration,
    only: Option<String>,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = std::env::var_os("RETRY_BENCH_QUICK").is_some_and(|v| v != "0");
        Sizes {
            quick,
            rounds: if quick { 1 } else { 2 },
            rtts: [0, 1],
            n: if quick { 2_000 } else { 20_000 },
            concurrency: 32,
            batch: 64,
            workers: [1, 4],
            idle: Duration::from_secs(if quick { 3 } else { 10 }),
            enqueued_one: if quick { 300 } else { 2_000 },
            enqueued_many: if quick { 2_000 } else { 10_000 },
            callers: [1, 64],
            pings: if quick { 200 } else { 1_000 },
            sleepers: 32,
            sleep: Duration::from_secs(3),
            lease: Duration::from_millis(1_500),
            only: std::env::var("RETRY_BENCH_RTT_ONLY")
                .ok()
                .filter(|v| !v.is_empty()),
        }
    }
}

fn emit(v: &Value) {
    println!("durable-rtt-result: {v}");
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

fn per(count: u64, calls: u64) -> f64 {
    count as f64 / calls.max(1) as f64
}

// ---------------------------------------------------------------- stores and the proxy

fn server_url() -> Option<String> {
    ["RETRY_BENCH_POSTGRES_URL", "RETRY_TEST_POSTGRES_URL"]
        .into_iter()
        .find_map(|k| std::env::var(k).ok().filter(|v| !v.is_empty()))
}

/// `postgres://[user@]host:port/rest` -> (the server's address, `host:port`).
fn authority(url: &str) -> (SocketAddr, String) {
    let rest = url
        .split_once("://")
        .map_or_else(|| panic!("not a postgres:// URL: {url}"), |(_, r)| r);
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let host_port = rest[..end]
        .rsplit_once('@')
        .map_or(&rest[..end], |(_, h)| h);
    let with_port = if host_port.contains(':') {
        host_port.to_owned()
    } else {
        format!("{host_port}:5432")
    };
    let addr = with_port
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .unwrap_or_else(|| panic!("the server's address in {url} does not resolve"));
    (addr, host_port.to_owned())
}

/// A proxy adding `rtt_ms` (none: the direct control), and `url` through it; plain
/// connections either way (see [`plain`]).
fn link(server: &str, url: &str, rtt_ms: Option<u64>) -> (Option<RttProxy>, String) {
    let Some(ms) = rtt_ms else {
        return (None, plain(url));
    };
    let (target, _) = authority(server);
    let proxy = RttProxy::start(target, Duration::from_micros(ms * 500));
    let url = through(url, &proxy);
    (Some(proxy), url)
}

/// The proxy's counts (all zero without one).
fn counts(proxy: Option<&RttProxy>) -> Counts {
    proxy.map(RttProxy::counts).unwrap_or_default()
}

/// The name of a link in the schemas' names and the JSON lines.
fn link_name(rtt_ms: Option<u64>) -> String {
    rtt_ms.map_or_else(|| "direct".to_owned(), |ms| format!("{ms}ms"))
}

/// `url` with its host and port replaced by the proxy's, and without TLS unless it asks for
/// it (`sslmode=`): the proxy reads the statements to label the round trips. (TLS costs CPU,
/// not round trips, once connected: its records go where the plain messages would.)
fn through(url: &str, proxy: &RttProxy) -> String {
    let (_, host_port) = authority(url);
    plain(&url.replacen(&host_port, &proxy.addr().to_string(), 1))
}

/// `url` with `sslmode=disable` unless it sets `sslmode`: the default (`prefer`) takes TLS
/// when the server offers it, which the proxy could not read, and which would make the direct
/// control unlike the proxied runs.
fn plain(url: &str) -> String {
    if url.contains("sslmode=") {
        return url.to_owned();
    }
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sslmode=disable")
}

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
        let name = format!("retry_rtt_{}_{what}", std::process::id());
        connect(server)
            .await
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
        connect(&self.server)
            .await
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name))
            .await
            .expect("the schema dropped");
    }
}

async fn fill(store: &Store, n: u64) {
    let mut i = 0;
    while i < n {
        let end = (i + 1_000).min(n);
        let calls = (i..end)
            .map(|k| NewCall::new(NOOP, format!("{{\"n\":{k}}}")))
            .collect();
        store.enqueue(calls).await.expect("a batch of calls");
        i = end;
    }
}

/// The path a statement belongs to, from its label (`BEGIN`/`COMMIT` flights go with the
/// statement they are labelled with).
fn path_of(label: &str) -> &'static str {
    let has = |s: &str| label.contains(s);
    if has("WITH picked") || has("SELECT function FROM retry_limits") {
        "claim"
    } else if has("INSERT INTO retry_attempts")
        || has("UPDATE retry_calls SET state = 'succeeded'")
        || has("DELETE FROM retry_attempts t WHERE t.cid = ANY")
    {
        "outcome"
    } else if has("INSERT INTO retry_calls") || has("pg_notify") {
        "enqueue"
    } else if has("SET lease_until = $3") {
        "renewal"
    } else if has("min(claimable_at)") {
        "poll"
    } else if has("UPDATE retry_workers SET heartbeat_at") {
        "heartbeat"
    } else if has("retry_workers") || has("retry_limits") || has("LISTEN") {
        // The worker's start: its registration, its functions' limits, its `LISTEN`.
        "start"
    } else if label == "(connect)" {
        "connect"
    } else if has("DELETE FROM retry_attempts WHERE cid IN")
        || has("DELETE FROM retry_calls")
        || has("SELECT function, state, count(*)")
    {
        // The purge of old finished calls, the look for overdue calls nobody claims.
        "housekeeping"
    } else {
        "other"
    }
}

/// Flights per call: in all, by path, and the statements (most flights first).
fn round_trips(counts: &Counts, calls: u64) -> (Value, Value) {
    let mut paths: BTreeMap<&str, u64> = BTreeMap::new();
    for (label, n) in &counts.by_statement {
        *paths.entry(path_of(label)).or_insert(0) += n;
    }
    let by_path: serde_json::Map<String, Value> = paths
        .iter()
        .map(|(p, n)| ((*p).to_owned(), json!(per(*n, calls))))
        .collect();
    let mut statements: Vec<_> = counts.by_statement.iter().collect();
    statements.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    let statements: Vec<Value> = statements
        .into_iter()
        .map(|(label, n)| json!({ "statement": label, "flights": n, "per_call": per(*n, calls) }))
        .collect();
    (Value::Object(by_path), Value::Array(statements))
}

fn traffic(counts: &Counts) -> Value {
    json!({
        "flights": counts.flights,
        "connections": counts.connections,
        "client_bytes": counts.client_bytes, "client_chunks": counts.client_chunks,
        "server_bytes": counts.server_bytes, "server_chunks": counts.server_chunks,
    })
}

// ---------------------------------------------------------------- worker processes

const CHILD_URL: &str = "RETRY_BENCH_RTT_CHILD_URL";
const CHILD_ID: &str = "RETRY_BENCH_RTT_CHILD_ID";
const CHILD_CONCURRENCY: &str = "RETRY_BENCH_RTT_CHILD_CONCURRENCY";
const CHILD_BATCH: &str = "RETRY_BENCH_RTT_CHILD_BATCH";
const CHILD_LEASE_MS: &str = "RETRY_BENCH_RTT_CHILD_LEASE_MS";

/// A worker process: it opens the store and prints `ready`, starts its worker when a line
/// arrives on its standard input, and shuts it down when that input closes.
struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl WorkerProcess {
    fn spawn(url: &str, id: &str, lease: Duration, sizes: &Sizes) -> WorkerProcess {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD_URL, url)
            .env(CHILD_ID, id)
            .env(CHILD_CONCURRENCY, sizes.concurrency.to_string())
            .env(CHILD_BATCH, sizes.batch.to_string())
            .env(CHILD_LEASE_MS, lease.as_millis().to_string())
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

    fn ready(&self) {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line == "ready" => return,
                Ok(_) => {}
                Err(e) => panic!("a worker process did not get ready in 60 s: {e}"),
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

// ---------------------------------------------------------------- 1, 2. drain and idle

fn drain(
    rt: &Runtime,
    server: &str,
    rtt_ms: Option<u64>,
    workers: usize,
    round: usize,
    sizes: &Sizes,
) {
    let schema = rt.block_on(Schema::new(
        server,
        &format!("drain_{}_{workers}", link_name(rtt_ms)),
    ));
    let store = rt
        .block_on(Store::open(&schema.url))
        .expect("a fresh store");
    rt.block_on(fill(&store, sizes.n));
    let (proxy, url) = link(server, &schema.url, rtt_ms);
    let mut procs: Vec<_> = (0..workers)
        .map(|i| WorkerProcess::spawn(&url, &format!("rtt-{i}"), Duration::from_secs(30), sizes))
        .collect();
    for p in &procs {
        p.ready();
    }
    let before = counts(proxy.as_ref());
    let start = Instant::now();
    for p in &mut procs {
        p.go();
    }
    let functions = [NOOP.to_owned()];
    let (took, during) = rt.block_on(async {
        loop {
            if store
                .next_due(&functions)
                .await
                .expect("next_due")
                .is_none()
            {
                let (took, after) = (start.elapsed(), counts(proxy.as_ref()));
                let stats = store.stats().await.expect("stats");
                assert_eq!(stats.count_state(CallState::Dead), 0, "a call died");
                if stats.count(NOOP, CallState::Succeeded) >= sizes.n {
                    break (took, after.since(&before));
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "the workers did not drain the store in 10 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let mut line = json!({
        "kind": "drain", "rtt_ms": rtt_ms, "link": link_name(rtt_ms), "workers": workers,
        "round": round, "n": sizes.n, "concurrency": sizes.concurrency, "batch": sizes.batch,
        "secs": took.as_secs_f64(), "per_s": rate(sizes.n, took),
    });
    let Some(proxy) = proxy else {
        // The direct control: a rate, nothing counted.
        emit(&line);
        for p in procs {
            p.stop();
        }
        drop(store);
        rt.block_on(schema.drop_it());
        return;
    };
    let (by_path, statements) = round_trips(&during, sizes.n);
    line["round_trips_per_call"] = json!(per(during.flights, sizes.n));
    line["round_trips_per_call_by_path"] = by_path;
    line["statements"] = statements;
    line["traffic"] = traffic(&during);
    emit(&line);
    // The same processes, idle.
    std::thread::sleep(Duration::from_secs(1));
    let before = proxy.counts();
    std::thread::sleep(sizes.idle);
    let idle = proxy.counts().since(&before);
    let secs = sizes.idle.as_secs_f64();
    let (by_path, statements) = round_trips(&idle, 1);
    emit(&json!({
        "kind": "idle", "rtt_ms": rtt_ms, "link": link_name(rtt_ms), "workers": workers,
        "round": round,
        "secs": secs,
        "round_trips_per_s": idle.flights as f64 / secs,
        "round_trips_per_s_per_worker": idle.flights as f64 / secs / workers as f64,
        "flights_by_path": by_path,
        "statements": statements,
        "traffic": traffic(&idle),
    }));
    for p in procs {
        p.stop();
    }
    drop(proxy);
    drop(store);
    rt.block_on(schema.drop_it());
}

// ---------------------------------------------------------------- 4. renewals

/// `sizes.sleepers` calls of `bench::rtt_sleep`, each attempt `sizes.sleep` long, run by one
/// worker process whose lease (`sizes.lease`) is renewed every third of it while they run:
/// the round trips per call, by path, from "go" until all have succeeded.
fn renewals(rt: &Runtime, server: &str, rtt_ms: u64, sizes: &Sizes) {
    let schema = rt.block_on(Schema::new(server, &format!("renew_{rtt_ms}ms")));
    let store = rt
        .block_on(Store::open(&schema.url))
        .expect("a fresh store");
    let ms = u64::try_from(sizes.sleep.as_millis()).unwrap_or(u64::MAX);
    let calls = (0..sizes.sleepers)
        .map(|_| NewCall::new(SLEEP, format!("{{\"ms\":{ms}}}")))
        .collect();
    rt.block_on(store.enqueue(calls)).expect("the calls");
    let (proxy, url) = link(server, &schema.url, Some(rtt_ms));
    let proxy = proxy.expect("a proxy");
    let mut worker = WorkerProcess::spawn(&url, "rtt-renew", sizes.lease, sizes);
    worker.ready();
    let before = proxy.counts();
    let start = Instant::now();
    worker.go();
    let functions = [SLEEP.to_owned()];
    let (took, during) = rt.block_on(async {
        loop {
            if store
                .next_due(&functions)
                .await
                .expect("next_due")
                .is_none()
            {
                let (took, after) = (start.elapsed(), proxy.counts());
                let stats = store.stats().await.expect("stats");
                assert_eq!(stats.count_state(CallState::Dead), 0, "a call died");
                if stats.count(SLEEP, CallState::Succeeded) >= sizes.sleepers {
                    break (took, after.since(&before));
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(120),
                "the sleeping calls did not finish in 2 minutes"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    let (by_path, statements) = round_trips(&during, sizes.sleepers);
    emit(&json!({
        "kind": "renewal", "rtt_ms": rtt_ms, "link": link_name(Some(rtt_ms)), "workers": 1,
        "calls": sizes.sleepers, "attempt_ms": ms,
        "lease_ms": u64::try_from(sizes.lease.as_millis()).unwrap_or(u64::MAX),
        "secs": took.as_secs_f64(),
        "round_trips_per_call": per(during.flights, sizes.sleepers),
        "round_trips_per_call_by_path": by_path,
        "statements": statements,
        "traffic": traffic(&during),
    }));
    worker.stop();
    drop(proxy);
    drop(store);
    rt.block_on(schema.drop_it());
}

// ---------------------------------------------------------------- 0. the proxy itself

/// The proxy checked: sequential `SELECT 1`s through it, each one round trip; their mean time
/// at 1 ms less that at 0 ms is the round-trip time it adds.
fn calibrate(rt: &Runtime, server: &str, rtt_ms: Option<u64>, sizes: &Sizes) {
    let (proxy, url) = link(server, server, rtt_ms);
    let queries = sizes.pings;
    let (took, during) = rt.block_on(async {
        let client = connect(&url).await;
        let select = client.prepare("SELECT 1").await.expect("a statement");
        let before = counts(proxy.as_ref());
        let start = Instant::now();
        for _ in 0..queries {
            client.query_one(&select, &[]).await.expect("SELECT 1");
        }
        (start.elapsed(), counts(proxy.as_ref()).since(&before))
    });
    let mut line = json!({
        "kind": "calibration", "rtt_ms": rtt_ms, "link": link_name(rtt_ms), "queries": queries,
        "ms_per_query": took.as_secs_f64() * 1_000.0 / queries as f64,
    });
    if proxy.is_some() {
        line["round_trips_per_query"] = json!(per(during.flights, queries));
    }
    emit(&line);
}

// ---------------------------------------------------------------- 3. enqueue

const WARM_UP: u64 = 50;

fn enqueue(
    rt: &Runtime,
    server: &str,
    rtt_ms: Option<u64>,
    callers: usize,
    round: usize,
    sizes: &Sizes,
) {
    let schema = rt.block_on(Schema::new(
        server,
        &format!("enqueue_{}_{callers}", link_name(rtt_ms)),
    ));
    let (proxy, url) = link(server, &schema.url, rtt_ms);
    let n = if callers == 1 {
        sizes.enqueued_one
    } else {
        sizes.enqueued_many
    };
    let (took, during) = rt.block_on(async {
        let store = Store::open(&url).await.expect("a fresh store");
        durable::set_default_store(store.clone());
        for i in 0..WARM_UP {
            rtt_noop(n + i).await.expect("an enqueued call");
        }
        let next = Arc::new(AtomicU64::new(0));
        let before = counts(proxy.as_ref());
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
                        rtt_noop(i).await.expect("an enqueued call");
                    }
                })
            })
            .collect();
        for t in tasks {
            t.await.expect("a caller");
        }
        let (took, after) = (start.elapsed(), counts(proxy.as_ref()));
        let direct = Store::open_existing(&schema.url).await.expect("the store");
        let stats = direct.stats().await.expect("stats");
        assert_eq!(
            stats.count(NOOP, CallState::Pending),
            n + WARM_UP,
            "calls missing"
        );
        (took, after.since(&before))
    });
    let mut line = json!({
        "kind": "enqueue", "rtt_ms": rtt_ms, "link": link_name(rtt_ms), "callers": callers,
        "round": round, "calls": n, "secs": took.as_secs_f64(), "per_s": rate(n, took),
    });
    if proxy.is_some() {
        let (by_path, statements) = round_trips(&during, n);
        line["round_trips_per_call"] = json!(per(during.flights, n));
        line["round_trips_per_call_by_path"] = by_path;
        line["statements"] = statements;
        line["traffic"] = traffic(&during);
    }
    emit(&line);
    drop(proxy);
    rt.block_on(schema.drop_it());
}

// ---------------------------------------------------------------- main

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

fn load_average() -> Option<String> {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn main() {
    if let Ok(url) = std::env::var(CHILD_URL) {
        worker_child(&url);
        return;
    }
    let Some(server) = server_url() else {
        println!(
            "durable_rtt: skipped: no PostgreSQL (set RETRY_BENCH_POSTGRES_URL or \
             RETRY_TEST_POSTGRES_URL, e.g. `source .ci/postgres.sh`)"
        );
        emit(&json!({ "kind": "skipped", "reason": "no PostgreSQL URL" }));
        return;
    };
    let sizes = Sizes::from_env();
    let rt = runtime();
    let settings: Vec<String> = rt.block_on(async {
        let client = connect(&server).await;
        let mut out = Vec::new();
        for s in ["server_version", "fsync", "synchronous_commit"] {
            let row = client
                .query_one(&format!("SHOW {s}"), &[])
                .await
                .expect("a setting");
            out.push(row.get(0));
        }
        out
    });
    emit(&json!({
        "kind": "setup", "quick": sizes.quick,
        "server_version": settings[0], "fsync": settings[1], "synchronous_commit": settings[2],
        "threads": std::thread::available_parallelism().map_or(1, usize::from),
        "load_average": load_average(),
        "rtts_ms": sizes.rtts, "n": sizes.n, "rounds": sizes.rounds,
        "concurrency": sizes.concurrency, "batch": sizes.batch,
        "proxy": "delay line on loopback (benches/rtt_proxy), one per measurement",
    }));
    let runs = |part: &str| sizes.only.as_deref().is_none_or(|only| only == part);
    for round in 0..sizes.rounds {
        if sizes.only.as_deref() == Some("renewal") {
            break;
        }
        // 0 ms first in even rounds, 1 ms first in odd ones; the direct control between them.
        let mut rtts = sizes.rtts;
        if round % 2 == 1 {
            rtts.reverse();
        }
        let rtts = [Some(rtts[0]), None, Some(rtts[1])];
        for &rtt in &rtts {
            calibrate(&rt, &server, rtt, &sizes);
        }
        if runs("enqueue") {
            for callers in sizes.callers {
                for &rtt in &rtts {
                    enqueue(&rt, &server, rtt, callers, round, &sizes);
                }
            }
        }
        if runs("drain") {
            for workers in sizes.workers {
                for &rtt in &rtts {
                    drain(&rt, &server, rtt, workers, round, &sizes);
                }
            }
        }
    }
    if runs("renewal") {
        renewals(&rt, &server, 1, &sizes);
    }
    emit(&json!({ "kind": "done", "load_average": load_average() }));
}
