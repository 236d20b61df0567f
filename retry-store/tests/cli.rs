//! The `retry-store` binary against stores filled through `retry_runtime::durable::Store`.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, SystemTime};

use retry_runtime::durable::{CallState, NewCall, Progress, Store};
use retry_runtime::CorrelationId;

#[path = "../../tests/common/pg.rs"]
mod pg;

fn retry_store(url: &str, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_retry-store"))
        .env_remove("RETRY_STORE")
        .arg("--store")
        .arg(url)
        .args(args)
        .output()
        .expect("the binary runs")
}

fn stdout(out: &Output) -> String {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Asserts a failure with one line on stderr containing `message`.
fn fails_with(out: &Output, message: &str) {
    assert!(!out.status.success(), "expected a failure");
    let err = String::from_utf8(out.stderr.clone()).unwrap();
    assert!(err.contains(message), "stderr {err:?} lacks {message:?}");
    assert_eq!(err.trim_end().lines().count(), 1, "one line: {err:?}");
    assert!(out.stdout.is_empty());
}

fn json(out: &Output) -> serde_json::Value {
    serde_json::from_str(&stdout(out)).expect("--json prints JSON")
}

struct Filled {
    _dir: tempfile::TempDir,
    url: String,
    pending: CorrelationId,
    dead: CorrelationId,
    dead_other: CorrelationId,
    succeeded: CorrelationId,
}

/// A store with a pending `mail::send`, a succeeded `mail::send`, a dead `billing::charge`
/// (last error "card declined") and a dead `mail::send`.
async fn filled() -> Filled {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    let pending = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
    let succeeded = NewCall::new("mail::send", r#"{"to":"dev@example.com"}"#);
    let dead = NewCall::new("billing::charge", r#"{"invoice":42}"#);
    let dead_other = NewCall::new("mail::send", r#"{"to":"x@example.com"}"#);
    let ids = (pending.cid, succeeded.cid, dead.cid, dead_other.cid);
    store
        .enqueue(vec![succeeded, dead, dead_other])
        .await
        .unwrap();
    let fs = ["mail::send".to_string(), "billing::charge".to_string()];
    let claims = store
        .claim("w", &fs, 10, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claims.len(), 3);
    let now = SystemTime::now();
    for c in claims {
        let cid = c.record.cid;
        if cid == ids.1 {
            assert!(store.complete(cid, c.fence, 1, now).await.unwrap());
        } else {
            let progress = Progress {
                attempts: 4,
                started_at: Some(now),
                last_wait_ns: 0,
                attempt_started: now,
            };
            let error = if cid == ids.2 {
                "card declined"
            } else {
                "smtp down"
            };
            let buried = store
                .bury(
                    cid,
                    c.fence,
                    Some(progress),
                    "exhausted".into(),
                    Some(error.into()),
                )
                .await
                .unwrap();
            assert!(buried);
        }
    }
    store.enqueue(vec![pending]).await.unwrap();
    Filled {
        _dir: dir,
        url,
        pending: ids.0,
        succeeded: ids.1,
        dead: ids.2,
        dead_other: ids.3,
    }
}

async fn state(url: &str, cid: CorrelationId) -> Option<CallState> {
    let store = Store::open(url).await.unwrap();
    store.get(cid).await.unwrap().map(|r| r.state)
}

#[tokio::test]
async fn stats_table_and_json() {
    let f = filled().await;
    let table = stdout(&retry_store(&f.url, &["stats"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(lines[0].starts_with("FUNCTION"), "{table}");
    assert!(lines[0].contains("PENDING") && lines[0].contains("DEAD"));
    let mail = lines.iter().find(|l| l.starts_with("mail::send")).unwrap();
    let cells: Vec<&str> = mail.split_whitespace().collect();
    // FUNCTION PENDING RUNNING WAITING SUCCEEDED DEAD CANCELLED TOTAL
    assert_eq!(cells, ["mail::send", "1", "0", "0", "1", "1", "0", "3"]);
    assert!(lines.last().unwrap().ends_with(" 4"), "total row: {table}");

    assert!(
        !table.contains("unclaimed"),
        "calls stored just now are not marked: {table}"
    );

    let v = json(&retry_store(&f.url, &["stats", "--json"]));
    assert_eq!(v["total"], 4);
    assert_eq!(v["unclaimed"], serde_json::json!([]));
    assert_eq!(
        v["rows"].as_array().unwrap().len(),
        4,
        "one row per (function, state)"
    );
}

#[tokio::test]
async fn list_with_filters() {
    let f = filled().await;
    let table = stdout(&retry_store(&f.url, &["list"]));
    assert!(table.starts_with("CID"), "{table}");
    assert!(table.contains(&f.pending.to_string()));
    assert!(table.contains("card declined"));
    assert!(table.ends_with("4 calls\n"), "{table}");

    let v = json(&retry_store(&f.url, &["list", "--state", "dead", "--json"]));
    let cids: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["cid"].as_str().unwrap())
        .collect();
    assert_eq!(cids.len(), 2);
    assert!(cids.contains(&f.dead.to_string().as_str()));

    let v = json(&retry_store(
        &f.url,
        &[
            "--json",
            "list",
            "--state",
            "dead",
            "--function",
            "billing::charge",
        ],
    ));
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["last_error"], "card declined");
    assert_eq!(v[0]["state"], "dead");
    assert_eq!(v[0]["args"]["invoice"], 42, "arguments as a JSON value");

    let v = json(&retry_store(
        &f.url,
        &["list", "--older-than", "1h", "--json"],
    ));
    assert_eq!(
        v.as_array().unwrap().len(),
        0,
        "everything changed just now"
    );
    let v = json(&retry_store(&f.url, &["list", "--limit", "2", "--json"]));
    assert_eq!(v.as_array().unwrap().len(), 2);

    // A usage error: clap's message and exit status 2.
    let out = retry_store(&f.url, &["list", "--state", "finished"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown call state `finished`"));
}

#[tokio::test]
async fn show_prints_the_whole_record() {
    let f = filled().await;
    let out = stdout(&retry_store(&f.url, &["show", &f.dead.to_string()]));
    assert!(out.contains(&f.dead.to_string()));
    assert!(out.contains("billing::charge"));
    assert!(out.contains("card declined"));
    assert!(out.contains("exhausted"));
    assert!(
        out.contains("\"invoice\": 42"),
        "arguments pretty-printed: {out}"
    );

    let v = json(&retry_store(
        &f.url,
        &["show", &f.dead.to_string(), "--json"],
    ));
    assert_eq!(v["cid"], f.dead.to_string());
    assert_eq!(v["attempts"], 4);
    assert_eq!(
        v["args"],
        serde_json::json!({ "invoice": 42 }),
        "the arguments are a JSON value, not JSON text in a string"
    );
    assert_eq!(v["dead_reason"], "exhausted");
}

#[tokio::test]
async fn requeue_one_and_all_dead() {
    let f = filled().await;
    let out = stdout(&retry_store(&f.url, &["requeue", &f.dead.to_string()]));
    assert_eq!(out, format!("requeued {}\n", f.dead));
    assert_eq!(state(&f.url, f.dead).await, Some(CallState::Pending));

    fails_with(
        &retry_store(&f.url, &["requeue", &f.succeeded.to_string()]),
        "only dead or cancelled calls can be requeued",
    );

    let v = json(&retry_store(
        &f.url,
        &[
            "requeue",
            "--dead",
            "--function",
            "billing::charge",
            "--json",
        ],
    ));
    assert_eq!(
        v,
        serde_json::json!({ "command": "requeue", "count": 0, "cid": null }),
        "billing's dead call was requeued already"
    );
    assert_eq!(state(&f.url, f.dead_other).await, Some(CallState::Dead));
    let out = stdout(&retry_store(&f.url, &["requeue", "--dead"]));
    assert_eq!(out, "requeued 1 dead calls\n");
    assert_eq!(state(&f.url, f.dead_other).await, Some(CallState::Pending));
}

#[tokio::test]
async fn every_write_command_answers_in_one_shape() {
    let f = filled().await;
    let one = json(&retry_store(
        &f.url,
        &["--json", "requeue", &f.dead.to_string()],
    ));
    assert_eq!(
        one,
        serde_json::json!({ "command": "requeue", "count": 1, "cid": f.dead.to_string() })
    );
    let answers = [
        json(&retry_store(&f.url, &["--json", "requeue", "--dead"])),
        json(&retry_store(
            &f.url,
            &["--json", "cancel", &f.pending.to_string()],
        )),
        json(&retry_store(
            &f.url,
            &[
                "--json",
                "purge",
                "--state",
                "succeeded",
                "--older-than",
                "0s",
            ],
        )),
    ];
    for v in answers {
        let mut keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        keys.sort();
        assert_eq!(keys, ["cid", "command", "count"], "{v}");
    }
}

#[tokio::test]
async fn cancel_a_pending_call() {
    let f = filled().await;
    let v = json(&retry_store(
        &f.url,
        &["cancel", &f.pending.to_string(), "--json"],
    ));
    assert_eq!(
        v,
        serde_json::json!({ "command": "cancel", "count": 1, "cid": f.pending.to_string() })
    );
    assert_eq!(state(&f.url, f.pending).await, Some(CallState::Cancelled));
    fails_with(
        &retry_store(&f.url, &["cancel", &f.succeeded.to_string()]),
        "is succeeded",
    );
}

#[tokio::test]
async fn a_reader_that_stops_early_ends_the_tool_quietly() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    // Far more than a pipe holds (64 KiB), so the tool is still writing when the reader goes.
    let calls: Vec<NewCall> = (0..3000)
        .map(|i| NewCall::new("mail::send", format!(r#"{{"n":{i}}}"#)))
        .collect();
    store.enqueue(calls).await.unwrap();
    drop(store);
    for args in [&["list"][..], &["--json", "list"][..]] {
        // `retry-store list | head -1`
        let mut child = Command::new(env!("CARGO_BIN_EXE_retry-store"))
            .env_remove("RETRY_STORE")
            .arg("--store")
            .arg(&url)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut first)
            .unwrap();
        assert!(!first.is_empty(), "{args:?}: one line was read");
        // The reader is dropped here: the pipe is closed.
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert_eq!(out.status.code(), Some(0), "{args:?}: {err}");
        assert!(err.is_empty(), "{args:?}: quiet: {err}");
    }
}

#[tokio::test]
async fn stats_marks_functions_whose_due_calls_nobody_claims() {
    use retry_runtime::durable::{Backend, SqliteBackend, Synchronous};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.db");
    let url = format!("sqlite:{}", path.display());
    let backend = SqliteBackend::open_file(&path, Synchronous::Full, true).unwrap();
    let now = SystemTime::now();
    let ten_minutes_ago = now - Duration::from_secs(600);
    // A typo in an outbox: stored 10 minutes ago, due at once, and no worker knows the name.
    backend
        .enqueue(vec![NewCall::new("mail::sned", "{}")], ten_minutes_ago)
        .await
        .unwrap();
    // Due in the future, stored 10 minutes ago: not late.
    backend
        .enqueue(
            vec![NewCall::new("report::weekly", "{}").due_at(now + Duration::from_secs(3600))],
            ten_minutes_ago,
        )
        .await
        .unwrap();
    // Just stored: a worker has had no time to take it.
    backend
        .enqueue(vec![NewCall::new("mail::send", "{}")], now)
        .await
        .unwrap();
    drop(backend);

    let table = stdout(&retry_store(&url, &["stats"]));
    let marks: Vec<&str> = table.lines().filter(|l| l.starts_with('!')).collect();
    assert_eq!(marks.len(), 1, "{table}");
    assert!(
        marks[0].starts_with("! mail::sned: due calls unclaimed since "),
        "{table}"
    );
    assert!(marks[0].contains("(over 5m)"), "{table}");

    let v = json(&retry_store(&url, &["stats", "--json"]));
    let unclaimed = v["unclaimed"].as_array().unwrap();
    assert_eq!(unclaimed.len(), 1, "{v}");
    assert_eq!(unclaimed[0]["function"], "mail::sned");
    assert_eq!(
        unclaimed[0]["since"],
        retry_runtime::durable::format_time(ten_minutes_ago)
    );

    // A shorter threshold marks the call stored just now too, once it is that old.
    std::thread::sleep(Duration::from_millis(20));
    let v = json(&retry_store(
        &url,
        &["stats", "--unclaimed-after", "10ms", "--json"],
    ));
    let mut names: Vec<&str> = v["unclaimed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| u["function"].as_str().unwrap())
        .collect();
    names.sort_unstable();
    assert_eq!(names, ["mail::send", "mail::sned"], "{v}");
}

#[tokio::test]
async fn purge_by_state_and_age() {
    let f = filled().await;
    let out = stdout(&retry_store(
        &f.url,
        &["purge", "--state", "succeeded", "--older-than", "1d"],
    ));
    assert_eq!(out, "purged 0 succeeded calls unchanged for 1d\n");
    assert_eq!(state(&f.url, f.succeeded).await, Some(CallState::Succeeded));
    let v = json(&retry_store(
        &f.url,
        &["purge", "--state", "dead", "--older-than", "0s", "--json"],
    ));
    assert_eq!(
        v,
        serde_json::json!({ "command": "purge", "count": 2, "cid": null })
    );
    assert_eq!(state(&f.url, f.dead).await, None);
    fails_with(
        &retry_store(
            &f.url,
            &["purge", "--state", "pending", "--older-than", "1h"],
        ),
        "only finished calls can be purged",
    );
    assert_eq!(state(&f.url, f.pending).await, Some(CallState::Pending));
}

#[tokio::test]
async fn unknown_and_malformed_ids() {
    let f = filled().await;
    let unknown = CorrelationId::new().to_string();
    for cmd in ["show", "cancel", "requeue"] {
        fails_with(&retry_store(&f.url, &[cmd, &unknown]), "no call with ID");
        fails_with(
            &retry_store(&f.url, &[cmd, "not-an-id"]),
            "malformed correlation ID `not-an-id`",
        );
    }
}

#[test]
fn bad_url() {
    fails_with(
        &retry_store("calls.db", &["stats"]),
        "bad store URL `calls.db`",
    );
    // Nothing listens on port 1 of loopback: refused at once; the password is not printed.
    let out = retry_store("postgres://app:s3cret@127.0.0.1:1/calls", &["stats"]);
    fails_with(
        &out,
        "cannot connect to PostgreSQL at postgres://app:***@127.0.0.1:1/calls",
    );
    assert!(!String::from_utf8_lossy(&out.stderr).contains("s3cret"));
}

#[test]
fn missing_file_is_not_created() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("nothing.db");
    let out = retry_store(&format!("sqlite:{}", path.display()), &["stats"]);
    fails_with(&out, &format!("no store at {}", path.display()));
    assert!(!path.exists(), "the tool created a store");
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn corrupt_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("garbage.db");
    write(&path, &[0xA5; 4096]);
    let out = retry_store(&format!("sqlite:{}", path.display()), &["list"]);
    fails_with(&out, "not a SQLite database");
}

#[test]
fn foreign_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("foreign.db");
    // Another program's SQLite database: a valid store whose header's application ID is
    // changed to someone else's (rusqlite is not a dependency of this crate).
    let store_url = format!("sqlite:{}", path.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        drop(Store::open(&store_url).await.unwrap());
    });
    let mut bytes = std::fs::read(&path).unwrap();
    // The application ID is the big-endian u32 at offset 68 of the SQLite header.
    bytes[68..72].copy_from_slice(&0x1234_5678_u32.to_be_bytes());
    write(&path, &bytes);
    let out = retry_store(&store_url, &["stats"]);
    fails_with(&out, "another program's SQLite database");
}

#[test]
fn store_url_from_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.db");
    let url = format!("sqlite:{}", path.display());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let store = Store::open(&url).await.unwrap();
        store.enqueue(vec![NewCall::new("f", "1")]).await.unwrap();
    });
    let out = Command::new(env!("CARGO_BIN_EXE_retry-store"))
        .env("RETRY_STORE", &url)
        .args(["stats", "--json"])
        .output()
        .unwrap();
    assert_eq!(json(&out)["total"], 1);
}

#[tokio::test]
async fn a_postgres_store() {
    let Some((url, _schema)) = pg::fresh_schema().await else {
        return;
    };

    // The tool does not create the tables.
    fails_with(
        &retry_store(&url, &["stats"]),
        "no store in the PostgreSQL database",
    );

    let store = Store::open(&url).await.unwrap();
    let pending = NewCall::new("mail::send", r#"{"to":"ops@example.com"}"#);
    let doomed = NewCall::new("billing::charge", r#"{"invoice":42}"#);
    store
        .enqueue(vec![pending.clone(), doomed.clone()])
        .await
        .unwrap();
    let claims = store
        .claim("w", &["billing::charge".into()], 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(store
        .bury(
            doomed.cid,
            claims[0].fence,
            None,
            "exhausted".into(),
            Some("card declined".into())
        )
        .await
        .unwrap());

    let v = json(&retry_store(&url, &["stats", "--json"]));
    assert_eq!(v["total"], 2);
    let dead = json(&retry_store(&url, &["list", "--state", "dead", "--json"]));
    assert_eq!(dead[0]["cid"], doomed.cid.to_string());
    assert_eq!(dead[0]["last_error"], "card declined");
    let shown = stdout(&retry_store(&url, &["show", &pending.cid.to_string()]));
    assert!(shown.contains("ops@example.com"), "{shown}");
    stdout(&retry_store(&url, &["requeue", &doomed.cid.to_string()]));
    stdout(&retry_store(&url, &["cancel", &pending.cid.to_string()]));
    let after = store.stats().await.unwrap();
    assert_eq!(after.count("billing::charge", CallState::Pending), 1);
    assert_eq!(after.count("mail::send", CallState::Cancelled), 1);
}

#[tokio::test]
async fn pause_and_resume_a_function() {
    let f = filled().await;
    let out = stdout(&retry_store(
        &f.url,
        &["pause", "mail::send", "--by", "alice"],
    ));
    assert_eq!(out, "paused mail::send\n");
    let again = json(&retry_store(&f.url, &["--json", "pause", "mail::send"]));
    assert_eq!(
        again,
        serde_json::json!({ "command": "pause", "count": 0, "cid": null }),
        "already paused"
    );
    // No claim takes the paused function's pending call; the others' are untouched.
    let store = Store::open_existing(&f.url).await.unwrap();
    let lease = Duration::from_secs(30);
    let names = ["mail::send".to_owned()];
    assert!(store
        .claim("w", &names, 10, lease)
        .await
        .unwrap()
        .is_empty());

    let table = stdout(&retry_store(&f.url, &["stats"]));
    let marks: Vec<&str> = table.lines().filter(|l| l.starts_with("||")).collect();
    assert_eq!(marks.len(), 1, "{table}");
    assert!(
        marks[0].starts_with("|| mail::send: paused since ") && marks[0].contains(" by alice"),
        "{table}"
    );
    let v = json(&retry_store(
        &f.url,
        &["stats", "--unclaimed-after", "0s", "--json"],
    ));
    assert_eq!(v["paused"][0]["function"], "mail::send", "{v}");
    assert_eq!(v["paused"][0]["by"], "alice", "{v}");
    assert!(
        v["unclaimed"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["function"] != "mail::send"),
        "a paused function is marked paused, not unclaimed: {v}"
    );

    let resumed = json(&retry_store(&f.url, &["--json", "resume", "mail::send"]));
    assert_eq!(
        resumed,
        serde_json::json!({ "command": "resume", "count": 1, "cid": null })
    );
    assert_eq!(
        stdout(&retry_store(&f.url, &["resume", "mail::send"])),
        "mail::send was not paused\n"
    );
    let claims = store.claim("w", &names, 10, lease).await.unwrap();
    assert_eq!(claims.len(), 1);
    assert_eq!(claims[0].record.cid, f.pending);
    let v = json(&retry_store(&f.url, &["stats", "--json"]));
    assert_eq!(v["paused"], serde_json::json!([]));
}

#[tokio::test]
async fn workers_lists_live_gone_and_stopped_workers_with_the_calls_gone_ones_hold() {
    use retry_runtime::durable::NewWorker;

    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    let empty = stdout(&retry_store(&url, &["workers"]));
    assert!(empty.contains("no worker has registered"), "{empty}");

    let b = store.backend();
    let now = SystemTime::now();
    let ago = |secs| now - Duration::from_secs(secs);
    let every = Duration::from_secs(5);
    b.register_worker(&NewWorker::new("live-1", ago(60), every), ago(60))
        .await
        .unwrap();
    assert!(b.worker_heartbeat("live-1", 3, ago(1)).await.unwrap());
    b.register_worker(&NewWorker::new("gone-1", ago(90), every), ago(30))
        .await
        .unwrap();
    let call = NewCall::new("mail::send", "[]");
    let held = call.cid;
    b.enqueue(vec![call], ago(40)).await.unwrap();
    let claims = b
        .claim(
            "gone-1",
            &["mail::send".to_string()],
            1,
            Duration::from_secs(30),
            ago(35),
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    b.register_worker(&NewWorker::new("stopped-1", ago(120), every), ago(120))
        .await
        .unwrap();
    assert!(b.worker_stopped("stopped-1", ago(5)).await.unwrap());

    let table = stdout(&retry_store(&url, &["workers"]));
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("WORKER") && lines[0].contains("HEARTBEAT"),
        "{table}"
    );
    let pid = std::process::id().to_string();
    let row = |id: &str| -> Vec<&str> {
        lines
            .iter()
            .find(|l| l.starts_with(id))
            .unwrap_or_else(|| panic!("no row of {id}: {table}"))
            .split_whitespace()
            .collect()
    };
    let live = row("live-1");
    assert_eq!(
        (live[1], live[3], live[5]),
        ("LIVE", pid.as_str(), "3"),
        "{table}"
    );
    let gone = row("gone-1");
    assert_eq!((gone[1], gone[gone.len() - 1]), ("GONE", "1"), "{table}");
    assert!(gone.contains(&"30s") || gone.contains(&"31s"), "{table}");
    assert_eq!(row("stopped-1")[1], "STOPPED");
    // Live first, then gone, then stopped; the gone worker's calls listed below.
    let order: Vec<usize> = ["live-1", "gone-1", "stopped-1"]
        .iter()
        .map(|id| lines.iter().position(|l| l.starts_with(id)).unwrap())
        .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{table}");
    assert!(table.contains("gone-1 is gone"), "{table}");
    assert!(table.contains(&format!("  {held}\n")), "{table}");

    let all = json(&retry_store(&url, &["--json", "workers"]));
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 3);
    assert_eq!(all[0]["id"], "live-1");
    assert_eq!(all[0]["status"], "live");
    assert_eq!(all[0]["running"], 3);
    assert_eq!(all[0]["heartbeat_interval"], 5000);
    assert_eq!(all[1]["status"], "gone");
    assert_eq!(all[1]["held"], serde_json::json!([held.to_string()]));
    assert_eq!(all[2]["status"], "stopped");
    assert!(all[2]["stopped_at"].is_string());
}

/// Every write command is in the store's audit: `cli:` and the user for requeue, cancel and
/// purge (and a pause or resume without `--by`), the `--by` name otherwise; with the target
/// and how many calls it changed, newest first.
#[tokio::test]
async fn every_write_command_is_audited() {
    let f = filled().await;
    let as_ops = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_retry-store"))
            .env_remove("RETRY_STORE")
            .env("USER", "ops")
            .arg("--store")
            .arg(&f.url)
            .args(args)
            .output()
            .expect("the binary runs");
        stdout(&out)
    };
    let dead = f.dead.to_string();
    let pending = f.pending.to_string();
    as_ops(&["requeue", &dead]);
    as_ops(&["requeue", "--dead", "--function", "mail::send"]);
    as_ops(&["cancel", &pending]);
    as_ops(&["purge", "--state", "cancelled", "--older-than", "0s"]);
    as_ops(&["pause", "billing::charge", "--by", "alice"]);
    as_ops(&["resume", "billing::charge"]);
    // A command that fails before acting records nothing.
    fails_with(&retry_store(&f.url, &["cancel", "nope"]), "nope");

    let store = Store::open_existing(&f.url).await.unwrap();
    let rows: Vec<(String, String, String, u64)> = store
        .audit(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.entry.actor, r.entry.action, r.entry.target, r.entry.count))
        .collect();
    let s = |t: &str| t.to_owned();
    assert_eq!(
        rows,
        [
            (s("cli:ops"), s("resume"), s("billing::charge"), 1),
            (s("alice"), s("pause"), s("billing::charge"), 1),
            (
                s("cli:ops"),
                s("purge"),
                s("state=cancelled older_than=0s"),
                1
            ),
            (s("cli:ops"), s("cancel"), pending.clone(), 1),
            (
                s("cli:ops"),
                s("requeue"),
                s("function=mail::send state=dead"),
                1
            ),
            (s("cli:ops"), s("requeue"), dead.clone(), 1),
        ]
    );
}

#[tokio::test]
async fn limit_a_function_then_clear_the_limit() {
    let f = filled().await;
    let store = Store::open_existing(&f.url).await.unwrap();
    // A second pending call of mail::send beside the one `filled` leaves.
    store
        .enqueue(vec![NewCall::new(
            "mail::send",
            r#"{"to":"b@example.com"}"#,
        )])
        .await
        .unwrap();
    assert_eq!(
        stdout(&retry_store(&f.url, &["limit"])),
        "FUNCTION  MAX_RUNNING  ATTRIBUTE  OPERATOR  CHANGED\n"
    );
    assert_eq!(
        stdout(&retry_store(&f.url, &["limit", "mail::send", "1"])),
        "limited mail::send: at most 1 running at once across every worker\n"
    );
    let lease = Duration::from_secs(30);
    let names = ["mail::send".to_owned()];
    assert_eq!(store.claim("w", &names, 10, lease).await.unwrap().len(), 1);
    assert!(
        store
            .claim("w", &names, 10, lease)
            .await
            .unwrap()
            .is_empty(),
        "one is running: no room left"
    );
    let listed = stdout(&retry_store(&f.url, &["limit"]));
    let row: Vec<&str> = listed.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(&row[..4], ["mail::send", "1", "-", "1"], "{listed}");
    let v = json(&retry_store(&f.url, &["limit", "--json"]));
    assert_eq!(v[0]["function"], "mail::send", "{v}");
    assert_eq!(v[0]["max_running"], 1, "{v}");
    assert_eq!(v[0]["declared"], serde_json::Value::Null, "{v}");

    let cleared = json(&retry_store(
        &f.url,
        &["--json", "limit", "mail::send", "none"],
    ));
    assert_eq!(
        cleared,
        serde_json::json!({
            "command": "limit", "count": 1, "cid": null,
            "function": "mail::send", "max_running": null,
        })
    );
    assert_eq!(
        stdout(&retry_store(&f.url, &["limit", "mail::send", "none"])),
        "mail::send had no operator's limit: no limit\n"
    );
    assert_eq!(store.claim("w", &names, 10, lease).await.unwrap().len(), 1);

    // Refused by the argument parser, with its usage hint after the reason.
    for (bad, says) in [("0", "pause it instead"), ("two", "is not a limit")] {
        let out = retry_store(&f.url, &["limit", "mail::send", bad]);
        assert!(!out.status.success(), "{bad} accepted");
        let err = String::from_utf8(out.stderr).unwrap();
        assert!(err.lines().next().unwrap().contains(says), "{err}");
    }
    assert!(store.limits().await.unwrap().is_empty(), "nothing set");
}
