//! The durable mode beside the durable peers that build with cargo, in one run: `apalis` 1.0 on
//! SQLite (`apalis-sqlite`) and on PostgreSQL (`apalis-postgres`). Prints one
//! `peers-result: {json}` line per figure for `benches/run.sh` (`peers.jsonl`), which
//! `benches/report.py` turns into the "Durable peers" table of BENCHMARKS.md.
//!
//! Every contender gets the same no-op job (a `u64` argument, a body that returns at once), a
//! fresh store per measurement (a new SQLite file; a new PostgreSQL schema for ours, a new
//! database for apalis, whose tables live in a fixed `apalis` schema), and its documented
//! durability defaults:
//!
//! * SQLite: WAL and `synchronous = FULL` for every contender. Ours sets both itself. apalis's
//!   `SqliteStorage::setup` turns WAL on (kept: it is a property of the file) and runs
//!   `PRAGMA synchronous = OFF` on the one connection it runs on; that pool is closed before
//!   anything is measured, and every connection measured is either opened with
//!   `SqliteConnectOptions::synchronous(Full)` and `journal_mode(Wal)` (the producers) or, for
//!   the worker side, opened by apalis's own `SqliteStorage::connect_with_callback`, which sets
//!   no `synchronous`: SQLite's compiled default, FULL (libsqlite3-sys's bundled build does not
//!   change it). The setup line prints that default (2: FULL) and the file's journal mode.
//! * PostgreSQL: the server's settings (`fsync`, `synchronous_commit`, printed in the setup
//!   line; run.sh starts a server with PostgreSQL's defaults, fsync on).
//!
//! The apalis workers use the event-driven setups of the crates' READMEs: on SQLite the update
//! hook pool (`SqliteStorage::connect_with_callback`) with `Strategy::new().stream(listener
//! .ready_chunks(batch)).interval(500 ms)`; on PostgreSQL `with_pubsub()` (LISTEN/NOTIFY) with
//! `Strategy::new().interval(5 s)`; the rest is `Config::default()` (batch 10, results
//! persisted, tasks locked), and `WorkerBuilder::concurrency(32)`. Ours: `Worker::builder`,
//! concurrency 32, batch 64 (as `benches/durable_pg.rs`).
//!
//! Workloads, each for every contender of a store, medians of 3 rounds, the contenders' order
//! rotating from round to round:
//!
//! 1. `enqueue`: N jobs from 1 caller, and from 64 concurrent callers (tokio tasks of this
//!    process); each call returns once its job is committed (ours: `peers_noop(i).await` of a
//!    `#[retry(mode = "durable")]` function; apalis: `TaskSink::push` on a clone of the
//!    storage, one pool of the crate's default size), after 50 calls to warm up.
//! 2. `drain`: N jobs stored first, then 1 worker process (this binary in its child mode), on
//!    PostgreSQL also 4, open the store and say they are ready; timed from "go" until no
//!    unfinished job is left (polled every 10 ms), confirmed by a count of N finished.
//! 3. `latency`: a worker running in this process, idle; a job is enqueued, and the time from
//!    before the enqueue call to the start of its body is taken; S samples 5 ms apart, median.
//!
//! apalis-sqlite's drain slows down as jobs finish: its acknowledgement (`queries/task/ack.sql`,
//! `UPDATE Jobs ... FROM json_each(?1) WHERE Jobs.id = j.task_id AND Jobs.lock_by = ?2`) is
//! planned (`EXPLAIN QUERY PLAN`, SQLite 3.40) as a search of the `lock_by` index, which holds
//! every job the worker has finished so far, so each batch costs O(jobs done): 1,000 jobs
//! drained at about 1,500/s, 20,000 at under 100/s on the shared 2-core machine (several
//! minutes per round). That is the crate's own behaviour at its defaults, measured as is.
//!
//! N is 20,000 (`RETRY_BENCH_QUICK=1`: 1,000, 1 round, 20 latency samples). PostgreSQL needs
//! `RETRY_BENCH_POSTGRES_URL` (a server the bench may create schemas and databases on); without
//! it only SQLite is measured, and a `skipped` line says so. `RETRY_BENCH_PEERS_ONLY=sqlite` or
//! `=postgres` runs one store; `RETRY_BENCH_ROUNDS=R` runs R rounds instead of 3 (the setup
//! line says how many).

#![allow(clippy::cast_precision_loss)] // counts and durations shown as f64 rates

use core::hint::black_box;
use core::time::Duration;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::Instant;

use apalis::prelude::{
    BackendExt, BoxDynError, Strategy, TaskSink, WorkerBuilder, WorkerBuilderExt,
};
use apalis_postgres::{PgPool, PostgresStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use futures::StreamExt;
use retry_runtime::durable::{self, CallState, NewCall, Store, Worker};
use retry_runtime::retry;
use serde_json::{json, Value};
use tokio::runtime::Runtime;

// ---------------------------------------------------------------- the jobs

const NOOP: &str = "bench::peers_noop";

/// Succeeds at once (ours).
#[retry(mode = "durable", name = "bench::peers_noop", max = 3, delay = "10ms")]
async fn peers_noop(n: u64) -> Result<u64, String> {
    Ok(black_box(n))
}

/// Says when it starts (ours, the latency's job).
#[retry(mode = "durable", name = "bench::peers_mark", max = 3, delay = "10ms")]
async fn peers_mark(n: u64) -> Result<u64, String> {
    mark(n);
    Ok(n)
}

/// Succeeds at once (apalis).
#[allow(clippy::unused_async)] // apalis takes an async fn
async fn apalis_noop(n: u64) -> Result<(), BoxDynError> {
    black_box(n);
    Ok(())
}

/// Says when it starts (apalis, the latency's job).
#[allow(clippy::unused_async)] // apalis takes an async fn
async fn apalis_mark(n: u64) -> Result<(), BoxDynError> {
    mark(n);
    Ok(())
}

/// Where the latency's job bodies say they started.
static MARKS: Mutex<Option<mpsc::Sender<(u64, Instant)>>> = Mutex::new(None);

fn mark(n: u64) {
    let now = Instant::now();
    if let Some(tx) = MARKS.lock().expect("the marks").as_ref() {
        let _ = tx.send((n, now));
    }
}

// ---------------------------------------------------------------- sizes and output

struct Sizes {
    quick: bool,
    rounds: usize,
    n: u64,
    concurrency: usize,
    batch: usize,
    samples: usize,
}

impl Sizes {
    fn from_env() -> Sizes {
        let quick = std::env::var_os("RETRY_BENCH_QUICK").is_some_and(|v| v != "0");
        Sizes {
            quick,
            // RETRY_BENCH_ROUNDS=R: fewer (or more) rounds, when time is short.
            rounds: std::env::var("RETRY_BENCH_ROUNDS")
                .ok()
                .and_then(|r| r.parse().ok())
                .filter(|&r| r > 0)
                .unwrap_or(if quick { 1 } else { 3 }),
            n: if quick { 1_000 } else { 20_000 },
            concurrency: 32,
            batch: 64,
            samples: if quick { 20 } else { 200 },
        }
    }
}

fn emit(v: &Value) {
    println!("peers-result: {v}");
}

fn rate(n: u64, took: Duration) -> f64 {
    n as f64 / took.as_secs_f64()
}

const WARM_UP: u64 = 50;

// ---------------------------------------------------------------- contenders and stores

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Db {
    Sqlite,
    Postgres,
}

impl Db {
    fn name(self) -> &'static str {
        match self {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Retry,
    Apalis,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
struct Contender {
    who: Who,
    db: Db,
}

impl Contender {
    fn name(self) -> &'static str {
        match (self.who, self.db) {
            (Who::Retry, _) => "retry",
            (Who::Apalis, Db::Sqlite) => "apalis-sqlite",
            (Who::Apalis, Db::Postgres) => "apalis-postgres",
        }
    }

    fn parse(s: &str) -> Contender {
        let (who, db) = s.split_once(':').expect("who:db");
        Contender {
            who: if who == "retry" {
                Who::Retry
            } else {
                Who::Apalis
            },
            db: if db == "sqlite" {
                Db::Sqlite
            } else {
                Db::Postgres
            },
        }
    }

    fn tag(self) -> String {
        format!(
            "{}:{}",
            if self.who == Who::Retry {
                "retry"
            } else {
                "apalis"
            },
            self.db.name()
        )
    }
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

/// `url` with its database (the path) replaced by `db`.
fn with_database(url: &str, db: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let cut = base.rfind('/').expect("a database in the URL");
    let mut out = format!("{}/{db}", &base[..cut]);
    if let Some(q) = query {
        out.push('?');
        out.push_str(q);
    }
    out
}

/// A fresh store for one measurement: a SQLite file in a directory of its own, a schema (ours)
/// or a database (apalis) on PostgreSQL; removed by [`Fresh::remove`].
struct Fresh {
    contender: Contender,
    /// Ours: the store URL; apalis SQLite: the file's path; apalis PostgreSQL: the database URL.
    url: String,
    dir: Option<PathBuf>,
    /// PostgreSQL: the server's URL and the schema or database made.
    server: Option<(String, String)>,
}

impl Fresh {
    async fn new(contender: Contender, server: Option<&str>, what: &str) -> Fresh {
        let name = format!("retry_peers_{}_{what}", std::process::id());
        match contender.db {
            Db::Sqlite => {
                let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(&name);
                let _ = std::fs::remove_dir_all(&dir);
                std::fs::create_dir_all(&dir).expect("a directory for the store file");
                let file = dir.join("jobs.db");
                let url = match contender.who {
                    Who::Retry => format!("sqlite:{}", file.display()),
                    Who::Apalis => file.display().to_string(),
                };
                Fresh {
                    contender,
                    url,
                    dir: Some(dir),
                    server: None,
                }
            }
            Db::Postgres => {
                let server = server.expect("a PostgreSQL server");
                let client = connect(server).await;
                let url = match contender.who {
                    Who::Retry => {
                        client
                            .batch_execute(&format!(
                                "DROP SCHEMA IF EXISTS {name} CASCADE; CREATE SCHEMA {name}"
                            ))
                            .await
                            .expect("a fresh schema");
                        let sep = if server.contains('?') { '&' } else { '?' };
                        format!("{server}{sep}options=-csearch_path%3D{name}")
                    }
                    Who::Apalis => {
                        client
                            .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                            .await
                            .expect("no old database");
                        client
                            .batch_execute(&format!("CREATE DATABASE {name}"))
                            .await
                            .expect("a fresh database");
                        with_database(server, &name)
                    }
                };
                Fresh {
                    contender,
                    url,
                    dir: None,
                    server: Some((server.to_owned(), name)),
                }
            }
        }
    }

    async fn remove(self) {
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
        if let Some((server, name)) = &self.server {
            let client = connect(server).await;
            let sql = match self.contender.who {
                Who::Retry => format!("DROP SCHEMA IF EXISTS {name} CASCADE"),
                Who::Apalis => format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"),
            };
            client.batch_execute(&sql).await.expect("the store removed");
        }
    }
}

// ---------------------------------------------------------------- apalis's pools

/// A producer's pool on an apalis SQLite file: WAL, `synchronous = FULL`.
async fn apalis_sqlite_pool(path: &str) -> SqlitePool {
    let options = SqliteConnectOptions::from_str(path)
        .expect("a SQLite path")
        .create_if_missing(true)
        .pragma("journal_mode", "WAL")
        .pragma("synchronous", "FULL");
    SqlitePoolOptions::new()
        .connect_with(options)
        .await
        .expect("an apalis SQLite pool")
}

/// Runs apalis's migrations on a fresh store (its `setup`, on a pool closed afterwards: it
/// sets `synchronous = OFF` on its connection).
async fn apalis_setup(fresh: &Fresh) {
    match fresh.contender.db {
        Db::Sqlite => {
            let pool = apalis_sqlite_pool(&fresh.url).await;
            SqliteStorage::setup(&pool)
                .await
                .expect("apalis-sqlite setup");
            pool.close().await;
        }
        Db::Postgres => {
            let pool = PgPool::connect(&fresh.url).await.expect("an apalis pool");
            PostgresStorage::setup(&pool)
                .await
                .expect("apalis-postgres setup");
            pool.close().await;
        }
    }
}

/// Runs an apalis worker (the READMEs' event-driven setup, concurrency 32) on the store at
/// `url` until `stop` resolves. `latency` picks the job that marks its start.
async fn apalis_worker(
    db: Db,
    url: &str,
    id: &str,
    concurrency: usize,
    latency: bool,
    stop: tokio::sync::oneshot::Receiver<()>,
    ready: Option<tokio::sync::oneshot::Sender<SqliteOrPg>>,
) {
    let signal = async move {
        let _ = stop.await;
        Ok::<(), std::io::Error>(())
    };
    match db {
        Db::Sqlite => {
            let (pool, listener) =
                SqliteStorage::connect_with_callback(&format!("sqlite:{url}")).expect("a pool");
            let config = apalis_sqlite::Config::default();
            let strategy = Strategy::new()
                .stream(listener.ready_chunks(config.batch_size))
                .interval(Duration::from_millis(500));
            let backend = SqliteStorage::<u64>::new(&pool).poll_with_strategy(strategy);
            if let Some(tx) = ready {
                let _ = tx.send(SqliteOrPg::Sqlite(pool.clone()));
            }
            let builder = WorkerBuilder::new(id)
                .backend(backend)
                .concurrency(concurrency);
            if latency {
                builder.build(apalis_mark).run_until(signal).await
            } else {
                builder.build(apalis_noop).run_until(signal).await
            }
            .expect("the apalis worker");
        }
        Db::Postgres => {
            let pool = PgPool::connect(url).await.expect("an apalis pool");
            let backend = PostgresStorage::<u64>::new(&pool)
                .with_pubsub()
                .poll_with_strategy(Strategy::new().interval(Duration::from_secs(5)));
            if let Some(tx) = ready {
                let _ = tx.send(SqliteOrPg::Postgres(pool.clone()));
            }
            let builder = WorkerBuilder::new(id)
                .backend(backend)
                .concurrency(concurrency);
            if latency {
                builder.build(apalis_mark).run_until(signal).await
            } else {
                builder.build(apalis_noop).run_until(signal).await
            }
            .expect("the apalis worker");
        }
    }
}

/// A pool of either store, for pushing apalis jobs.
#[derive(Clone)]
enum SqliteOrPg {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

impl SqliteOrPg {
    async fn producer(fresh: &Fresh) -> SqliteOrPg {
        match fresh.contender.db {
            Db::Sqlite => SqliteOrPg::Sqlite(apalis_sqlite_pool(&fresh.url).await),
            Db::Postgres => {
                SqliteOrPg::Postgres(PgPool::connect(&fresh.url).await.expect("an apalis pool"))
            }
        }
    }

    /// One job, committed when this returns.
    async fn push(&self, n: u64) {
        match self {
            SqliteOrPg::Sqlite(pool) => SqliteStorage::<u64>::new(pool)
                .push(n)
                .await
                .expect("an apalis-sqlite push"),
            SqliteOrPg::Postgres(pool) => PostgresStorage::<u64>::new(pool)
                .push(n)
                .await
                .expect("an apalis-postgres push"),
        }
    }

    /// Jobs `from..to`, in one `push_stream`.
    async fn push_many(&self, from: u64, to: u64) {
        let jobs = futures::stream::iter(from..to);
        match self {
            SqliteOrPg::Sqlite(pool) => SqliteStorage::<u64>::new(pool)
                .push_stream(jobs)
                .await
                .expect("apalis-sqlite jobs"),
            SqliteOrPg::Postgres(pool) => PostgresStorage::<u64>::new(pool)
                .push_stream(jobs)
                .await
                .expect("apalis-postgres jobs"),
        }
    }

    async fn close(self) {
        match self {
            SqliteOrPg::Sqlite(pool) => pool.close().await,
            SqliteOrPg::Postgres(pool) => pool.close().await,
        }
    }
}

/// Jobs of apalis's store not finished yet, and finished (read with the workspace's own
/// clients: rusqlite, tokio-postgres).
async fn apalis_counts(fresh: &Fresh, only_any: bool) -> (u64, u64) {
    let (open, done) = if only_any {
        (
            "SELECT EXISTS (SELECT 1 FROM {t} WHERE done_at IS NULL)",
            "SELECT 0",
        )
    } else {
        (
            "SELECT count(*) FROM {t} WHERE done_at IS NULL",
            "SELECT count(*) FROM {t} WHERE done_at IS NOT NULL",
        )
    };
    match fresh.contender.db {
        Db::Sqlite => {
            let conn = rusqlite::Connection::open(&fresh.url).expect("the apalis file");
            let q = |sql: &str| -> u64 {
                conn.query_row(&sql.replace("{t}", "Jobs"), [], |r| r.get::<_, i64>(0))
                    .map_or(0, |v| u64::try_from(v).unwrap_or(0))
            };
            (q(open), q(done))
        }
        Db::Postgres => {
            let client = connect(&fresh.url).await;
            let q = |sql: String| {
                let client = &client;
                async move {
                    let row = client.query_one(&sql, &[]).await.expect("a count");
                    row.try_get::<_, i64>(0)
                        .or_else(|_| row.try_get::<_, i32>(0).map(i64::from))
                        .or_else(|_| row.try_get::<_, bool>(0).map(i64::from))
                        .map_or(0, |v| u64::try_from(v).unwrap_or(0))
                }
            };
            (
                q(open.replace("{t}", "apalis.jobs")).await,
                q(done.replace("{t}", "apalis.jobs")).await,
            )
        }
    }
}

// ---------------------------------------------------------------- 1. enqueue

fn enqueue(
    rt: &Runtime,
    server: Option<&str>,
    c: Contender,
    callers: usize,
    round: usize,
    s: &Sizes,
) {
    let n = s.n;
    let took = rt.block_on(async {
        let fresh = Fresh::new(c, server, &format!("enqueue_{callers}_r{round}")).await;
        let next = Arc::new(AtomicU64::new(0));
        let took = match c.who {
            Who::Retry => {
                let store = Store::open(&fresh.url).await.expect("a fresh store");
                durable::set_default_store(store.clone());
                for i in 0..WARM_UP {
                    peers_noop(n + i).await.expect("an enqueued call");
                }
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
                                peers_noop(i).await.expect("an enqueued call");
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
            }
            Who::Apalis => {
                apalis_setup(&fresh).await;
                let pool = SqliteOrPg::producer(&fresh).await;
                for i in 0..WARM_UP {
                    pool.push(n + i).await;
                }
                let start = Instant::now();
                let tasks: Vec<_> = (0..callers)
                    .map(|_| {
                        let next = Arc::clone(&next);
                        let pool = pool.clone();
                        tokio::spawn(async move {
                            loop {
                                let i = next.fetch_add(1, Ordering::Relaxed);
                                if i >= n {
                                    break;
                                }
                                pool.push(i).await;
                            }
                        })
                    })
                    .collect();
                for t in tasks {
                    t.await.expect("a caller");
                }
                let took = start.elapsed();
                pool.close().await;
                let (open, _) = apalis_counts(&fresh, false).await;
                assert_eq!(open, n + WARM_UP, "jobs missing");
                took
            }
        };
        fresh.remove().await;
        took
    });
    emit(&json!({
        "kind": "enqueue", "store": c.db.name(), "contender": c.name(), "round": round,
        "callers": callers, "n": n, "secs": took.as_secs_f64(), "per_s": rate(n, took),
    }));
}

// ---------------------------------------------------------------- 2. drain

const CHILD: &str = "RETRY_BENCH_PEERS_CHILD";
const CHILD_URL: &str = "RETRY_BENCH_PEERS_CHILD_URL";
const CHILD_ID: &str = "RETRY_BENCH_PEERS_CHILD_ID";

/// A worker process: it opens the store and prints `ready`, starts its worker when a line
/// arrives on its standard input, and shuts it down when that input closes.
struct WorkerProcess {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
}

impl WorkerProcess {
    fn spawn(c: Contender, url: &str, id: &str) -> WorkerProcess {
        let mut child = Command::new(std::env::current_exe().expect("this binary"))
            .env(CHILD, c.tag())
            .env(CHILD_URL, url)
            .env(CHILD_ID, id)
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

    fn expect_ready(&self) {
        loop {
            match self.lines.recv_timeout(Duration::from_secs(60)) {
                Ok(line) if line == "ready" => return,
                Ok(_) => {}
                Err(e) => panic!("no `ready` line from a worker process: {e}"),
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

    /// Closes its input (its worker shuts down) and waits up to 20 s for it to exit.
    fn stop(mut self) {
        self.stdin = None;
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                assert!(status.success(), "a worker process failed: {status}");
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        panic!("a worker process did not stop in 20 s");
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

/// The child's side: one worker of contender `c` on the store at `url`.
fn worker_child(c: Contender, url: &str) {
    let id = std::env::var(CHILD_ID).expect(CHILD_ID);
    let sizes = Sizes::from_env();
    let rt = runtime();
    let stdin_closed = || {
        let (tx, rx) = tokio::sync::oneshot::channel();
        std::thread::spawn(move || {
            let mut rest = Vec::new();
            let _ = std::io::stdin().read_to_end(&mut rest);
            let _ = tx.send(());
        });
        rx
    };
    match c.who {
        Who::Retry => {
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
                    .concurrency(sizes.concurrency)
                    .batch(sizes.batch)
                    .lease(Duration::from_secs(30))
                    .start()
            };
            let stop = stdin_closed();
            rt.block_on(async {
                let _ = stop.await;
                worker.shutdown(Duration::from_secs(1)).await;
            });
        }
        Who::Apalis => {
            println!("ready");
            let mut line = String::new();
            std::io::stdin().read_line(&mut line).expect("the go line");
            let stop = stdin_closed();
            rt.block_on(apalis_worker(
                c.db,
                url,
                &id,
                sizes.concurrency,
                false,
                stop,
                None,
            ));
        }
    }
}

/// Stores `n` no-op jobs of contender `c` in `fresh`.
async fn fill(fresh: &Fresh, n: u64) -> Option<Store> {
    match fresh.contender.who {
        Who::Retry => {
            let store = Store::open(&fresh.url).await.expect("a fresh store");
            let mut i = 0;
            while i < n {
                let end = (i + 1_000).min(n);
                let calls = (i..end)
                    .map(|k| NewCall::new(NOOP, format!("{{\"n\":{k}}}")))
                    .collect();
                store.enqueue(calls).await.expect("a batch of calls");
                i = end;
            }
            Some(store)
        }
        Who::Apalis => {
            apalis_setup(fresh).await;
            let pool = SqliteOrPg::producer(fresh).await;
            let mut i = 0;
            while i < n {
                let end = (i + 1_000).min(n);
                pool.push_many(i, end).await;
                i = end;
            }
            pool.close().await;
            let (open, _) = apalis_counts(fresh, false).await;
            assert_eq!(open, n, "jobs missing");
            None
        }
    }
}

fn drain(rt: &Runtime, server: Option<&str>, c: Contender, procs: usize, round: usize, s: &Sizes) {
    let n = s.n;
    let fresh = rt.block_on(Fresh::new(c, server, &format!("drain_{procs}_r{round}")));
    let store = rt.block_on(fill(&fresh, n));
    let mut workers: Vec<_> = (0..procs)
        .map(|i| WorkerProcess::spawn(c, &fresh.url, &format!("peers-{i}")))
        .collect();
    for w in &workers {
        w.expect_ready();
    }
    let start = Instant::now();
    for w in &mut workers {
        w.go();
    }
    let functions = [NOOP.to_owned()];
    let took = rt.block_on(async {
        loop {
            let empty = match &store {
                Some(store) => store
                    .next_due(&functions)
                    .await
                    .expect("next_due")
                    .is_none(),
                None => apalis_counts(&fresh, true).await.0 == 0,
            };
            if empty {
                let took = start.elapsed();
                let done = match &store {
                    Some(store) => {
                        let stats = store.stats().await.expect("stats");
                        assert_eq!(stats.count_state(CallState::Dead), 0, "a call died");
                        stats.count(NOOP, CallState::Succeeded)
                    }
                    None => apalis_counts(&fresh, false).await.1,
                };
                if done >= n {
                    break took;
                }
            }
            assert!(
                start.elapsed() < Duration::from_secs(600),
                "{} did not drain the store in 10 minutes",
                c.name()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    });
    for w in workers {
        w.stop();
    }
    drop(store);
    rt.block_on(fresh.remove());
    emit(&json!({
        "kind": "drain", "store": c.db.name(), "contender": c.name(), "round": round,
        "processes": procs, "concurrency": s.concurrency, "n": n,
        "secs": took.as_secs_f64(), "per_s": rate(n, took),
    }));
}

// ---------------------------------------------------------------- 3. latency

fn median(xs: &mut [f64]) -> f64 {
    xs.sort_by(f64::total_cmp);
    let m = xs.len() / 2;
    if xs.len() % 2 == 0 {
        f64::midpoint(xs[m - 1], xs[m])
    } else {
        xs[m]
    }
}

/// The `pct`-th percentile of sorted `xs` (nearest rank, rounded down).
fn percentile(xs: &[f64], pct: usize) -> f64 {
    xs[((xs.len() - 1) * pct / 100).min(xs.len() - 1)]
}

/// Waits for the mark of job `n`, skipping others.
fn wait_mark(rx: &mpsc::Receiver<(u64, Instant)>, n: u64) -> Instant {
    loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok((k, at)) if k == n => return at,
            Ok(_) => {}
            Err(e) => panic!("job {n} did not start in 30 s: {e}"),
        }
    }
}

fn latency(rt: &Runtime, server: Option<&str>, c: Contender, round: usize, s: &Sizes) {
    let (tx, rx) = mpsc::channel();
    *MARKS.lock().expect("the marks") = Some(tx);
    let fresh = rt.block_on(Fresh::new(c, server, &format!("latency_r{round}")));
    let mut samples = Vec::with_capacity(s.samples);
    let warm = 5_u64;
    match c.who {
        Who::Retry => {
            let store = rt.block_on(Store::open(&fresh.url)).expect("a fresh store");
            durable::set_default_store(store.clone());
            let worker = {
                let _enter = rt.enter();
                Worker::builder(store)
                    .id("peers-latency")
                    .concurrency(s.concurrency)
                    .batch(s.batch)
                    .start()
            };
            for i in 0..warm + s.samples as u64 {
                let t0 = Instant::now();
                rt.block_on(peers_mark(i)).expect("an enqueued call");
                let at = wait_mark(&rx, i);
                if i >= warm {
                    samples.push(at.duration_since(t0).as_secs_f64() * 1e3);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            rt.block_on(worker.shutdown(Duration::from_secs(1)));
        }
        Who::Apalis => {
            rt.block_on(apalis_setup(&fresh));
            let (stop_tx, stop_rx) = tokio::sync::oneshot::channel();
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            let url = fresh.url.clone();
            let concurrency = s.concurrency;
            let handle = rt.spawn(async move {
                apalis_worker(
                    c.db,
                    &url,
                    "peers-latency",
                    concurrency,
                    true,
                    stop_rx,
                    Some(ready_tx),
                )
                .await;
            });
            // The worker's own pool: on SQLite its update hook is what wakes the worker.
            let pool = rt.block_on(ready_rx).expect("the worker's pool");
            for i in 0..warm + s.samples as u64 {
                let t0 = Instant::now();
                rt.block_on(pool.push(i));
                let at = wait_mark(&rx, i);
                if i >= warm {
                    samples.push(at.duration_since(t0).as_secs_f64() * 1e3);
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            let _ = stop_tx.send(());
            rt.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(20), handle).await;
                pool.close().await;
            });
        }
    }
    *MARKS.lock().expect("the marks") = None;
    rt.block_on(fresh.remove());
    let med = median(&mut samples);
    emit(&json!({
        "kind": "latency", "store": c.db.name(), "contender": c.name(), "round": round,
        "samples": samples.len(), "median_ms": med,
        "p90_ms": percentile(&samples, 90), "max_ms": percentile(&samples, 100),
    }));
}

// ---------------------------------------------------------------- main

fn runtime() -> Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a multi-thread runtime")
}

/// The `synchronous` of a SQLite connection that sets none (what the connections of apalis's
/// update-hook pool get: SQLite's compiled default) and the journal mode of a file made by
/// [`apalis_sqlite_pool`] (kept by the file).
fn sqlite_settings(rt: &Runtime) -> (i64, String) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("retry_peers_{}_settings", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a directory");
    let path = dir.join("check.db");
    let path_s = path.display().to_string();
    rt.block_on(async {
        let pool = apalis_sqlite_pool(&path_s).await;
        pool.close().await;
    });
    let conn = rusqlite::Connection::open(&path).expect("the file");
    let journal: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .expect("journal_mode");
    let sync: i64 = conn
        .query_row("PRAGMA synchronous", [], |r| r.get(0))
        .expect("synchronous");
    let _ = std::fs::remove_dir_all(&dir);
    (sync, journal)
}

fn main() {
    if let Ok(tag) = std::env::var(CHILD) {
        let url = std::env::var(CHILD_URL).expect(CHILD_URL);
        worker_child(Contender::parse(&tag), &url);
        return;
    }
    let s = Sizes::from_env();
    let rt = runtime();
    let only = std::env::var("RETRY_BENCH_PEERS_ONLY").unwrap_or_default();
    let server = std::env::var("RETRY_BENCH_POSTGRES_URL")
        .ok()
        .filter(|v| !v.is_empty() && only != "sqlite");
    let (fsync, sync_commit, version) = match &server {
        Some(url) => rt.block_on(async {
            let client = connect(url).await;
            let show = |k: &'static str| {
                let client = &client;
                async move {
                    let row = client
                        .query_one(&format!("SHOW {k}"), &[])
                        .await
                        .expect("a setting");
                    row.get::<_, String>(0)
                }
            };
            (
                Some(show("fsync").await),
                Some(show("synchronous_commit").await),
                Some(show("server_version").await),
            )
        }),
        None => (None, None, None),
    };
    let (sqlite_sync, sqlite_journal) = sqlite_settings(&rt);
    emit(&json!({
        "kind": "setup", "quick": s.quick, "n": s.n, "rounds": s.rounds,
        "concurrency": s.concurrency, "batch": s.batch, "latency_samples": s.samples,
        "threads": std::thread::available_parallelism().map_or(1, usize::from),
        "sqlite": rusqlite::version(), "apalis": "1.0",
        "sqlite_default_synchronous": sqlite_sync, "sqlite_journal_mode": sqlite_journal,
        "postgres_version": version, "postgres_fsync": fsync,
        "postgres_synchronous_commit": sync_commit,
    }));
    let mut dbs = Vec::new();
    if only != "postgres" {
        dbs.push(Db::Sqlite);
    }
    if server.is_some() {
        dbs.push(Db::Postgres);
    } else {
        println!("peers: PostgreSQL skipped: RETRY_BENCH_POSTGRES_URL is not set");
        emit(&json!({ "kind": "skipped", "store": "postgres",
                      "reason": "RETRY_BENCH_POSTGRES_URL is not set" }));
    }
    let server = server.as_deref();
    for db in dbs {
        let mut contenders = vec![
            Contender {
                who: Who::Retry,
                db,
            },
            Contender {
                who: Who::Apalis,
                db,
            },
        ];
        let procs: &[usize] = if db == Db::Postgres { &[1, 4] } else { &[1] };
        for round in 0..s.rounds {
            for &c in &contenders {
                for callers in [1, 64] {
                    enqueue(&rt, server, c, callers, round, &s);
                }
            }
            for &c in &contenders {
                for &p in procs {
                    drain(&rt, server, c, p, round, &s);
                }
            }
            for &c in &contenders {
                latency(&rt, server, c, round, &s);
            }
            contenders.rotate_left(1);
        }
    }
}
