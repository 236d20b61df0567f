//! What the PostgreSQL tests share: the server's URL (and the rule for a missing one), a
//! client, unique names, and a fresh schema per test.
#![allow(dead_code)] // each test binary uses what it needs

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio_postgres::NoTls;

/// The server's URL, or `None` (after saying so) when the tests are to be skipped.
pub fn server_url() -> Option<String> {
    match std::env::var("RETRY_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "RETRY_TEST_POSTGRES_URL is not set, and CI must run the PostgreSQL tests: \
                 `source .ci/postgres.sh` starts a server and sets it"
            );
            eprintln!("RETRY_TEST_POSTGRES_URL is not set: PostgreSQL tests skipped");
            None
        }
    }
}

/// A client on `url`, its connection driven by a task of its own.
pub async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to {url}: {e}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A name no other test (of this run or an earlier one) uses.
pub fn unique(prefix: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}_{}_{nanos}_{}",
        std::process::id(),
        NEXT.fetch_add(1, Ordering::Relaxed)
    )
}

/// `url` with one more query parameter.
pub fn with_param(url: &str, param: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{param}")
}

/// A fresh, empty schema: (the store URL whose `search_path` is that schema, its name).
pub async fn fresh_schema() -> Option<(String, String)> {
    let server = server_url()?;
    let schema = unique("retry_test");
    connect(&server)
        .await
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .unwrap();
    let url = with_param(&server, &format!("options=-csearch_path%3D{schema}"));
    Some((url, schema))
}
