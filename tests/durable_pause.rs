//! Pausing a function stops every worker of the store from taking its calls, at their next
//! claim; resuming lets them drain the rest. On SQLite (two workers, each with its own handle
//! on the file, so no in-process wake-up helps) and on PostgreSQL when
//! `RETRY_TEST_POSTGRES_URL` is set.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use retry_runtime::durable::{registered, CallState, NewCall, Store, Worker};
use retry_runtime::retry;

#[path = "common/pg.rs"]
mod pg;

/// When each attempt of `paused_job` started.
static STARTS: Mutex<Vec<Instant>> = Mutex::new(Vec::new());

/// The calls the test drains.
const CALLS: u32 = 300;

#[retry(mode = "durable", max = 1, delay = "5ms")]
async fn paused_job(n: u32) -> Result<u32, String> {
    STARTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .push(Instant::now());
    tokio::time::sleep(Duration::from_millis(40)).await;
    Ok(n)
}

fn starts() -> Vec<Instant> {
    STARTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
}

/// The tests share `STARTS`: one at a time.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Two workers on their own handles of the store at `url`, a long poll interval (so only the
/// pause's one-second check brings a resume in time), `CALLS` calls; the function is paused
/// through a third handle once some calls ran, and resumed two seconds later.
async fn pause_while_draining(url: &str) {
    let _serial = SERIAL.lock().await;
    STARTS
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clear();
    let name = registered()
        .into_iter()
        .find(|n| n.ends_with("paused_job"))
        .expect("registered")
        .to_owned();
    let operator = Store::open(url).await.unwrap();
    // Stored before the workers start: their first claim finds them (on SQLite, a worker of
    // another handle learns of new calls only at its next poll, 30 s here).
    let calls = (0..CALLS)
        .map(|n| NewCall::new(name.clone(), format!(r#"{{"n":{n}}}"#)))
        .collect();
    operator.enqueue(calls).await.unwrap();
    let workers: Vec<Worker> = {
        let mut workers = Vec::new();
        for i in 0..2 {
            let store = Store::open(url).await.unwrap();
            workers.push(
                Worker::builder(store)
                    .id(format!("pause-{i}"))
                    .concurrency(4)
                    .poll_interval(Duration::from_secs(30))
                    .retention(None)
                    .start(),
            );
        }
        workers
    };

    let deadline = Instant::now() + Duration::from_secs(20);
    while starts().len() < 20 {
        assert!(Instant::now() < deadline, "the workers started no calls");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert!(operator.pause(&name, "test").await.unwrap());
    let paused = Instant::now();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let during = starts();
    let late: Vec<Duration> = during
        .iter()
        .filter(|s| **s > paused + Duration::from_secs(1))
        .map(|s| s.duration_since(paused))
        .collect();
    assert!(
        late.is_empty(),
        "attempts started more than a second after the pause: {late:?}"
    );
    let started = during.len();
    assert!(
        started < CALLS as usize,
        "calls were left to run after the pause: {started} of {CALLS} started"
    );
    let stats = operator.stats().await.unwrap();
    assert_eq!(stats.count(&name, CallState::Running), 0, "{stats:?}");
    assert!(stats.count(&name, CallState::Pending) > 0, "{stats:?}");

    assert!(operator.resume(&name, "test").await.unwrap());
    let resumed = Instant::now();
    let deadline = resumed + Duration::from_secs(30);
    loop {
        let done = operator
            .stats()
            .await
            .unwrap()
            .count(&name, CallState::Succeeded);
        if done == u64::from(CALLS) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{done} of {CALLS} calls succeeded 30 s after the resume"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let first_after = starts()
        .into_iter()
        .filter(|s| *s > resumed)
        .min()
        .expect("calls started after the resume");
    let took = first_after.duration_since(resumed);
    println!("{started} of {CALLS} calls started before the pause took; resumed in {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "the first call after the resume started {took:?} later"
    );
    for worker in workers {
        worker.shutdown(Duration::from_secs(2)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_every_sqlite_worker_and_a_resume_drains_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!(
        "sqlite:{}?synchronous=normal",
        dir.path().join("calls.db").display()
    );
    pause_while_draining(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_stops_every_postgres_worker_and_a_resume_drains_the_rest() {
    let Some((url, _schema)) = pg::fresh_schema().await else {
        return;
    };
    pause_while_draining(&url).await;
}
