//! The durable store on SQLite: the backend-agnostic conformance suite on a fresh file each,
//! and what only SQLite has (files, schema versions, foreign databases, group commit).

use std::path::PathBuf;
use std::sync::Arc;

use retry_runtime::durable::{
    conformance, CallState, NewCall, SqliteBackend, Store, StoreError, Synchronous,
};

/// A fresh store file in its own temporary directory (kept alive by the returned guard).
async fn fresh() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

#[macro_use]
#[path = "common/conformance_cases.rs"]
mod conformance_cases;

/// One test per conformance case.
macro_rules! case {
    ($case:ident) => {
        #[tokio::test]
        async fn $case() {
            let (store, _dir) = fresh().await;
            conformance::$case(&store).await;
        }
    };
}

every_conformance_case!(case);

/// Every case of the conformance suite is in the list both backends run: a `pub async fn` added
/// to `conformance.rs` and not to `common/conformance_cases.rs` would otherwise never run.
#[test]
fn every_conformance_case_is_listed() {
    let suite = include_str!("../retry-runtime/src/durable/conformance.rs");
    let list = include_str!("common/conformance_cases.rs");
    let cases: Vec<&str> = suite
        .lines()
        .filter_map(|l| l.trim_start().strip_prefix("pub async fn "))
        .map(|rest| rest.split(['(', '<']).next().unwrap_or(rest).trim())
        .collect();
    assert!(cases.len() >= 10, "the suite's cases were found: {cases:?}");
    let listed: Vec<&str> = list
        .lines()
        .filter_map(|l| l.trim().strip_prefix("$run!("))
        .map(|rest| rest.trim_end_matches(");"))
        .collect();
    let missing: Vec<&&str> = cases.iter().filter(|c| !listed.contains(c)).collect();
    assert!(
        missing.is_empty(),
        "conformance cases missing from tests/common/conformance_cases.rs: {missing:?}"
    );
    let unknown: Vec<&&str> = listed.iter().filter(|c| !cases.contains(c)).collect();
    assert!(
        unknown.is_empty(),
        "listed but not in the suite: {unknown:?}"
    );
}

/// The in-memory store passes one case too (its reads go through the writer).
#[tokio::test]
async fn memory_store_runs_the_lifecycle() {
    let store = Store::open("sqlite::memory:").await.unwrap();
    conformance::lifecycle_retry_then_dead(&store).await;
}

fn temp_file(dir: &tempfile::TempDir, name: &str) -> PathBuf {
    dir.path().join(name)
}

#[tokio::test]
async fn reopening_a_file_keeps_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", temp_file(&dir, "calls.db").display());
    let call = NewCall::new("f", r#"{"x":[1,2]}"#);
    let cid = call.cid;
    {
        let store = Store::open(&url).await.unwrap();
        store.enqueue(vec![call]).await.unwrap();
    }
    let store = Store::open_existing(&url).await.unwrap();
    let record = store
        .get(cid)
        .await
        .unwrap()
        .expect("kept across reopening");
    assert_eq!(record.state, CallState::Pending);
    assert_eq!(record.args, r#"{"x":[1,2]}"#);
}

#[tokio::test]
async fn a_file_of_garbage_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "garbage.db");
    std::fs::write(&path, [0x5a_u8; 8192]).unwrap();
    let err = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("not a SQLite database"), "{err}");
    assert_eq!(
        std::fs::read(&path).unwrap(),
        vec![0x5a_u8; 8192],
        "left as it was"
    );
}

#[tokio::test]
async fn another_programs_database_is_not_a_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "foreign.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL);")
            .unwrap();
    }
    let err = Store::open(&format!("sqlite:{}", path.display()))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    assert!(err.to_string().contains("another program"), "{err}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "delete", "the foreign file was not switched to WAL");
    let calls: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name = 'calls'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(calls, 0, "no table was added");
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "newer.db");
    let url = format!("sqlite:{}", path.display());
    drop(Store::open(&url).await.unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch("PRAGMA user_version = 99;").unwrap();
    }
    let err = Store::open(&url).await.unwrap_err();
    assert_eq!(
        err,
        StoreError::NewerSchema {
            found: 99,
            supported: 4
        }
    );
}

#[tokio::test]
async fn bad_urls_are_refused() {
    for url in [
        "calls.db",
        "sqlite:",
        "sqlite:calls.db?synchronous=sometimes",
        "sqlite:calls.db?mode=rw",
        "mysql://localhost/calls",
    ] {
        let err = Store::open(url).await.unwrap_err();
        assert!(matches!(err, StoreError::BadUrl { .. }), "{url}: {err}");
        assert!(
            err.to_string().contains(url),
            "the message names the URL: {err}"
        );
        assert!(
            err.to_string().contains("sqlite::memory:"),
            "and the forms: {err}"
        );
    }
    // `postgres://` URLs: tests/durable_postgres.rs, and without the feature the unit tests
    // of `durable::store`.
}

#[tokio::test]
async fn open_existing_never_creates() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "missing.db");
    let err = Store::open_existing(&format!("sqlite:{}", path.display()))
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::NoStore { path: path.clone() });
    assert!(!path.exists());
}

#[tokio::test]
async fn synchronous_is_configurable() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "normal.db");
    let store = Store::open(&format!("sqlite:{}?synchronous=normal", path.display()))
        .await
        .unwrap();
    store.enqueue(vec![NewCall::new("f", "1")]).await.unwrap();
    assert_eq!(store.stats().await.unwrap().total(), 1);
}

#[tokio::test]
async fn concurrent_enqueues_share_commits() {
    let dir = tempfile::tempdir().unwrap();
    let backend = Arc::new(
        SqliteBackend::open_file(&temp_file(&dir, "group.db"), Synchronous::Full, true).unwrap(),
    );
    let store = Store::from_backend(backend.clone());
    let before = backend.commits();
    // Each enqueue is sent to the writer when it is called, before it is awaited, so the
    // writer finds many queued behind the first and commits them together.
    let now = std::time::SystemTime::now();
    let pending: Vec<_> = (0..64)
        .map(|i| {
            store
                .backend()
                .enqueue(vec![NewCall::new("f", format!("{i}"))], now)
        })
        .collect();
    for enqueue in pending {
        enqueue.await.unwrap();
    }
    assert_eq!(
        store.stats().await.unwrap().count("f", CallState::Pending),
        64
    );
    let commits = backend.commits() - before;
    assert!(commits >= 1);
    assert!(
        commits < 64,
        "64 enqueues took {commits} commits: no group commit"
    );
}

#[tokio::test]
async fn enqueue_wakes_a_waiting_worker() {
    let (store, _dir) = fresh().await;
    let waiter = store.clone();
    let woken = tokio::spawn(async move { waiter.notified().await });
    tokio::task::yield_now().await;
    store.enqueue(vec![NewCall::new("f", "1")]).await.unwrap();
    tokio::time::timeout(std::time::Duration::from_secs(10), woken)
        .await
        .expect("the worker was woken")
        .unwrap();
}

/// A store written by a build at schema version 2 (before paused functions): opening it
/// applies migration 3 in place, keeps its calls, and the store then pauses and resumes.
#[tokio::test]
async fn a_version_2_store_is_migrated_in_place_keeping_its_calls() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "v2.db");
    let call = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
    let cid = call.cid;
    {
        // As sqlite.rs does at version 2: migrations 1 and 2, then its pragmas.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("../retry-runtime/src/durable/schema.sql"))
            .unwrap();
        conn.execute_batch(include_str!(
            "../retry-runtime/src/durable/schema_2_state_updated.sql"
        ))
        .unwrap();
        conn.execute_batch(
            "PRAGMA application_id = 1381257817; PRAGMA user_version = 2; \
             PRAGMA journal_mode = WAL;",
        )
        .unwrap();
        conn.execute(
            "INSERT INTO calls (cid, function, args, state, attempts, created_at, next_due_at, \
             fence, last_wait_ns, updated_at) VALUES (?1, ?2, ?3, 'pending', 0, 1000, 1000, 0, 0, 1000)",
            rusqlite::params![cid.to_string(), call.function, call.args],
        )
        .unwrap();
        let tables: i64 = conn
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE name = 'paused_functions'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(tables, 0, "a version 2 store has no paused functions table");
    }
    let url = format!("sqlite:{}", path.display());
    let store = Store::open_existing(&url).await.unwrap();
    let record = store.get(cid).await.unwrap().expect("the call is kept");
    assert_eq!(record.state, CallState::Pending);
    assert_eq!(record.args, r#"{"to":"ops@example.com"}"#);
    assert!(store.pause("mail::send", "ops").await.unwrap());
    let lease = std::time::Duration::from_secs(30);
    let names = ["mail::send".to_owned()];
    assert!(store.claim("w", &names, 1, lease).await.unwrap().is_empty());
    assert!(store.resume("mail::send", "ops").await.unwrap());
    assert_eq!(store.claim("w", &names, 1, lease).await.unwrap().len(), 1);
    drop(store);
    let version: i64 = rusqlite::Connection::open(&path)
        .unwrap()
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
}

// ---------------------------------------------------------------- results and waiting

/// Enqueues a call of `function` and claims it: (its ID, the claim's fence).
async fn claimed(store: &Store, function: &str) -> (retry_runtime::CorrelationId, u64) {
    let call = NewCall::new(function, "{}");
    let cid = call.cid;
    store.enqueue(vec![call]).await.unwrap();
    let claims = store
        .claim(
            "w",
            &[function.to_owned()],
            1,
            std::time::Duration::from_secs(30),
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    (cid, claims[0].fence)
}

#[tokio::test]
async fn a_result_survives_reopening_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", temp_file(&dir, "calls.db").display());
    let cid = {
        let store = Store::open(&url).await.unwrap();
        let (cid, fence) = claimed(&store, "f").await;
        let started = std::time::SystemTime::now();
        assert!(store
            .complete_with_result(cid, fence, 1, started, Some(r#"{"total":200}"#.into()))
            .await
            .unwrap());
        cid
    };
    let store = Store::open_existing(&url).await.unwrap();
    let record = store.get(cid).await.unwrap().expect("kept");
    assert_eq!(record.result.as_deref(), Some(r#"{"total":200}"#));
    let value: serde_json::Value = store.wait_for(cid).await.unwrap();
    assert_eq!(value, serde_json::json!({ "total": 200 }));
}

/// SQLite sends nothing between processes (or two opens of one file): a waiter learns of a
/// call another open finished by its slow poll (500 ms).
#[tokio::test]
async fn a_waiter_sees_a_call_another_open_of_the_file_finished() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", temp_file(&dir, "calls.db").display());
    let waiter = Store::open(&url).await.unwrap();
    let other = Store::open(&url).await.unwrap();
    let (cid, fence) = claimed(&other, "f").await;
    let started = std::time::Instant::now();
    let (finished, ()) = tokio::join!(waiter.wait(cid), async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let now = std::time::SystemTime::now();
        assert!(other
            .complete_with_result(cid, fence, 1, now, Some("3".into()))
            .await
            .unwrap());
    });
    let took = started.elapsed();
    assert_eq!(
        finished.unwrap(),
        retry_runtime::durable::Finished::Succeeded {
            result: Some("3".into()),
            attempts: 1
        }
    );
    assert!(
        took < std::time::Duration::from_secs(3),
        "seen by the slow poll: {took:?}"
    );
}

/// A store file at `path` as the current release (schema version 3, commit 2057eb2) writes
/// it: its migrations 1 to 3 run as that build runs them (they are unchanged since), then its
/// pragmas; with `waiting` (2 attempts made) and `dead` stored, and `mail::digest` paused.
fn version_3_store(path: &std::path::Path, waiting: &NewCall, dead: &NewCall) {
    // As sqlite.rs does at version 3: migrations 1 to 3, then its pragmas.
    let conn = rusqlite::Connection::open(path).unwrap();
    for migration in [
        include_str!("../retry-runtime/src/durable/schema.sql"),
        include_str!("../retry-runtime/src/durable/schema_2_state_updated.sql"),
        include_str!("../retry-runtime/src/durable/schema_3_paused.sql"),
    ] {
        conn.execute_batch(migration).unwrap();
    }
    conn.execute_batch(
        "PRAGMA application_id = 1381257817; PRAGMA user_version = 3; \
         PRAGMA journal_mode = WAL;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO calls (cid, function, args, state, attempts, created_at, started_at, \
         first_attempt_at, last_attempt_at, next_due_at, last_error, fence, last_wait_ns, \
         updated_at) VALUES (?1, ?2, ?3, 'waiting', 2, 1000, 1000, 1000, 2000, 3000, \
         'timed out', 2, 5, 2000)",
        rusqlite::params![waiting.cid.to_string(), waiting.function, waiting.args],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO calls (cid, function, args, state, attempts, created_at, \
         last_error, dead_reason, fence, last_wait_ns, updated_at) \
         VALUES (?1, ?2, ?3, 'dead', 5, 1000, 'refused', 'exhausted', 5, 0, 4000)",
        rusqlite::params![dead.cid.to_string(), dead.function, dead.args],
    )
    .unwrap();
    conn.execute(
        "INSERT INTO paused_functions (function, paused_at, paused_by) \
         VALUES ('mail::digest', 1000, 'alice')",
        [],
    )
    .unwrap();
    let tables: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE name IN ('call_attempts', 'audit')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "a version 3 store has no history nor audit");
}

/// A store written by the current release (schema version 3, as of commit 2057eb2: its
/// migrations 1 to 3 run as that build runs them, unchanged since): opening it applies
/// migration 4 in place, keeps its calls and paused functions, and the attempts run after
/// are recorded, as are the operators' actions.
#[tokio::test]
async fn a_version_3_store_is_migrated_in_place_and_then_records_attempts() {
    let dir = tempfile::tempdir().unwrap();
    let path = temp_file(&dir, "v3.db");
    let waiting = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
    let dead = NewCall::new("mail::send", r#"{"to":"dead@example.com"}"#);
    version_3_store(&path, &waiting, &dead);
    let url = format!("sqlite:{}", path.display());
    let store = Store::open_existing(&url).await.unwrap();
    let r = store.get(waiting.cid).await.unwrap().expect("kept");
    assert_eq!(r.state, CallState::Waiting);
    assert_eq!((r.attempts, r.fence, r.last_wait_ns), (2, 2, 5));
    assert_eq!(r.last_error.as_deref(), Some("timed out"));
    assert_eq!(r.args, waiting.args);
    let r = store.get(dead.cid).await.unwrap().expect("kept");
    assert_eq!(r.state, CallState::Dead);
    assert_eq!(r.dead_reason.as_deref(), Some("exhausted"));
    assert_eq!(store.stats().await.unwrap().total(), 2);
    let paused = store.paused().await.unwrap();
    assert_eq!(
        (paused[0].function.as_str(), paused[0].paused_by.as_str()),
        ("mail::digest", "alice")
    );
    assert!(
        store.attempts(waiting.cid).await.unwrap().is_empty(),
        "attempts before the migration were not recorded"
    );

    // Attempts after it are.
    let names = ["mail::send".to_owned()];
    let lease = std::time::Duration::from_secs(30);
    let claims = store.claim("w1", &names, 1, lease).await.unwrap();
    assert_eq!(claims.len(), 1);
    let started = std::time::SystemTime::now();
    assert!(store
        .complete(waiting.cid, claims[0].fence, 3, started)
        .await
        .unwrap());
    let attempts = store.attempts(waiting.cid).await.unwrap();
    assert_eq!(attempts.len(), 1);
    assert_eq!(attempts[0].attempt, 1);
    assert_eq!(attempts[0].worker.as_deref(), Some("w1"));
    assert_eq!(
        attempts[0].outcome,
        retry_runtime::durable::AttemptOutcome::Succeeded
    );
    assert!(store.requeue(dead.cid).await.unwrap());
    store
        .record_audit(retry_runtime::durable::AuditEntry::new(
            "cli:ops",
            "requeue",
            dead.cid.to_string(),
            1,
        ))
        .await
        .unwrap();
    assert_eq!(
        store.audit(None, 10).await.unwrap()[0].entry.actor,
        "cli:ops"
    );
    drop(store);
    let db = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 4);
    let rows: i64 = db
        .query_row("SELECT count(*) FROM call_attempts", [], |r| r.get(0))
        .unwrap();
    assert_eq!(rows, 1);
}
