//! Fire and forget from a plain sync `main`: a user-activity saver that must not block the
//! user, retried in the background. No tokio runtime is set up here: the first background call
//! starts the library's own small executor.
//!
//! Run with `cargo run -p retry-examples --example activity_saver`.

use retry_runtime::{retry, Report};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::sync::Mutex;
use std::time::Duration;

static DB_HICCUPS: AtomicU32 = AtomicU32::new(2);
static DONE: Mutex<Option<mpsc::Sender<String>>> = Mutex::new(None);

#[derive(Debug)]
struct DbError(&'static str);

impl std::fmt::Display for DbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

fn report_done(r: &Report<DbError>) {
    let last = r.last_error.as_ref().map(ToString::to_string);
    let line = format!(
        "call {} {} after {} attempt(s); last error: {}",
        r.cid,
        r.reason,
        r.attempts,
        last.as_deref().unwrap_or("none")
    );
    if let Some(tx) = DONE.lock().unwrap().as_ref() {
        let _ = tx.send(line);
    }
}

/// Saves one activity record; the database fails the first two writes.
#[retry(max = 5, backoff = "exp", delay = "50ms", mode = "background", on_done = report_done)]
fn save_activity(user: String, action: String) -> Result<(), DbError> {
    if DB_HICCUPS
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok()
    {
        return Err(DbError("connection reset"));
    }
    println!("saved: {user} {action}");
    Ok(())
}

fn main() {
    let (tx, rx) = mpsc::channel();
    *DONE.lock().unwrap() = Some(tx);

    let handle = save_activity("ada".into(), "opened report 7".into());
    println!(
        "request answered at once; saving in the background as call {}",
        handle.cid()
    );
    drop(handle); // fire and forget: the save goes on

    // A real program would go on serving; here we wait for the callback to show it.
    let line = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("the background save reports within 10 s");
    println!("on_done: {line}");
}
