//! TLS to the PostgreSQL store: `sslmode=verify-full` with a generated CA connects and stores a
//! call, and a certificate that does not match the host, or a CA that did not sign it, fails
//! the open with an error that names the TLS failure.
//!
//! `.ci/postgres.sh` starts the server with TLS (a certificate for `localhost` only) and
//! exports `RETRY_TEST_POSTGRES_CA`, the CA's PEM file. Without it the tests say they are
//! skipped, except under CI (`CI` set), where they fail.

use std::path::PathBuf;

use retry_runtime::durable::{NewCall, Store, StoreError};

#[path = "common/pg.rs"]
mod pg;
use pg::{fresh_schema, with_param};

/// The CA's PEM file, or `None` (after saying so) when the tests are to be skipped.
fn ca() -> Option<PathBuf> {
    match std::env::var("RETRY_TEST_POSTGRES_CA") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ => {
            assert!(
                std::env::var("CI").is_err(),
                "RETRY_TEST_POSTGRES_CA is not set, and CI must run the TLS tests: \
                 `source .ci/postgres.sh` starts a server with TLS and sets it"
            );
            eprintln!("RETRY_TEST_POSTGRES_CA is not set: PostgreSQL TLS tests skipped");
            None
        }
    }
}

/// A fresh schema's store URL on `host`, with `sslmode` and the CA file `root`.
async fn tls_url(host: &str, sslmode: &str, root: &std::path::Path) -> Option<String> {
    let (url, _) = fresh_schema().await?;
    assert!(
        url.contains("@127.0.0.1:"),
        "the test server listens on 127.0.0.1: {url}"
    );
    let url = url.replace("@127.0.0.1:", &format!("@{host}:"));
    let url = with_param(&url, &format!("sslmode={sslmode}"));
    Some(with_param(&url, &format!("sslrootcert={}", root.display())))
}

#[tokio::test]
async fn verify_full_to_the_certificates_host_stores_and_reads_a_call() {
    let Some(ca) = ca() else { return };
    let Some(url) = tls_url("localhost", "verify-full", &ca).await else {
        return;
    };
    let store = Store::open(&with_param(&url, "pool_max_size=2"))
        .await
        .unwrap();
    let call = NewCall::new("f", "[1]");
    let cid = call.cid;
    store.enqueue(vec![call]).await.unwrap();
    let record = store.get(cid).await.unwrap().expect("the call is stored");
    assert_eq!(record.args, "[1]");
}

#[tokio::test]
async fn verify_full_to_a_host_the_certificate_does_not_name_fails_clearly() {
    let Some(ca) = ca() else { return };
    // The certificate names `localhost` only; 127.0.0.1 is not in it.
    let Some(url) = tls_url("127.0.0.1", "verify-full", &ca).await else {
        return;
    };
    let err = Store::open(&url).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, StoreError::Backend(_)), "{err:?}");
    assert!(
        text.contains("TLS handshake")
            && text.contains("invalid peer certificate")
            && text.contains("not valid for name \"127.0.0.1\""),
        "{text}"
    );
}

#[tokio::test]
async fn verify_ca_checks_the_chain_but_not_the_host() {
    let Some(ca) = ca() else { return };
    let Some(url) = tls_url("127.0.0.1", "verify-ca", &ca).await else {
        return;
    };
    let store = Store::open(&url).await.unwrap();
    store.enqueue(vec![NewCall::new("f", "[]")]).await.unwrap();
}

#[tokio::test]
async fn a_certificate_another_ca_signed_fails_even_verify_ca() {
    let Some(ca) = ca() else { return };
    // The server's own certificate as the only root: it is not the CA that signed itself.
    let other = ca.with_file_name("server.pem");
    let Some(url) = tls_url("localhost", "verify-ca", &other).await else {
        return;
    };
    let text = Store::open(&url).await.unwrap_err().to_string();
    assert!(
        text.contains("TLS") && text.contains("invalid peer certificate"),
        "{text}"
    );
}

#[tokio::test]
async fn require_encrypts_without_checking_the_certificate() {
    let Some(_) = ca() else { return };
    let Some((url, _)) = fresh_schema().await else {
        return;
    };
    let store = Store::open(&with_param(&url, "sslmode=require"))
        .await
        .unwrap();
    store.enqueue(vec![NewCall::new("f", "[]")]).await.unwrap();
}

#[tokio::test]
async fn a_missing_sslrootcert_file_is_named() {
    let Some(url) = tls_url(
        "localhost",
        "verify-full",
        std::path::Path::new("/no/such/ca.pem"),
    )
    .await
    else {
        return;
    };
    let text = Store::open(&url).await.unwrap_err().to_string();
    assert!(text.contains("sslrootcert /no/such/ca.pem"), "{text}");
}
