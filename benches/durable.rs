//! Durable calls on a SQLite file store (`sqlite:PATH`, `synchronous = FULL`, WAL). Prints
//! one `durable-result: {json}` line per figure for `benches/run.sh` (`durable.jsonl`), which
//! `benches/report.py` turns into the "Durable calls (SQLite)" section of BENCHMARKS.md.
//!
//! 1. Enqueue: calls per second of a `#[retry(mode = "durable")] async fn` with 1 caller and
//!    with 64 concurrent callers (tokio tasks), each on a fresh store file, against a plain
//!    `rusqlite` loop inserting the same row into the same table one row per transaction
//!    (`BEGIN IMMEDIATE`, `INSERT`, `COMMIT`; WAL, `synchronous = FULL`), in the same run.
//!    Each starts with 50 untimed commits in its file; the plain loop runs first in even
//!    rounds and last in odd ones.
//! 2. Drain: the store the 64 callers filled, run by one `Worker` (concurrency 64): from the
//!    worker's start until `Store::stats` shows every call succeeded (polled every 10 ms).
//! 3. `persist = "on_failure"` on success (the first attempt, in the caller, no write)
//!    against the same function as a plain inline `#[retry]`, sync and async: interleaved
//!    timed loops, the median of the rounds.
//! 4. Memory of the worker's process, with 10,000 and with 1,000,000 stored calls (10,000 and
//!    100,000 quick): the same 5,000 of them due (`pending`), the rest `succeeded` an hour ago
//!    with their attempt in the history, as a store looks after a long run (within the default
//!    retention of a day, so the worker's purge leaves them). The store is filled directly
//!    with SQL, in transactions of 100,000 rows, then checkpointed. A child process (this
//!    binary again) opens it, starts a worker and drains the due calls; it samples its
//!    resident memory (`VmRSS`, and `RssAnon` without the mapped files, of
//!    `/proc/self/status`) every 2 ms and counts the Rust heap's live bytes (a counting global
//!    allocator, on in the child only) and SQLite's own heap (`sqlite3_memory_highwater`).
//!    Reported: the peaks, and the peaks above the values just before the worker started.
//!
//! `RETRY_BENCH_QUICK=1` runs small sizes and one round (a check, under a minute); without it
//! the sizes of BENCHMARKS.md. The store files live under cargo's `CARGO_TARGET_TMPDIR`, on
//! the target directory's file system (reported, since an fsync on tmpfs costs nothing).

#![allow(clippy::cast_precision_loss)] // counts and nanoseconds shown as f64 rates

use core::future::Future;
use core::hint::black_box;
use core::time::Duration;
use std::alloc::{GlobalAlloc, Layout, System};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicIsize, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use retry_runtime::durable::{
    self, CallState, NewCall, Outcome, SqliteBackend, Store, Synchronous, Worker,
};
use retry_runtime::{retry, CorrelationId};
use rusqlite::{params, Connection, TransactionBehavior};
use serde_json::{json, Value};
use tokio::runtime::Runtime;

// ---------------------------------------------------------------- the functions

/// The registered name of the durable no-op, pinned so the stores can be filled directly.
const NOOP: &str = "bench::noop";

/// The operation: succeeds at once.
#[inline(never)]
#[allow(clippy::unnecessary_wraps)] // the shape of a fallible operation
fn op(n: u64) -> Result<u64, String> {
    Ok(black_box(n))
}

#[retry(mode = "durable", name = "bench::noop", max = 3, delay = "10ms")]
async fn noop(n: u64) -> Result<u64, String> {
    op(n)
}

/// Nanoseconds from `UNIX_EPOCH` to now.
fn now_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos(),
    )
    .unwrap_or(u64::MAX)
}

/// The delays from enqueue to first attempt seen by [`probe`], in nanoseconds.
static PROBED: std::sync::Mutex<Vec<u64>> = std::sync::Mutex::new(Vec::new());

/// Records how long after `sent_ns` (its enqueue) its first attempt started.
#[retry(mode = "durable", name = "bench::probe", max = 3, delay = "10ms")]
async fn probe(sent_ns: u64) -> Result<u64, String> {
    let late = now_ns().saturating_sub(sent_ns);
    PROBED.lock().map_err(|e| e.to_string())?.push(late);
    Ok(late)
}

#[retry(mode = "durable", persist = "on_failure", max = 3, delay = "10ms")]
fn on_failure_sync(n: u64) -> Result<u64, String> {
    op(n)
}

#[retry(max = 3, delay = "10ms")]
fn inline_sync(n: u64) -> Result<u64, String> {
    op(n)
}

#[retry(mode = "durable", persist = "on_failure", max = 3, delay = "10ms")]
async fn on_failure_async(n: u64) -> Result<u64, String> {
    op(n)
}

#[retry(max = 3, delay = "10ms")]
async fn inline_async(n: u64) -> Result<u64, String> {
    op(n)
}

// ---------------------------------------------------------------- sizes

/// The due calls of the memory figure's stores: the worker's work, the same in both.
const MEMORY_DUE: u64 = 5_000;

struct Sizes {
    quick: bool,
    /// Rounds of (plain loop, 1 caller, 64 callers, drain).
    rounds: usize,
    /// Calls of the plain loop and of the single caller.
    one: u64,
    /// Calls of the 64 callers, then drained by the worker.
    many: u64,
    callers: usize,
    concurrency: usize,
    /// Rounds and calls per round of the `persist = "on_failure"` loops.
    loop_rounds: usize,
    loop_iters: u64,
    /// The calls stored in the small and the large store of the memory figure.
    memory: [u64; 2],
    /// The calls due in both of them, drained by the worker.
    memory_due: u64,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = std::env::var_os("RETRY_BENCH_QUICK").is_some_and(|v| v != "0");
        if quick {
            Sizes {
                quick,
                rounds: 1,
                one: 300,
                many: 5_000,
                callers: 64,
                concurrency: 64,
                loop_rounds: 7,
                loop_iters: 50_000,
                memory: [10_000, 100_000],
                memory_due: MEMORY_DUE,
            }
        } else {
            Sizes {
                quick,
                rounds: 3,
                one: 2_000,
                many: 20_000,
                callers: 64,
                concurrency: 64,
                loop_rounds: 31,
                loop_iters: 200_000,
                memory: [10_000, 1_000_000],
                memory_due: MEMORY_DUE,
            }
        }
    }
}

fn emit(v: &Value) {
    println!("durable-result: {v}");
}

// ---------------------------------------------------------------- store files

/// A directory removed when dropped.
struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("durable-bench-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("a directory for the store file");
        Dir(path)
    }

    fn db(&self) -> PathBuf {
        self.0.join("calls.db")
    }

    fn url(&self) -> String {
        format!("sqlite:{}", self.db().display())
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The type of the file system holding `path`: the longest mount point above it in
/// `/proc/self/mountinfo`.
fn fs_type(path: &Path) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_owned());
    let Ok(info) = std::fs::read_to_string("/proc/self/mountinfo") else {
        return "unknown".into();
    };
    let mut best: Option<(usize, String)> = None;
    for line in info.lines() {
        let mut halves = line.splitn(2, " - ");
        let (Some(left), Some(right)) = (halves.next(), halves.next()) else {
            continue;
        };
        let (Some(mount), Some(fs)) = (left.split(' ').nth(4), right.split(' ').next()) else {
            continue;
        };
        if path.starts_with(mount) && best.as_ref().is_none_or(|(len, _)| mount.len() >= *len) {
            best = Some((mount.len(), fs.to_owned()));
        }
    }
    best.map_or_else(|| "unknown".into(), |(_, fs)| fs)
}

fn ms(t: SystemTime) -> i64 {
    i64::try_from(t.duration_since(UNIX_EPOCH).unwrap_or_default().as_millis()).unwrap_or(i64::MAX)
}

fn args_json(n: u64) -> String {
    format!("{{\"n\":{n}}}")
}

// ---------------------------------------------------------------- 1. enqueue

/// Commits made before the clock starts, by the plain loop and by one caller of the durable
/// function, in the file being measured (the first commits of a fresh file cost more).
const WARM_UP: u64 = 50;

/// The plain loop: the store's table (the same schema file) in a fresh file, WAL,
/// `synchronous = FULL`, one `BEGIN IMMEDIATE; INSERT; COMMIT` per row, the row the store
/// writes for a new call (its ID, the function's name, the arguments as JSON, times).
fn plain_loop(n: u64) -> Duration {
    let dir = Dir::new("plain");
    let mut conn = Connection::open(dir.db()).expect("a SQLite file");
    let mode: String = conn
        .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
        .expect("WAL");
    assert!(mode.eq_ignore_ascii_case("wal"), "journal_mode is {mode}");
    conn.pragma_update(None, "synchronous", "FULL")
        .expect("synchronous = FULL");
    conn.execute_batch(include_str!("../retry-runtime/src/durable/schema.sql"))
        .expect("the store's schema");
    let mut start = Instant::now();
    for i in 0..WARM_UP + n {
        if i == WARM_UP {
            start = Instant::now();
        }
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("BEGIN IMMEDIATE");
        let now = ms(SystemTime::now());
        tx.prepare_cached(
            "INSERT INTO calls (cid, parent, function, args, state, attempts, created_at, \
             next_due_at, fence, last_wait_ns, updated_at) \
             VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5, 0, 0, ?5)",
        )
        .expect("the insert")
        .execute(params![
            CorrelationId::new().to_string(),
            None::<String>,
            NOOP,
            args_json(i),
            now
        ])
        .expect("a row");
        tx.commit().expect("COMMIT");
    }
    let took = start.elapsed();
    let rows: u64 = conn
        .query_row("SELECT count(*) FROM calls", [], |r| r.get(0))
        .expect("a count");
    assert_eq!(rows, WARM_UP + n, "the plain loop lost rows");
    took
}

/// `callers` tasks call the durable function until `n` calls are stored, each waiting for its
/// call's commit, after `WARM_UP` calls from one task. The store is fresh and is the
/// process's default store. Returns the time of the `n` calls, the store and the calls in it.
async fn durable_enqueue(
    dir: &Dir,
    callers: usize,
    n: u64,
) -> (Duration, Store, Arc<SqliteBackend>, u64) {
    let (store, backend) = open_counted(dir);
    durable::set_default_store(store.clone());
    for i in 0..WARM_UP {
        noop(n + i).await.expect("an enqueued call");
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
                    noop(i).await.expect("an enqueued call");
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a caller");
    }
    let took = start.elapsed();
    let stats = store.stats().await.expect("stats");
    let total = n + WARM_UP;
    assert_eq!(
        stats.count(NOOP, CallState::Pending),
        total,
        "calls missing"
    );
    (took, store, backend, total)
}

/// A fresh store in `dir` as `Store::open` makes it (`synchronous = FULL`), with its backend
/// kept to read the writer's commits.
fn open_counted(dir: &Dir) -> (Store, Arc<SqliteBackend>) {
    let backend =
        Arc::new(SqliteBackend::open_file(&dir.db(), Synchronous::Full, true).expect("a store"));
    (Store::from_backend(backend.clone()), backend)
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

// ---------------------------------------------------------------- 2. drain

/// Starts a worker on `store` and waits until no call of the no-op is left to run (pending,
/// waiting or running: `Store::next_due` is `None`, a read of a few index rows polled every
/// 10 ms, where counting the store's calls would cost a scan of them all), then checks that
/// `n` calls of the no-op have succeeded and none died.
async fn drain(store: &Store, n: u64, concurrency: usize) -> Duration {
    let start = Instant::now();
    let worker = Worker::builder(store.clone())
        .concurrency(concurrency)
        .start();
    let names = [NOOP.to_owned()];
    while store.next_due(&names).await.expect("next_due").is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(600),
            "the worker did not drain the store in 10 minutes"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    worker.shutdown(Duration::from_secs(5)).await;
    let stats = store.stats().await.expect("stats");
    assert_eq!(stats.count_state(CallState::Dead), 0, "a call died");
    assert_eq!(
        stats.count(NOOP, CallState::Succeeded),
        n,
        "calls not run: {stats:?}"
    );
    took
}

/// The drain's line: its rate and the writer's transactions (commits) per call.
fn emit_drain(round: usize, concurrency: usize, n: u64, took: Duration, commits: u64) {
    emit(&json!({
        "kind": "drain", "round": round, "concurrency": concurrency,
        "n": n, "secs": took.as_secs_f64(), "per_s": rate(n, took),
        "commits": commits, "calls_per_commit": n as f64 / commits.max(1) as f64,
    }));
}

/// `RETRY_BENCH_DRAIN=N`: only the drain, `rounds` times, of `N` calls stored in batches of
/// 1,000 (to profile the worker, or to compare two builds run one after the other).
fn drain_only(sizes: &Sizes, rt: &Runtime, n: u64) {
    for round in 0..sizes.rounds {
        let dir = Dir::new("drain");
        let (store, backend) = open_counted(&dir);
        rt.block_on(async {
            let mut i = 0;
            while i < n {
                let end = (i + 1_000).min(n);
                let calls = (i..end).map(|k| NewCall::new(NOOP, args_json(k))).collect();
                store.enqueue(calls).await.expect("a batch of calls");
                i = end;
            }
        });
        let before = backend.commits();
        let took = rt.block_on(drain(&store, n, sizes.concurrency));
        emit_drain(
            round,
            sizes.concurrency,
            n,
            took,
            backend.commits() - before,
        );
    }
}

/// `RETRY_BENCH_LATENCY=N`: a worker (the bench's concurrency) idle on a fresh store; `N`
/// calls enqueued one at a time, 20 ms apart, each timed from before its enqueue to the start
/// of its first attempt. Prints the median, p90 and p99.
fn latency(sizes: &Sizes, rt: &Runtime, n: usize) {
    let dir = Dir::new("latency");
    rt.block_on(async {
        let (store, _) = open_counted(&dir);
        durable::set_default_store(store.clone());
        let worker = Worker::builder(store.clone())
            .concurrency(sizes.concurrency)
            .start();
        tokio::time::sleep(Duration::from_millis(200)).await;
        for _ in 0..n {
            probe(now_ns()).await.expect("an enqueued call");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        worker.shutdown(Duration::from_secs(5)).await;
    });
    let mut seen = PROBED.lock().expect("the probes").clone();
    assert_eq!(seen.len(), n, "every probe ran");
    seen.sort_unstable();
    // The rank of quantile `q` (in hundredths) among the sorted delays, in milliseconds.
    let at = |q: usize| seen[(seen.len() - 1) * q / 100] as f64 / 1e6;
    emit(&json!({
        "kind": "latency", "n": n, "concurrency": sizes.concurrency,
        "median_ms": at(50), "p90_ms": at(90), "p99_ms": at(99),
    }));
}

// ---------------------------------------------------------------- 3. persist = "on_failure"

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Nanoseconds per call of `f` over `iters` calls.
fn time_sync<T>(iters: u64, f: impl Fn(u64) -> T) -> f64 {
    let start = Instant::now();
    for i in 0..iters {
        black_box(f(black_box(i)));
    }
    start.elapsed().as_nanos() as f64 / iters as f64
}

/// Nanoseconds per call of the async `f` over `iters` calls awaited in one `block_on`.
fn time_async<T, F: Future<Output = T>>(rt: &Runtime, iters: u64, f: impl Fn(u64) -> F) -> f64 {
    rt.block_on(async {
        let start = Instant::now();
        for i in 0..iters {
            black_box(f(black_box(i)).await);
        }
        start.elapsed().as_nanos() as f64 / iters as f64
    })
}

/// Interleaved rounds of the two contestants (the order alternating), the median of each.
fn interleaved(
    rounds: usize,
    mut a: impl FnMut() -> f64,
    mut b: impl FnMut() -> f64,
) -> (f64, f64) {
    // One warm-up round of each.
    a();
    b();
    let (mut xs, mut ys) = (Vec::new(), Vec::new());
    for r in 0..rounds {
        if r % 2 == 0 {
            xs.push(a());
            ys.push(b());
        } else {
            ys.push(b());
            xs.push(a());
        }
    }
    (median(xs), median(ys))
}

fn on_failure(sizes: &Sizes, rt: &Runtime) {
    let dir = Dir::new("on-failure");
    let store = rt.block_on(Store::open(&dir.url())).expect("a fresh store");
    durable::set_default_store(store.clone());
    // Both succeed at the first attempt, and nothing is written.
    assert_eq!(
        on_failure_sync(3).expect("no store error"),
        Outcome::Done(Ok(3))
    );
    assert_eq!(inline_sync(3), Ok(3));
    assert_eq!(
        rt.block_on(on_failure_async(3)).expect("no store error"),
        Outcome::Done(Ok(3))
    );
    assert_eq!(rt.block_on(inline_async(3)), Ok(3));

    let iters = sizes.loop_iters;
    let current = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("a current-thread runtime");
    let (persist, inline) = interleaved(
        sizes.loop_rounds,
        || time_sync(iters, on_failure_sync),
        || time_sync(iters, inline_sync),
    );
    emit_on_failure("sync", sizes, persist, inline);
    let (persist, inline) = interleaved(
        sizes.loop_rounds,
        || time_async(&current, iters, on_failure_async),
        || time_async(&current, iters, inline_async),
    );
    emit_on_failure("async", sizes, persist, inline);

    let written = rt.block_on(store.stats()).expect("stats").total();
    assert_eq!(
        written, 0,
        "a successful on_failure call wrote to the store"
    );
}

fn emit_on_failure(flavor: &str, sizes: &Sizes, persist: f64, inline: f64) {
    emit(&json!({
        "kind": "on_failure",
        "flavor": flavor,
        "rounds": sizes.loop_rounds,
        "iters": sizes.loop_iters,
        "on_failure_ns": persist,
        "inline_ns": inline,
        "ratio": persist / inline,
    }));
}

// ---------------------------------------------------------------- 4. memory

/// The Rust heap's live bytes, counted only in the memory child.
struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static LIVE: AtomicIsize = AtomicIsize::new(0);
static PEAK: AtomicIsize = AtomicIsize::new(0);

#[allow(clippy::cast_possible_wrap)] // no allocation reaches isize::MAX bytes
fn grew(by: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        let now = LIVE.fetch_add(by as isize, Ordering::Relaxed) + by as isize;
        PEAK.fetch_max(now, Ordering::Relaxed);
    }
}

#[allow(clippy::cast_possible_wrap)] // no allocation reaches isize::MAX bytes
fn shrank(by: usize) {
    if COUNTING.load(Ordering::Relaxed) {
        LIVE.fetch_sub(by as isize, Ordering::Relaxed);
    }
}

// SAFETY: every call is passed on to `System` unchanged; the counters only observe.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc`, passed on.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: the caller's contract for `dealloc`, passed on.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: the caller's contract for `realloc`, passed on.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            if new_size >= layout.size() {
                grew(new_size - layout.size());
            } else {
                shrank(layout.size() - new_size);
            }
        }
        p
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

const CHILD_STORE: &str = "RETRY_BENCH_DURABLE_CHILD_STORE";
const CHILD_N: &str = "RETRY_BENCH_DURABLE_CHILD_N";
const CHILD_CONCURRENCY: &str = "RETRY_BENCH_DURABLE_CHILD_CONCURRENCY";
const CHILD_DUE: &str = "RETRY_BENCH_DURABLE_CHILD_DUE";
const CHILD_FILLED: &str = "RETRY_BENCH_DURABLE_CHILD_FILLED";

/// A field of `/proc/self/status` in KiB (`VmRSS`, `RssAnon`, `VmHWM`).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    status
        .lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"))
}

/// Fills a fresh store with `stored` calls of the no-op for a child: `due` of them pending and
/// due now, the others succeeded an hour ago, each with its attempt in the history. Written
/// with SQL in transactions of 100,000 rows (`synchronous = OFF` for the filling alone), IDs
/// in time order as the store's own are, then checkpointed into the database file.
fn fill(dir: &Dir, stored: u64, due: u64, rt: &Runtime) {
    // The schema, as the store writes it.
    drop(rt.block_on(Store::open(&dir.url())).expect("a fresh store"));
    let mut conn = Connection::open(dir.db()).expect("the store file");
    conn.pragma_update(None, "synchronous", "OFF")
        .expect("synchronous = OFF while filling");
    let now = ms(SystemTime::now());
    let done = stored - due;
    let mut i = 0;
    while i < stored {
        let end = (i + 100_000).min(stored);
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .expect("BEGIN IMMEDIATE");
        {
            let mut call = tx
                .prepare(
                    "INSERT INTO calls (cid, function, args, state, attempts, created_at, \
                     started_at, first_attempt_at, last_attempt_at, next_due_at, fence, \
                     last_wait_ns, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7, ?7, ?8, ?5, 0, ?9)",
                )
                .expect("the insert");
            let mut attempt = tx
                .prepare(
                    "INSERT INTO call_attempts (cid, attempt, started_at, ended_at, worker, \
                     outcome) VALUES (?1, 1, ?2, ?3, 'bench-filler', 'succeeded')",
                )
                .expect("the history's insert");
            for k in i..end {
                // Spread over the hour before `now`, in order.
                let at = now - 3_600_000 + i64::try_from(k * 3_000_000 / stored).unwrap_or(0);
                let at_ms = u64::try_from(at).unwrap_or(0);
                let cid = CorrelationId::from_parts(at_ms, u128::from(k)).to_string();
                if k < done {
                    call.execute(params![
                        cid,
                        NOOP,
                        args_json(k),
                        "succeeded",
                        1,
                        at,
                        at,
                        None::<i64>,
                        at + 1
                    ])
                    .expect("a succeeded call");
                    attempt
                        .execute(params![cid, at, at + 1])
                        .expect("its attempt");
                } else {
                    call.execute(params![
                        cid,
                        NOOP,
                        args_json(k),
                        "pending",
                        0,
                        at,
                        None::<i64>,
                        at,
                        at
                    ])
                    .expect("a due call");
                }
            }
        }
        tx.commit().expect("COMMIT");
        i = end;
    }
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))
        .expect("a checkpoint");
}

/// The parent's side: for each store size, a child process drains the due calls of a store
/// filled for it; the child prints its own line.
fn memory(sizes: &Sizes, rt: &Runtime) {
    for stored in sizes.memory {
        let dir = Dir::new(&format!("memory-{stored}"));
        let filling = Instant::now();
        fill(&dir, stored, sizes.memory_due, rt);
        let filled_s = filling.elapsed().as_secs_f64();
        let status = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD_STORE, dir.url())
            .env(CHILD_N, stored.to_string())
            .env(CHILD_DUE, sizes.memory_due.to_string())
            .env(CHILD_CONCURRENCY, sizes.concurrency.to_string())
            .env(CHILD_FILLED, filled_s.to_string())
            .status()
            .expect("the memory child");
        assert!(status.success(), "the memory child failed: {status}");
    }
}

/// The child's side: open the store, start a worker, drain the `due` calls, report the peaks.
fn memory_child(url: &str, n: u64, due: u64, concurrency: usize, filled_s: f64) {
    COUNTING.store(true, Ordering::SeqCst);
    let rt = runtime();
    rt.block_on(async {
        let store = Store::open_existing(url).await.expect("the filled store");
        let stats = store.stats().await.expect("stats");
        assert_eq!(
            (
                stats.count(NOOP, CallState::Pending),
                stats.count(NOOP, CallState::Succeeded)
            ),
            (due, n - due),
            "the store is not filled"
        );
        let rss_before = status_kib("VmRSS");
        let anon_before = status_kib("RssAnon");
        let heap_before = LIVE.load(Ordering::SeqCst);
        PEAK.store(heap_before, Ordering::SeqCst);
        // SAFETY: SQLite's memory statistics, thread-safe reads (the reset only moves the
        // high-water mark down to the current use).
        let sqlite_before = unsafe {
            rusqlite::ffi::sqlite3_memory_highwater(1);
            rusqlite::ffi::sqlite3_memory_used()
        };
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let (mut rss, mut anon) = (0, 0);
                loop {
                    rss = rss.max(status_kib("VmRSS"));
                    anon = anon.max(status_kib("RssAnon"));
                    if stop.load(Ordering::Relaxed) {
                        return (rss, anon);
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
            })
        };
        let took = drain(&store, n, concurrency).await;
        stop.store(true, Ordering::Relaxed);
        let (rss_peak, anon_peak) = sampler.join().expect("the sampler");
        let heap_peak = PEAK.load(Ordering::SeqCst) - heap_before;
        // SAFETY: as above, a read.
        let sqlite_peak = unsafe { rusqlite::ffi::sqlite3_memory_highwater(0) };
        let rss_growth = rss_peak.saturating_sub(rss_before);
        emit(&json!({
            "kind": "memory",
            "n": n,
            "stored": n,
            "due": due,
            "fill_s": filled_s,
            "concurrency": concurrency,
            "drain_s": took.as_secs_f64(),
            "rss_before_kib": rss_before,
            "rss_peak_kib": rss_peak,
            "rss_growth_kib": rss_growth,
            "rss_growth_bytes_per_call": (rss_growth * 1024) as f64 / due as f64,
            "rss_anon_before_kib": anon_before,
            "rss_anon_growth_kib": anon_peak.saturating_sub(anon_before),
            "heap_peak_growth_bytes": heap_peak,
            "heap_peak_growth_bytes_per_call": heap_peak as f64 / due as f64,
            "vm_hwm_kib": status_kib("VmHWM"),
            "sqlite_heap_before_bytes": sqlite_before,
            "sqlite_heap_peak_growth_bytes": sqlite_peak - sqlite_before,
        }));
    });
}

// ---------------------------------------------------------------- main

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

fn main() {
    if let Ok(url) = std::env::var(CHILD_STORE) {
        let n = std::env::var(CHILD_N).expect("N").parse().expect("N");
        let c = std::env::var(CHILD_CONCURRENCY)
            .expect("concurrency")
            .parse()
            .expect("concurrency");
        let due = std::env::var(CHILD_DUE).expect("due").parse().expect("due");
        let filled = std::env::var(CHILD_FILLED)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        memory_child(&url, n, due, c, filled);
        return;
    }
    let sizes = Sizes::from_env();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(tmp).expect("CARGO_TARGET_TMPDIR");
    emit(&json!({
        "kind": "setup",
        "quick": sizes.quick,
        "dir": tmp.display().to_string(),
        "fs": fs_type(tmp),
        "sqlite": rusqlite::version(),
        "threads": std::thread::available_parallelism().map_or(1, usize::from),
    }));
    // Write out what the build left dirty, so the first commits do not wait behind it.
    let _ = Command::new("sync").status();
    let rt = runtime();
    if let Some(n) = std::env::var("RETRY_BENCH_DRAIN")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        drain_only(&sizes, &rt, n);
        return;
    }
    if let Some(n) = std::env::var("RETRY_BENCH_LATENCY")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        latency(&sizes, &rt, n);
        return;
    }
    // `RETRY_BENCH_MEMORY_ONLY=1`: only the memory figure.
    if std::env::var_os("RETRY_BENCH_MEMORY_ONLY").is_some_and(|v| v != "0") {
        memory(&sizes, &rt);
        return;
    }
    let plain = |round: usize| {
        let took = plain_loop(sizes.one);
        emit(&json!({
            "kind": "enqueue", "who": "plain", "round": round, "callers": 1,
            "n": sizes.one, "secs": took.as_secs_f64(), "per_s": rate(sizes.one, took),
        }));
    };
    // The plain loop first in even rounds, last in odd ones.
    for round in 0..sizes.rounds {
        if round % 2 == 0 {
            plain(round);
        }
        for (callers, n) in [(1, sizes.one), (sizes.callers, sizes.many)] {
            let dir = Dir::new(&format!("enqueue-{callers}"));
            let (took, store, backend, total) = rt.block_on(durable_enqueue(&dir, callers, n));
            emit(&json!({
                "kind": "enqueue", "who": "durable", "round": round, "callers": callers,
                "n": n, "secs": took.as_secs_f64(), "per_s": rate(n, took),
            }));
            if callers > 1 {
                let before = backend.commits();
                let took = rt.block_on(drain(&store, total, sizes.concurrency));
                emit_drain(
                    round,
                    sizes.concurrency,
                    total,
                    took,
                    backend.commits() - before,
                );
            }
        }
        if round % 2 == 1 {
            plain(round);
        }
    }
    on_failure(&sizes, &rt);
    memory(&sizes, &rt);
}
