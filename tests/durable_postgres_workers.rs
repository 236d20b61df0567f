//! Many worker processes on one PostgreSQL store (`tests/support/pg_worker.rs` is the worker),
//! under the faults a deployment meets:
//!
//! - workers killed with SIGKILL and replaced: every acknowledged call ends succeeded or dead,
//!   none is missing, and no attempt of a call ran in two workers at once (the attempts' logged
//!   intervals never overlap; an attempt cut by the kill ends at the kill);
//! - every connection of the workers terminated by the server, several times;
//! - the pool exhausted: slow attempts, more of them at once than the pool has connections,
//!   and the table locked for a while so every statement waits holding its connection;
//! - a retry storm: every call fails for the first 1.5 s, then the service recovers;
//! - the server restarted (`pg_ctl restart -m fast`) under running workers.
//!
//! Each fault ends with nothing lost and nothing stuck. The assertions are on counts and
//! states only; the summary lines report the rest (attempts, duplicate executions, ...).
//!
//! The server comes from `RETRY_TEST_POSTGRES_URL` (`source .ci/postgres.sh` starts one and
//! sets it); without it the tests print that they are skipped and pass, except under CI (`CI`
//! set), where they fail. The restart also needs `RETRY_PG_DIR` and `RETRY_PG_BINDIR` in the
//! environment (the server's data directory and binaries); without them it says it is skipped.
//! The tests run one at a time (they share the server, and one restarts it).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use retry_runtime::durable::{CallRecord, CallState, Store};
use retry_runtime::CorrelationId;

/// The calls of the multi-process test.
const CALLS: u32 = 5_000;

/// The tests share the server (and one restarts it): one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(PoisonError::into_inner)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a runtime")
}

fn now_ns() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("after 1970")
        .as_nanos()
}

#[path = "common/pg.rs"]
mod pg;
use pg::{connect, server_url, unique, with_param};

/// The last lines of a file, for a failure message.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(20)..].join("\n")
}

/// What the workers' logs say about the attempts.
#[derive(Debug, Default)]
struct Attempts {
    /// Attempts started.
    started: usize,
    /// Attempts that failed (`err`).
    failed: usize,
    /// Attempts cut by a SIGKILL in the middle of the run (no `end` line).
    cut: usize,
    /// Attempts the worker abandoned (`dropped`: it lost the lease, or shut down).
    dropped: usize,
    /// Attempts still running in a worker when the test killed it at the end, though every
    /// call had finished (an attempt that outlived its lease).
    outlived: usize,
    /// Pairs of attempts of one call whose intervals overlap.
    overlaps: usize,
    /// The first few overlapping pairs, to show.
    examples: Vec<String>,
    /// Successful executions beyond the first of each call (at-least-once delivery).
    duplicate_successes: usize,
    /// Successful executions per call.
    successes: HashMap<CorrelationId, usize>,
}

/// One attempt, from its `start` and `end` lines.
struct Interval {
    worker: String,
    seq: u64,
    start: u128,
    end: Option<(u128, String)>,
}

/// A store in a fresh schema and the worker processes on it, their logs in a temporary
/// directory (kept when the test fails).
struct Cluster {
    /// The store's URL (its schema in the `search_path`); the workers add their application
    /// name, `APP_WORKER`.
    url: String,
    schema: String,
    /// The prefix of the workers' application names: the schema's name.
    app: String,
    dir: Option<tempfile::TempDir>,
    children: BTreeMap<String, Child>,
    /// When each worker was killed, and whether it was killed in the middle of the run.
    kills: HashMap<String, (u128, bool)>,
}

impl Cluster {
    async fn new(prefix: &str) -> Option<Cluster> {
        let server = server_url()?;
        let schema = unique(prefix);
        connect(&server)
            .await
            .batch_execute(&format!("CREATE SCHEMA {schema}"))
            .await
            .unwrap();
        let url = with_param(&server, &format!("options=-csearch_path%3D{schema}"));
        let dir = tempfile::Builder::new()
            .prefix("pg-workers")
            .tempdir()
            .unwrap();
        Some(Cluster {
            url,
            app: schema.clone(),
            schema,
            dir: Some(dir),
            children: BTreeMap::new(),
            kills: HashMap::new(),
        })
    }

    fn dir(&self) -> &Path {
        self.dir.as_ref().expect("the directory lives").path()
    }

    async fn store(&self) -> Store {
        Store::open(&self.url).await.expect("the store opens")
    }

    /// Starts the worker `name`: `pg-worker URL NAME LOGDIR ARGS...`.
    fn spawn(&mut self, name: &str, args: &[&str]) {
        let stderr = std::fs::File::create(self.dir().join(format!("{name}.stderr"))).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_pg-worker"))
            .arg(with_param(
                &self.url,
                &format!("application_name={}_{name}", self.app),
            ))
            .arg(name)
            .arg(self.dir())
            .args(args)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("the worker starts");
        self.children.insert(name.to_owned(), child);
    }

    /// SIGKILL (`Child::kill` on Unix): no destructor, no flush, no lease released.
    fn kill(&mut self, name: &str, mid_run: bool) {
        let mut child = self.children.remove(name).expect("a running worker");
        child.kill().expect("the worker is killed");
        child.wait().expect("the worker is reaped");
        self.kills.insert(name.to_owned(), (now_ns(), mid_run));
    }

    fn kill_all(&mut self) {
        let names: Vec<String> = self.children.keys().cloned().collect();
        for name in names {
            self.kill(&name, false);
        }
    }

    /// Every worker is still running: none died of a fault it should have survived.
    fn assert_alive(&mut self) {
        let dir = self.dir().to_owned();
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait().unwrap() {
                panic!(
                    "worker {name} exited ({status}); its stderr:\n{}",
                    tail(&dir.join(format!("{name}.stderr")))
                );
            }
        }
    }

    async fn wait_enqueued(&mut self) {
        let t0 = Instant::now();
        while !self.dir().join("enqueued.done").exists() {
            self.assert_alive();
            assert!(
                t0.elapsed() < Duration::from_secs(120),
                "enqueueing took over 120 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until no call is pending, waiting or running (store errors, e.g. during a
    /// restart, are waited out), checking meanwhile that the workers live.
    async fn wait_finished(&mut self, store: &Store, timeout: Duration) {
        let t0 = Instant::now();
        loop {
            let last = match store.stats().await {
                Ok(stats) => {
                    let unfinished: u64 =
                        [CallState::Pending, CallState::Waiting, CallState::Running]
                            .into_iter()
                            .map(|s| stats.count_state(s))
                            .sum();
                    if unfinished == 0 {
                        return;
                    }
                    format!("{unfinished} calls unfinished")
                }
                Err(e) => format!("the store failed: {e}"),
            };
            self.assert_alive();
            assert!(
                t0.elapsed() < timeout,
                "calls still unfinished after {timeout:?}: {last}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The calls whose enqueue the enqueuer saw acknowledged.
    fn acknowledged(&self) -> Vec<CorrelationId> {
        std::fs::read_to_string(self.dir().join("enqueued.log"))
            .unwrap_or_default()
            .lines()
            .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
            .collect()
    }

    /// Every acknowledged call is stored and finished: (calls, succeeded, dead).
    async fn check_calls(&self, store: &Store, at_least: u32) -> (usize, usize, usize) {
        let acked = self.acknowledged();
        assert!(
            acked.len() >= at_least as usize,
            "{} of {at_least} calls acknowledged",
            acked.len()
        );
        let (mut succeeded, mut dead, mut missing) = (0, 0, Vec::new());
        for cid in &acked {
            match get(store, *cid).await.map(|r| r.state) {
                Some(CallState::Succeeded) => succeeded += 1,
                Some(CallState::Dead) => dead += 1,
                Some(other) => panic!("call {cid} ended {other}"),
                None => missing.push(*cid),
            }
        }
        assert!(
            missing.is_empty(),
            "{} acknowledged calls missing from the store, e.g. {:?}",
            missing.len(),
            &missing[..missing.len().min(5)]
        );
        assert_eq!(succeeded + dead, acked.len());
        (acked.len(), succeeded, dead)
    }

    /// Reads every worker's log (after every worker was killed).
    fn attempts(&self) -> Attempts {
        assert!(self.children.is_empty(), "kill the workers first");
        let mut intervals: HashMap<(String, u64), (CorrelationId, Interval)> = HashMap::new();
        for entry in std::fs::read_dir(self.dir()).unwrap() {
            let path = entry.unwrap().path();
            let is_worker_log = path.extension().is_some_and(|e| e == "log")
                && path.file_stem().is_some_and(|s| s != "enqueued");
            if !is_worker_log {
                continue;
            }
            for line in std::fs::read_to_string(&path).unwrap().lines() {
                let f: Vec<&str> = line.split(' ').collect();
                let cid: CorrelationId = f[1].parse().unwrap();
                let (worker, seq, start) = (
                    f[2].to_owned(),
                    f[3].parse().unwrap(),
                    f[4].parse().unwrap(),
                );
                let interval = &mut intervals
                    .entry((worker.clone(), seq))
                    .or_insert_with(|| {
                        (
                            cid,
                            Interval {
                                worker,
                                seq,
                                start,
                                end: None,
                            },
                        )
                    })
                    .1;
                if f[0] == "end" {
                    interval.end = Some((f[5].parse().unwrap(), f[6].to_owned()));
                }
            }
        }
        let mut a = Attempts {
            started: intervals.len(),
            ..Attempts::default()
        };
        let mut per_call: HashMap<CorrelationId, Vec<(u128, u128, String)>> = HashMap::new();
        for (cid, i) in intervals.into_values() {
            let end = if let Some((end, outcome)) = &i.end {
                match outcome.as_str() {
                    "ok" => *a.successes.entry(cid).or_default() += 1,
                    "err" => a.failed += 1,
                    _ => a.dropped += 1,
                }
                *end
            } else {
                // No end: the worker was killed during the attempt, which ends there.
                let (killed, mid_run) = self.kills[&i.worker];
                if mid_run {
                    a.cut += 1;
                } else {
                    a.outlived += 1;
                }
                killed
            };
            let label = format!("{}#{}", i.worker, i.seq);
            per_call.entry(cid).or_default().push((i.start, end, label));
        }
        for (cid, mut runs) in per_call {
            runs.sort();
            for (k, (_, end, first)) in runs.iter().enumerate() {
                for (start, _, second) in &runs[k + 1..] {
                    if start >= end {
                        break;
                    }
                    a.overlaps += 1;
                    if a.examples.len() < 5 {
                        a.examples.push(format!(
                            "{cid}: {first} and {second} overlap by {} µs",
                            (end - start) / 1_000
                        ));
                    }
                }
            }
        }
        a.duplicate_successes = a.successes.values().map(|n| n - 1).sum();
        a
    }

    /// The common end of every test: every worker killed, every acknowledged call finished
    /// and stored, every succeeded call seen succeeding; prints the summary line.
    async fn finish(
        &mut self,
        what: &str,
        store: &Store,
        at_least: u32,
    ) -> (usize, usize, Attempts) {
        self.kill_all();
        let (calls, succeeded, dead) = self.check_calls(store, at_least).await;
        let a = self.attempts();
        for cid in self.acknowledged() {
            if get(store, cid).await.map(|r| r.state) == Some(CallState::Succeeded) {
                assert!(a.successes.contains_key(&cid), "{cid} succeeded unseen");
            }
        }
        let kills = self.kills.values().filter(|(_, mid_run)| *mid_run).count();
        println!(
            "{what}: {calls} calls, {succeeded} succeeded, {dead} dead, 0 missing, {kills} kills, \
             {} attempts ({} failed, {} cut by kills, {} abandoned by their worker, {} outlived \
             every call), {} overlaps, {} duplicate successful executions",
            a.started, a.failed, a.cut, a.dropped, a.outlived, a.overlaps, a.duplicate_successes
        );
        for example in &a.examples {
            println!("{what}: overlap: {example}");
        }
        (succeeded, dead, a)
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.kill_all();
        if std::thread::panicking() {
            if let Some(dir) = self.dir.take() {
                eprintln!("the workers' logs are kept in {}", dir.keep().display());
            }
        }
    }
}

/// A call's record; store errors (a restart, a terminated connection) are retried.
async fn get(store: &Store, cid: CorrelationId) -> Option<CallRecord> {
    let mut tries = 0;
    loop {
        match store.get(cid).await {
            Ok(record) => return record,
            Err(e) => {
                tries += 1;
                assert!(tries < 100, "the store keeps failing: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[test]
fn killed_worker_processes_lose_no_call_and_never_overlap() {
    let _serial = serial();
    runtime().block_on(async {
        let Some(mut c) = Cluster::new("pgw_multi").await else {
            return;
        };
        let store = c.store().await;
        let calls = CALLS.to_string();
        // The enqueuer stores them all, then becomes the first of the 4 workers.
        c.spawn("w1", &["enqueue", &calls]);
        let t0 = Instant::now();
        c.wait_enqueued().await;
        let enqueued_in = t0.elapsed();
        let t1 = Instant::now();
        for name in ["w2", "w3", "w4"] {
            c.spawn(name, &[]);
        }
        tokio::time::sleep(Duration::from_millis(fastrand::u64(500..2_000))).await;
        let mut victims: Vec<String> = c.children.keys().cloned().collect();
        fastrand::shuffle(&mut victims);
        for name in &victims[..2] {
            c.kill(name, true);
        }
        c.spawn("w5", &[]);
        c.spawn("w6", &[]);
        c.wait_finished(&store, Duration::from_secs(300)).await;
        println!(
            "pg workers: enqueued in {enqueued_in:.1?}, run in {:.1?}",
            t1.elapsed()
        );
        let (_, _, a) = c.finish("pg workers", &store, CALLS).await;
        assert_eq!(
            a.overlaps, 0,
            "attempts of one call ran in two workers at once: {:?}",
            a.examples
        );
    });
}

#[test]
fn terminated_connections_lose_no_call() {
    let _serial = serial();
    runtime().block_on(async {
        let Some(mut c) = Cluster::new("pgw_term").await else {
            return;
        };
        let store = c.store().await;
        c.spawn("w1", &["enqueue", "400"]);
        c.spawn("w2", &[]);
        c.wait_enqueued().await;
        let admin = connect(&c.url).await;
        let mut terminated = Vec::new();
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let n: i64 = admin
                .query_one(
                    "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                     WHERE datname = current_database() AND pid <> pg_backend_pid() \
                       AND starts_with(application_name, $1)) AS t",
                    &[&c.app],
                )
                .await
                .unwrap()
                .get(0);
            terminated.push(n);
        }
        assert!(
            terminated.iter().sum::<i64>() > 0,
            "no worker connection was terminated"
        );
        c.wait_finished(&store, Duration::from_secs(120)).await;
        c.assert_alive();
        c.finish("pg faults: terminated connections", &store, 400)
            .await;
        println!("pg faults: terminated connections: terminated per round {terminated:?}");
    });
}

#[test]
fn an_exhausted_pool_loses_no_call() {
    let _serial = serial();
    runtime().block_on(async {
        let Some(mut c) = Cluster::new("pgw_pool").await else {
            return;
        };
        let store = c.store().await;
        // 32 attempts of 300 ms at once per process, 16 connections per pool.
        c.spawn(
            "w1",
            &["enqueue", "640", "--job", "slow", "--concurrency", "32"],
        );
        c.spawn("w2", &["--job", "slow", "--concurrency", "32"]);
        c.wait_enqueued().await;
        // Both workers busy (the enqueuer has just started working).
        tokio::time::sleep(Duration::from_millis(400)).await;
        // An attempt holds no connection while it sleeps, so slow attempts alone leave the pool
        // some; the table locked for 2 s makes every claim, renewal and outcome wait on the
        // server while holding its connection: the pools run dry and the operations queue.
        let mut admin = connect(&c.url).await;
        let tx = admin.transaction().await.unwrap();
        tx.batch_execute(&format!(
            "LOCK TABLE {}.retry_calls IN EXCLUSIVE MODE",
            c.schema
        ))
        .await
        .unwrap();
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        let waiting: Vec<String> = connect(&c.url)
            .await
            .query(
                "SELECT application_name, count(*) FROM pg_stat_activity \
                 WHERE starts_with(application_name, $1) AND wait_event_type = 'Lock' \
                 GROUP BY 1 ORDER BY 1",
                &[&c.app],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| {
                let app: String = r.get(0);
                let n: i64 = r.get(1);
                format!("{} {n}", &app[c.app.len() + 1..])
            })
            .collect();
        tokio::time::sleep(Duration::from_millis(500)).await;
        tx.commit().await.unwrap();
        c.wait_finished(&store, Duration::from_secs(120)).await;
        c.assert_alive();
        let (_, dead, _) = c.finish("pg faults: exhausted pool", &store, 640).await;
        println!(
            "pg faults: exhausted pool: statements waiting on the lock, per worker (pools of 16): \
             {waiting:?}"
        );
        assert_eq!(dead, 0, "a slow attempt succeeds");
    });
}

#[test]
fn a_retry_storm_ends_succeeded() {
    let _serial = serial();
    runtime().block_on(async {
        let Some(mut c) = Cluster::new("pgw_storm").await else {
            return;
        };
        let store = c.store().await;
        c.spawn("w1", &["enqueue", "500", "--job", "storm"]);
        c.spawn("w2", &["--job", "storm"]);
        c.wait_enqueued().await;
        // Every attempt fails until the downstream service "recovers".
        tokio::time::sleep(Duration::from_millis(1_500)).await;
        std::fs::write(c.dir().join("recovered"), b"").unwrap();
        c.wait_finished(&store, Duration::from_secs(120)).await;
        c.assert_alive();
        let (succeeded, dead, a) = c.finish("pg faults: retry storm", &store, 500).await;
        assert!(a.failed > 0, "the storm failed no attempt");
        assert_eq!((succeeded, dead), (500, 0), "every call recovers");
    });
}

/// The command running `args` as the server's user (`retry_pg_as_server_user` of
/// `.ci/postgres.sh`: the `postgres` user when we are root).
fn as_server_user(args: &[&str]) -> Command {
    let uid = Command::new("id").arg("-u").output().expect("`id -u` runs");
    if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).args(args);
        cmd
    } else {
        let mut cmd = Command::new(args[0]);
        cmd.args(&args[1..]);
        cmd
    }
}

#[test]
fn a_server_restart_loses_no_call() {
    let _serial = serial();
    runtime().block_on(async {
        let (Ok(pg_dir), Ok(bindir)) = (
            std::env::var("RETRY_PG_DIR"),
            std::env::var("RETRY_PG_BINDIR"),
        ) else {
            if server_url().is_some() {
                // Under CI, .ci/postgres.sh exports them: their absence is a failure there.
                assert!(
                    std::env::var("CI").is_err(),
                    "RETRY_PG_DIR and RETRY_PG_BINDIR are not set under CI: the server restart \
                     would go untested"
                );
                eprintln!(
                    "SERVER RESTART NOT TESTED: RETRY_PG_DIR and RETRY_PG_BINDIR (the server's \
                     directory and binaries, from .ci/postgres.sh) are not in the environment"
                );
                println!(
                    "pg faults: server restart: NOT TESTED (RETRY_PG_DIR/RETRY_PG_BINDIR unset)"
                );
            }
            return;
        };
        let Some(mut c) = Cluster::new("pgw_restart").await else {
            return;
        };
        let store = c.store().await;
        c.spawn("w1", &["enqueue", "600"]);
        c.spawn("w2", &[]);
        c.wait_enqueued().await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        let pg_ctl: PathBuf = [bindir.as_str(), "pg_ctl"].iter().collect();
        let data: PathBuf = [pg_dir.as_str(), "data"].iter().collect();
        // Its log where `.ci/postgres.sh` put it: without `-l` the server would keep our
        // pipes open.
        let log: PathBuf = [pg_dir.as_str(), "server.log"].iter().collect();
        let restart = as_server_user(&[
            pg_ctl.to_str().unwrap(),
            "-D",
            data.to_str().unwrap(),
            "-l",
            log.to_str().unwrap(),
            "-m",
            "fast",
            "restart",
            "-w",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("pg_ctl runs");
        assert!(
            restart.status.success(),
            "pg_ctl restart failed ({}): {}{}",
            restart.status,
            String::from_utf8_lossy(&restart.stdout),
            String::from_utf8_lossy(&restart.stderr)
        );
        c.wait_finished(&store, Duration::from_secs(120)).await;
        c.assert_alive();
        c.finish("pg faults: server restart", &store, 600).await;
    });
}
