//! A durable call survives the death of the process running it: a child process stores 2,000
//! calls of a function that fails about half its attempts, runs a worker, and is killed with
//! SIGKILL at random moments, six times, and restarted. At the end every stored call has
//! succeeded or is a dead letter, none is missing, and the executions that ran twice (the
//! at-least-once delivery after a kill) are counted and reported.

use retry_runtime::durable::{CallState, Store};
use retry_runtime::CorrelationId;
use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const CALLS: u32 = 2_000;
const KILLS: usize = 6;

fn spawn_child(dir: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_crash-child"))
        .arg(dir)
        .arg(CALLS.to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the child starts")
}

fn kill(child: &mut Child) {
    // `Child::kill` is SIGKILL on Unix: no destructor, no flush, no lease released.
    child.kill().expect("the child is killed");
    child.wait().expect("the child is reaped");
}

fn lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

async fn unfinished(store: &Store) -> u64 {
    let stats = store.stats().await.expect("stats");
    [CallState::Pending, CallState::Waiting, CallState::Running]
        .into_iter()
        .map(|s| stats.count_state(s))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_workers_lose_no_call() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = spawn_child(dir.path());
    let t0 = Instant::now();
    // The first run stores the calls (a kill during it would only leave some to store later).
    while !dir.path().join("enqueued.done").exists() {
        assert!(
            t0.elapsed() < Duration::from_secs(120),
            "enqueueing took too long"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..KILLS {
        tokio::time::sleep(Duration::from_millis(fastrand::u64(150..700))).await;
        kill(&mut child);
        child = spawn_child(dir.path());
    }
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    let t1 = Instant::now();
    while unfinished(&store).await > 0 {
        assert!(
            t1.elapsed() < Duration::from_secs(300),
            "calls still unfinished after 300 s: {}",
            unfinished(&store).await
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    kill(&mut child);

    // Every call whose enqueue was acknowledged is in the store, finished.
    let enqueued: Vec<CorrelationId> = lines(&dir.path().join("enqueued.log"))
        .iter()
        .map(|l| l.split(' ').nth(1).unwrap().parse().unwrap())
        .collect();
    assert!(
        enqueued.len() >= CALLS as usize,
        "{} calls acknowledged",
        enqueued.len()
    );
    let (mut succeeded, mut dead, mut missing) = (0, 0, 0);
    for cid in &enqueued {
        match store.get(*cid).await.unwrap().map(|r| r.state) {
            Some(CallState::Succeeded) => succeeded += 1,
            Some(CallState::Dead) => dead += 1,
            Some(other) => panic!("call {cid} ended {other}"),
            None => missing += 1,
        }
    }
    assert_eq!(missing, 0, "acknowledged calls missing from the store");
    assert_eq!(succeeded + dead, enqueued.len());

    // Each succeeded call ran its successful execution at least once; more than once only
    // when a kill fell between the execution and its record (at-least-once delivery).
    let mut runs: HashMap<CorrelationId, usize> = HashMap::new();
    for l in lines(&dir.path().join("executions.log")) {
        let cid: CorrelationId = l.split(' ').next().unwrap().parse().unwrap();
        *runs.entry(cid).or_default() += 1;
    }
    for cid in &enqueued {
        if store.get(*cid).await.unwrap().unwrap().state == CallState::Succeeded {
            assert!(
                runs.get(cid).copied().unwrap_or(0) >= 1,
                "{cid} succeeded unseen"
            );
        }
    }
    let duplicates: usize = runs.values().map(|n| n - 1).sum();
    println!(
        "crash test: {} calls, {KILLS} kills, {succeeded} succeeded, {dead} dead, 0 missing, \
         {duplicates} duplicate executions",
        enqueued.len()
    );
}
