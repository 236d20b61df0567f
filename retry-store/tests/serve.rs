//! `retry-store serve`: the console on loopback, refused elsewhere without a token.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use retry_runtime::durable::{NewCall, Store};

/// The child process, killed when the test ends (even by a panic).
struct Serving(Child);

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A GET of `path` on `port`, retried until the server answers (10 s at most): the answer.
fn fetch(port: u16, path: &str, headers: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) {
            write!(
                stream,
                "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Connection: close\r\n\r\n"
            )
            .unwrap();
            let mut answer = String::new();
            stream.read_to_string(&mut answer).unwrap();
            return answer;
        }
        assert!(Instant::now() < deadline, "the console did not start");
        std::thread::sleep(Duration::from_millis(50));
    }
}

async fn store_file(dir: &tempfile::TempDir) -> String {
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let store = Store::open(&url).await.unwrap();
    store
        .enqueue(vec![NewCall::new(
            "mail::send",
            r#"{"to":"ops@example.com"}"#,
        )])
        .await
        .unwrap();
    url
}

fn retry_store(url: &str, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_retry-store"));
    command
        .arg("--store")
        .arg(url)
        .args(args)
        .env_remove("RETRY_CONSOLE_TOKEN")
        .stdin(Stdio::null());
    command
}

#[tokio::test]
async fn serves_the_console_on_loopback_read_only() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_file(&dir).await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let _serving = Serving(
        retry_store(&url, &["serve", "--listen", &listen, "--read-only"])
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let overview = fetch(port, "/", "");
    assert!(overview.starts_with("HTTP/1.1 200"), "{overview}");
    assert!(overview.contains("mail::send"), "{overview}");
    assert!(overview.contains("read-only"));
    assert!(overview.contains("content-security-policy: default-src 'none'"));
    let action = fetch(port, "/actions", "");
    assert!(action.starts_with("HTTP/1.1 404"), "{action}");
}

#[tokio::test]
async fn another_address_needs_a_token() {
    let dir = tempfile::tempdir().unwrap();
    let url = store_file(&dir).await;
    let out = retry_store(&url, &["serve", "--listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("refusing to serve the console on 0.0.0.0:0 without a token")
            && err.contains("--token"),
        "{err}"
    );

    // With a token (from the environment), it serves, and asks for it.
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let _serving = Serving(
        retry_store(&url, &["serve", "--listen", &listen])
            .env("RETRY_CONSOLE_TOKEN", "t0ken")
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let refused = fetch(port, "/", "");
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    let served = fetch(port, "/", "Authorization: Bearer t0ken\r\n");
    assert!(served.starts_with("HTTP/1.1 200"), "{served}");
}

#[test]
fn a_postgres_password_never_shows_in_the_header() {
    // The label is computed before the store is opened; a refused listen shows nothing else.
    let out = retry_store(
        "postgres://ops:hunter2@127.0.0.1:1/db?password=hunter2",
        &["serve", "--listen", "10.0.0.1:7878"],
    )
    .output()
    .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && !err.contains("hunter2"), "{err}");
}
