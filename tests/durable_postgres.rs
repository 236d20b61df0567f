//! The durable store on PostgreSQL: the backend-agnostic conformance suite, each case in a
//! schema of its own, and what only PostgreSQL has (concurrent migrations, the caller's
//! transaction, NOTIFY/LISTEN, connections the server drops).
//!
//! The server comes from `RETRY_TEST_POSTGRES_URL` (`source .ci/postgres.sh` starts one and
//! sets it). Without it the tests print that they are skipped and pass, except under CI
//! (`CI` set), where they fail: CI must run them.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use retry_runtime::durable::{
    conformance, CallState, NewCall, PostgresBackend, Store, StoreError, StoreUrl, POLL_ALL,
};
use tokio::sync::mpsc;

#[path = "common/pg.rs"]
mod pg;
use pg::{connect, fresh_schema, server_url, unique, with_param};

#[macro_use]
#[path = "common/conformance_cases.rs"]
mod conformance_cases;

/// One test per conformance case.
macro_rules! case {
    ($case:ident) => {
        #[tokio::test]
        async fn $case() {
            let Some((url, _)) = fresh_schema().await else {
                return;
            };
            let store = Store::open(&url).await.unwrap();
            conformance::$case(&store).await;
        }
    };
}

every_conformance_case!(case);

#[test]
fn postgres_urls_are_parsed_and_their_passwords_hidden() {
    for url in [
        "postgres://app:s3cret@db.internal:5432/jobs",
        "postgresql://app:s3cret@db.internal/jobs?connect_timeout=5",
    ] {
        let parsed = StoreUrl::parse(url).unwrap();
        assert_eq!(parsed, StoreUrl::Postgres { url: url.into() });
        let debug = format!("{parsed:?}");
        assert!(!debug.contains("s3cret"), "{debug}");
        assert!(debug.contains("app:***@db.internal"), "{debug}");
    }
    let err = StoreUrl::parse("postgres://app:s3cret@db/jobs?colour=blue").unwrap_err();
    assert!(matches!(err, StoreError::BadUrl { .. }), "{err}");
    assert!(err.to_string().contains("not a PostgreSQL URL"), "{err}");
    assert!(!err.to_string().contains("s3cret"), "{err}");
}

#[tokio::test]
async fn an_unreachable_server_is_a_backend_error() {
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    let err = Store::open("postgres://app:s3cret@127.0.0.1:1/jobs?connect_timeout=5")
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Backend(_)), "{err}");
    let text = err.to_string();
    assert!(
        text.contains("cannot connect to PostgreSQL at postgres://app:***@127.0.0.1:1/jobs"),
        "{text}"
    );
    assert!(!text.contains("s3cret") && !text.contains('\n'), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_workers_starting_at_once_migrate_once() {
    let Some((url, schema)) = fresh_schema().await else {
        return;
    };
    let url = Arc::new(url);
    let opens: Vec<_> = (0..8)
        .map(|_| {
            let url = Arc::clone(&url);
            tokio::spawn(async move { Store::open(&url).await })
        })
        .collect();
    let mut stores = Vec::new();
    for open in opens {
        stores.push(open.await.unwrap().expect("every worker opens the store"));
    }
    let versions: Vec<i32> = connect(&url)
        .await
        .query(&format!("SELECT version FROM {schema}.retry_schema"), &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3], "each migration, applied once");
    let call = NewCall::new("f", "[1]");
    stores[0].enqueue(vec![call.clone()]).await.unwrap();
    let seen = stores[7].get(call.cid).await.unwrap().expect("one store");
    assert_eq!(seen.state, CallState::Pending);
    // Reopening an up-to-date store changes nothing either.
    drop(Store::open(&url).await.unwrap());
    assert_eq!(stores[3].stats().await.unwrap().total(), 1);
}

#[tokio::test]
async fn a_newer_schema_is_refused() {
    let Some((url, schema)) = fresh_schema().await else {
        return;
    };
    drop(Store::open(&url).await.unwrap());
    let admin = connect(&url).await;
    admin
        .batch_execute(&format!(
            "INSERT INTO {schema}.retry_schema (version) VALUES (99)"
        ))
        .await
        .unwrap();
    let newer = StoreError::NewerSchema {
        found: 99,
        supported: 3,
    };
    assert_eq!(Store::open(&url).await.unwrap_err(), newer);
    assert_eq!(Store::open_existing(&url).await.unwrap_err(), newer);
    let versions = admin
        .query(&format!("SELECT version FROM {schema}.retry_schema"), &[])
        .await
        .unwrap();
    assert_eq!(versions.len(), 4, "left untouched");
}

#[tokio::test]
async fn open_existing_never_creates_the_tables() {
    let Some((url, schema)) = fresh_schema().await else {
        return;
    };
    let err = Store::open_existing(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::NoSchema { .. }), "{err}");
    assert!(err
        .to_string()
        .contains("no store in the PostgreSQL database"));
    let admin = connect(&url).await;
    let tables: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = $1",
            &[&schema],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 0, "nothing was created");
    drop(Store::open(&url).await.unwrap());
    assert_eq!(
        Store::open_existing(&url)
            .await
            .unwrap()
            .stats()
            .await
            .unwrap()
            .total(),
        0
    );
}

#[tokio::test]
async fn another_programs_retry_calls_table_is_not_a_store() {
    let Some((url, schema)) = fresh_schema().await else {
        return;
    };
    let admin = connect(&url).await;
    admin
        .batch_execute(&format!("CREATE TABLE {schema}.retry_calls (id INTEGER)"))
        .await
        .unwrap();
    let err = Store::open(&url).await.unwrap_err();
    assert!(matches!(err, StoreError::NotAStore { .. }), "{err}");
    let schema_table: Option<String> = admin
        .query_one(
            &format!("SELECT to_regclass('{schema}.retry_schema')::text"),
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(schema_table, None, "nothing was added");
}

#[tokio::test]
async fn enqueue_in_the_callers_transaction() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let mut client = connect(&url).await;
    let now = SystemTime::now();

    let dropped = NewCall::new("mail::send", r#"{"order":1}"#);
    let tx = client.transaction().await.unwrap();
    PostgresBackend::enqueue_in(&tx, std::slice::from_ref(&dropped), now)
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    assert_eq!(store.get(dropped.cid).await.unwrap(), None, "rolled back");

    let kept = NewCall::new("mail::send", r#"{"order":2}"#);
    let tx = client.transaction().await.unwrap();
    PostgresBackend::enqueue_in(&tx, std::slice::from_ref(&kept), now)
        .await
        .unwrap();
    assert_eq!(
        store.get(kept.cid).await.unwrap(),
        None,
        "not visible before the commit"
    );
    // A duplicate fails alone: its savepoint is rolled back and the transaction goes on.
    let again = NewCall::new("f", "[]").with_cid(kept.cid);
    let other = NewCall::new("f", "[]");
    let err = PostgresBackend::enqueue_in(&tx, &[other.clone(), again], now)
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Duplicate(kept.cid));
    tx.commit().await.unwrap();
    let record = store.get(kept.cid).await.unwrap().expect("committed");
    assert_eq!(record.state, CallState::Pending);
    assert_eq!(record.args, r#"{"order":2}"#);
    assert_eq!(
        store.get(other.cid).await.unwrap(),
        None,
        "all or none of one enqueue_in"
    );
}

/// The next wake-up of this test's functions (named with `prefix`) or [`POLL_ALL`]: the
/// channel is shared by every store in the database, so other tests' names are passed over.
async fn next_wake(rx: &mut mpsc::Receiver<String>, prefix: &str) -> String {
    loop {
        let message = tokio::time::timeout(Duration::from_secs(30), rx.recv())
            .await
            .expect("a wake-up within 30 s")
            .expect("the listener is running");
        if message == POLL_ALL || message.starts_with(prefix) {
            return message;
        }
    }
}

#[tokio::test]
async fn notify_reaches_a_listener_once_per_function_and_commit() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let backend = Arc::new(PostgresBackend::open(&url, true).await.unwrap());
    let store = Store::from_backend(backend.clone());
    let mut rx = backend.listen().await.unwrap();
    let p = unique("notified");
    let (f, g, h) = (format!("{p}::f"), format!("{p}::g"), format!("{p}::h"));
    assert_eq!(
        next_wake(&mut rx, &p).await,
        POLL_ALL,
        "a full poll once listening"
    );

    let calls = vec![
        NewCall::new(&f, "1"),
        NewCall::new(&f, "2"),
        NewCall::new(&g, "3"),
    ];
    store.enqueue(calls).await.unwrap();
    assert_eq!(next_wake(&mut rx, &p).await, f);
    assert_eq!(next_wake(&mut rx, &p).await, g);

    // A rolled-back enqueue_in notifies no one; a committed one does.
    let mut client = connect(&url).await;
    let tx = client.transaction().await.unwrap();
    PostgresBackend::enqueue_in(&tx, &[NewCall::new(&g, "4")], SystemTime::now())
        .await
        .unwrap();
    tx.rollback().await.unwrap();
    store.enqueue(vec![NewCall::new(&h, "5")]).await.unwrap();
    assert_eq!(
        next_wake(&mut rx, &p).await,
        h,
        "one `f` per transaction, and nothing from the rollback"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_store_and_its_listener_survive_terminated_connections() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let app = unique("retry_kill");
    let url = with_param(&url, &format!("application_name={app}"));
    let backend = Arc::new(PostgresBackend::open(&url, true).await.unwrap());
    let store = Store::from_backend(backend.clone());
    let mut rx = backend.listen().await.unwrap();
    let p = unique("survivor");
    assert_eq!(next_wake(&mut rx, &p).await, POLL_ALL);
    let before = NewCall::new(format!("{p}::f"), "1");
    store.enqueue(vec![before.clone()]).await.unwrap();
    assert_eq!(next_wake(&mut rx, &p).await, format!("{p}::f"));

    let admin = connect(&server_url().unwrap()).await;
    let terminated: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1) AS t",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        terminated >= 2,
        "the pool's and the listener's connections: {terminated}"
    );

    // The first operation may still pick the dead connection; the next gets a new one.
    let first = store.get(before.cid).await;
    if let Err(e) = &first {
        assert!(matches!(e, StoreError::Backend(_)), "{e}");
    }
    let record = match first {
        Ok(record) => record,
        Err(_) => store.get(before.cid).await.expect("the retry succeeds"),
    };
    assert_eq!(record.expect("still stored").state, CallState::Pending);
    for _ in 0..3 {
        assert_eq!(
            store.stats().await.unwrap().total(),
            1,
            "no poisoned connection"
        );
    }

    assert_eq!(
        next_wake(&mut rx, &p).await,
        POLL_ALL,
        "a full poll after reconnecting"
    );
    store
        .enqueue(vec![NewCall::new(format!("{p}::g"), "2")])
        .await
        .unwrap();
    assert_eq!(
        next_wake(&mut rx, &p).await,
        format!("{p}::g"),
        "listening again"
    );
}

/// A store at schema version 1 (before paused functions) is migrated in place, its calls kept.
#[tokio::test]
async fn a_version_1_store_is_migrated_in_place_keeping_its_calls() {
    let Some((url, schema)) = fresh_schema().await else {
        return;
    };
    let admin = connect(&url).await;
    admin
        .batch_execute(&format!(
            "SET search_path = {schema}; {} INSERT INTO retry_schema (version) VALUES (1); \
             INSERT INTO retry_calls (cid, function, args, state, created_at, next_due_at, \
             updated_at) VALUES ('{}', 'mail::send', '[1]', 'pending', 1000, 1000, 1000);",
            include_str!("../retry-runtime/src/durable/postgres_schema.sql"),
            retry_runtime::CorrelationId::new(),
        ))
        .await
        .unwrap();
    let store = Store::open_existing(&url).await.unwrap();
    assert_eq!(
        store
            .stats()
            .await
            .unwrap()
            .count("mail::send", CallState::Pending),
        1
    );
    assert!(store.pause("mail::send", "ops").await.unwrap());
    let names = ["mail::send".to_owned()];
    let lease = Duration::from_secs(30);
    assert!(store.claim("w", &names, 1, lease).await.unwrap().is_empty());
    assert!(store.resume("mail::send", "ops").await.unwrap());
    assert_eq!(store.claim("w", &names, 1, lease).await.unwrap().len(), 1);
    let versions: Vec<i32> = admin
        .query(
            &format!("SELECT version FROM {schema}.retry_schema ORDER BY 1"),
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(versions, [1, 2, 3]);
}

// ---------------------------------------------------------------- results and waiting

/// Enqueues a call of `function` and claims it: (its ID, the claim's fence).
async fn claimed(store: &Store, function: &str) -> (retry_runtime::CorrelationId, u64) {
    let call = NewCall::new(function, "{}");
    let cid = call.cid;
    store.enqueue(vec![call]).await.unwrap();
    let claims = store
        .claim("w", &[function.to_owned()], 1, Duration::from_secs(30))
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    (cid, claims[0].fence)
}

/// Another process's outcome (here another store on its own connections, whose writes this
/// store's waiters are not told of in-process) reaches a waiter by `NOTIFY retry_finished`:
/// within a fraction of the 10 s safety re-read, whether the call succeeds, is buried or is
/// cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_is_woken_by_another_processs_outcome() {
    use retry_runtime::durable::Finished;
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let waiter = Store::open(&url).await.unwrap();
    let other = Store::open(&url).await.unwrap();
    let (ok, ok_fence) = claimed(&other, "f").await;
    let (dead, dead_fence) = claimed(&other, "f").await;
    let cancelled = {
        let call = NewCall::new("f", "{}");
        let cid = call.cid;
        other.enqueue(vec![call]).await.unwrap();
        cid
    };
    let started = std::time::Instant::now();
    let (a, b, c, ()) = tokio::join!(
        waiter.wait(ok),
        waiter.wait(dead),
        waiter.wait(cancelled),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            let (b, now) = (other.backend(), SystemTime::now());
            assert!(b
                .complete_with_result(ok, ok_fence, 1, now, Some(r#"["x"]"#.into()), now)
                .await
                .unwrap());
            assert!(b
                .bury(
                    dead,
                    dead_fence,
                    None,
                    "gave up".into(),
                    Some("boom".into()),
                    now
                )
                .await
                .unwrap());
            assert!(b.cancel(cancelled, now).await.unwrap());
        }
    );
    let took = started.elapsed();
    assert_eq!(
        a.unwrap(),
        Finished::Succeeded {
            result: Some(r#"["x"]"#.into()),
            attempts: 1
        }
    );
    assert_eq!(
        b.unwrap(),
        Finished::Dead {
            reason: "gave up".into(),
            error: Some("boom".into()),
            attempts: 0
        }
    );
    assert!(matches!(c.unwrap(), Finished::Cancelled { .. }));
    assert!(
        took < Duration::from_secs(3),
        "woken by NOTIFY, not by the 10 s re-read: {took:?}"
    );
}

#[tokio::test]
async fn a_result_survives_reopening_the_store() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let cid = {
        let store = Store::open(&url).await.unwrap();
        let (cid, fence) = claimed(&store, "f").await;
        assert!(store
            .complete_with_result(cid, fence, 1, SystemTime::now(), Some("42".into()))
            .await
            .unwrap());
        cid
    };
    let store = Store::open_existing(&url).await.unwrap();
    assert_eq!(
        store.get(cid).await.unwrap().unwrap().result.as_deref(),
        Some("42")
    );
    assert_eq!(store.wait_for::<u64>(cid).await.unwrap(), 42);
}

/// A waiter whose connections the server terminates (its `LISTEN` for finished calls among
/// them) still learns of its call: the listener reconnects and every waiter reads its call
/// again, and later outcomes are heard on the new connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_survives_its_terminated_connections() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let app = unique("retry_wait_kill");
    let waiter = Store::open(&with_param(&url, &format!("application_name={app}")))
        .await
        .unwrap();
    let other = Store::open(&url).await.unwrap();
    let (cid, fence) = claimed(&other, "f").await;
    let (later, later_fence) = claimed(&other, "f").await;
    let waiting = {
        let waiter = waiter.clone();
        tokio::spawn(async move { waiter.wait(cid).await })
    };
    let waiting_later = {
        let waiter = waiter.clone();
        tokio::spawn(async move { waiter.wait(later).await })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let admin = connect(&server_url().unwrap()).await;
    let terminated: i64 = admin
        .query_one(
            "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE application_name = $1) AS t",
            &[&app],
        )
        .await
        .unwrap()
        .get(0);
    assert!(
        terminated >= 2,
        "the pool's and the LISTEN's connections: {terminated}"
    );
    let b = other.backend();
    let now = SystemTime::now();
    assert!(b
        .complete_with_result(cid, fence, 1, now, Some("1".into()), now)
        .await
        .unwrap());
    let first = tokio::time::timeout(Duration::from_secs(8), waiting)
        .await
        .expect("before the 10 s re-read")
        .unwrap()
        .unwrap();
    assert!(matches!(
        first,
        retry_runtime::durable::Finished::Succeeded { .. }
    ));

    tokio::time::sleep(Duration::from_millis(500)).await; // listening again by now
    let now = SystemTime::now();
    assert!(b
        .complete_with_result(later, later_fence, 1, now, Some("2".into()), now)
        .await
        .unwrap());
    let second = tokio::time::timeout(Duration::from_secs(3), waiting_later)
        .await
        .expect("heard on the new connection")
        .unwrap()
        .unwrap();
    assert!(matches!(
        second,
        retry_runtime::durable::Finished::Succeeded { .. }
    ));
}

/// A session that `LISTEN`s on `channel` (without listing itself anywhere), and the payloads
/// it hears.
async fn bare_listener(
    url: &str,
    channel: &str,
) -> (tokio_postgres::Client, mpsc::UnboundedReceiver<String>) {
    let (client, mut connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(Ok(message)) = std::future::poll_fn(|cx| connection.poll_message(cx)).await {
            if let tokio_postgres::AsyncMessage::Notification(n) = message {
                let _ = tx.send(n.payload().to_owned());
            }
        }
    });
    client
        .batch_execute(&format!("LISTEN {channel}"))
        .await
        .unwrap();
    (client, rx)
}

/// `NOTIFY retry_finished` is sent only while a waiter's `LISTEN` connection is listed in
/// `retry_listeners` (a `NOTIFY` makes every finishing commit of the database wait for the
/// previous one's flush): a session that listens unlisted hears no finished call while nobody
/// waits, then every one once a store's waiter listens, whichever store finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_calls_are_notified_only_while_a_waiter_listens() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let (_listening, mut heard) = bare_listener(&url, "retry_finished").await;
    let admin = connect(&url).await;
    let (quiet, quiet_fence) = claimed(&store, "f").await;
    let now = SystemTime::now();
    assert!(store
        .backend()
        .complete_with_result(quiet, quiet_fence, 1, now, None, now)
        .await
        .unwrap());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(heard.try_recv().ok(), None, "nobody waits: no NOTIFY");
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM retry_listeners", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 0);

    // A waiter (of another store) lists its LISTEN connection; the finish is heard by both.
    let waiter = Store::open(&url).await.unwrap();
    let (loud, loud_fence) = claimed(&store, "f").await;
    let waiting = tokio::spawn(async move { waiter.wait(loud).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    let rows: i64 = admin
        .query_one("SELECT count(*) FROM retry_listeners", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows, 1, "the waiter's LISTEN connection is listed");
    let now = SystemTime::now();
    assert!(store
        .backend()
        .complete_with_result(loud, loud_fence, 1, now, None, now)
        .await
        .unwrap());
    let got = tokio::time::timeout(Duration::from_secs(3), heard.recv())
        .await
        .expect("the NOTIFY of the finished call")
        .unwrap();
    assert_eq!(got, loud.to_string());
    assert!(matches!(
        tokio::time::timeout(Duration::from_secs(3), waiting)
            .await
            .expect("woken by the NOTIFY")
            .unwrap()
            .unwrap(),
        retry_runtime::durable::Finished::Succeeded { attempts: 1, .. }
    ));
}

/// A call enqueued alone goes in one round trip (`BEGIN`, insert, `NOTIFY`, `COMMIT` sent
/// together): its ID taken is still [`StoreError::Duplicate`], and the stored call unchanged.
#[tokio::test]
async fn a_lone_enqueue_of_a_taken_id_is_a_duplicate() {
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    let first = NewCall::new("f", r#"{"n":1}"#);
    let cid = first.cid;
    store.enqueue(vec![first]).await.unwrap();
    let again = NewCall::new("f", r#"{"n":2}"#).with_cid(cid);
    assert_eq!(
        store.enqueue(vec![again]).await.unwrap_err(),
        StoreError::Duplicate(cid)
    );
    assert_eq!(store.get(cid).await.unwrap().unwrap().args, r#"{"n":1}"#);
    assert_eq!(store.stats().await.unwrap().total(), 1);
    // The connection that saw the duplicate is usable: the next lone enqueue is stored.
    let next = NewCall::new("f", r#"{"n":3}"#);
    let next_cid = next.cid;
    store.enqueue(vec![next]).await.unwrap();
    assert!(store.get(next_cid).await.unwrap().is_some());
}
