//! The console in a real browser: headless Chromium, driven through chromedriver, over a
//! seeded store. It loads the overview, opens a dead call, presses Requeue and sees the state
//! change, and shows that a stored error of HTML and script runs nothing. Screenshots go to
//! `target/console-screenshots/`.
//!
//! Needs the `chromium` and `chromium-driver` packages (`.ci/run` installs them); without them
//! the test is skipped with a message, except under CI, where it fails.

mod common;

use std::net::TcpListener as StdListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{seed, sqlite_store};
use fantoccini::{Client, ClientBuilder, Locator};
use retry_console::{router, Console, ConsoleConfig};
use retry_runtime::durable::CallState;

/// Where Debian puts them.
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A child process killed when dropped.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn screenshots() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
        PathBuf::from,
    );
    let dir = target.join("console-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

async fn shoot(client: &Client, name: &str) {
    let png = client.screenshot().await.unwrap();
    assert!(png.starts_with(b"\x89PNG"), "a PNG screenshot");
    std::fs::write(screenshots().join(name), png).unwrap();
}

/// chromedriver on a free port, once it answers.
async fn chromedriver() -> (Killed, String) {
    let port = StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let driver = Killed(child);
    let deadline = Instant::now() + Duration::from_secs(20);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(Instant::now() < deadline, "chromedriver did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (driver, format!("http://127.0.0.1:{port}"))
}

async fn browser(driver: &str, profile: &Path) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": CHROMIUM,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--no-first-run", "--window-size=1280,900",
                format!("--user-data-dir={}", profile.display()),
            ],
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(driver)
        .await
        .expect("a Chromium session")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_requeues_a_dead_call_and_stored_html_runs_nothing() {
    if !Path::new(CHROMIUM).exists() || !Path::new(CHROMEDRIVER).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "CI must run the browser test: install the `chromium` and `chromium-driver` \
             packages (.ci/run does)"
        );
        eprintln!("chromium or chromedriver is missing: the browser test is skipped");
        return;
    }
    let (store, _dir) = sqlite_store().await;
    let seeded = seed(&store).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = router(
        Console::new(
            store.clone(),
            ConsoleConfig {
                store_label: Some("sqlite:calls.db".into()),
                ..ConsoleConfig::default()
            },
        )
        .unwrap(),
    );
    tokio::spawn(async move { axum::serve(listener, app).await });

    let (_driver, driver_url) = chromedriver().await;
    let profile = tempfile::tempdir().unwrap();
    let client = browser(&driver_url, profile.path()).await;

    // The overview, with its live refresh running (the script loads under the CSP).
    client.goto(&format!("{base}/")).await.unwrap();
    let table = client.find(Locator::Css("table.functions")).await.unwrap();
    assert!(table
        .text()
        .await
        .unwrap()
        .contains("billing::push_invoice"));
    tokio::time::sleep(Duration::from_secs(6)).await;
    let stale: serde_json::Value = client
        .execute(
            "return document.getElementById('live').hasAttribute('data-stale');",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        stale,
        serde_json::json!(false),
        "the refresh fetched the fragment"
    );
    shoot(&client, "overview.png").await;

    requeue_a_dead_call(&client, &store, &seeded).await;
    stored_html_runs_nothing(&client, &base, &seeded).await;
    client.close().await.unwrap();
}

/// From the overview: the dead letters, one of them, Requeue, and the call is pending.
async fn requeue_a_dead_call(
    client: &Client,
    store: &retry_runtime::durable::Store,
    seeded: &common::Seeded,
) {
    // The dead letters of billing::push_invoice, then one of them.
    client
        .find(Locator::Css("a.dead"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let dead = seeded.dead[1].to_string();
    client
        .find(Locator::Css(&format!("a.cid[href$='{dead}']")))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(client, &[&dead, "dead"]).await;
    shoot(client, "dead-call.png").await;

    // Requeue: the page comes back with the call pending.
    client
        .find(Locator::Id("requeue"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    wait_for_heading(client, &[&dead, "pending"]).await;
    assert_eq!(
        store.get(seeded.dead[1]).await.unwrap().unwrap().state,
        CallState::Pending
    );
    shoot(client, "requeued.png").await;
}

/// The call whose stored error is HTML and script: shown as text, nothing runs.
async fn stored_html_runs_nothing(client: &Client, base: &str, seeded: &common::Seeded) {
    // The call whose stored error is an <img onerror> and a <script>: shown as text.
    client
        .goto(&format!("{base}/calls/{}", seeded.dead[0]))
        .await
        .unwrap();
    let error = client
        .find(Locator::Css("pre.error"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(error.contains("<img src=x onerror="), "{error}");
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ran: serde_json::Value = client
        .execute(
            "return [document.title, document.querySelectorAll('main img, main script').length];",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(
        ran[1],
        serde_json::json!(0),
        "no element was made from the stored text"
    );
    assert!(
        !ran[0].as_str().unwrap().contains("pwned"),
        "nothing ran: {ran}"
    );
    shoot(client, "xss-as-text.png").await;
}

/// Waits (10 s at most) for the page's heading to hold every one of `words`; the old page's
/// heading may go stale while the new page loads, and is then read again.
async fn wait_for_heading(client: &Client, words: &[&str]) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let heading = match client.find(Locator::Css("h1")).await {
            Ok(h1) => h1.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        if words.iter().all(|w| heading.contains(w)) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the heading `{heading}` does not say {words:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
