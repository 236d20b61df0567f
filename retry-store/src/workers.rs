//! `workers`: the workers of the store from the heartbeats they write, as the console's
//! workers page shows them: live ones, gone ones (with the calls they still hold) and the ones
//! stopped in the last day.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use retry_runtime::durable::{format_time, Store, WorkerRecord, WorkerStatus, GONE_AFTER_MISSED};

use crate::duration;
use crate::table::{render, Align};

/// `workers`: the table (or `--json`, an array of worker records).
pub async fn workers(store: &Store, json: bool) -> Result<String, String> {
    let rows = store.workers().await.map_err(|e| e.to_string())?;
    Ok(if json {
        let mut out = serde_json::to_string_pretty(&rows).map_err(|e| e.to_string())?;
        out.push('\n');
        out
    } else {
        table(&rows, SystemTime::now())
    })
}

/// Whole seconds, as `duration::parse` reads them (`3s`, `2m5s`).
fn age(d: Duration) -> String {
    duration::format(Duration::from_secs(d.as_secs()))
}

fn table(rows: &[WorkerRecord], now: SystemTime) -> String {
    if rows.is_empty() {
        return "no worker has registered in this store (workers register when they start)\n"
            .into();
    }
    let cells: Vec<Vec<String>> = rows
        .iter()
        .map(|w| {
            vec![
                w.id.clone(),
                w.status.as_str().to_uppercase(),
                w.host.clone(),
                w.pid.to_string(),
                format_time(w.started_at),
                if w.status == WorkerStatus::Live {
                    w.running.to_string()
                } else {
                    "-".into()
                },
                format!("{} ago", age(w.heartbeat_age(now))),
                w.held.len().to_string(),
            ]
        })
        .collect();
    let mut out = render(
        &[
            ("WORKER", Align::Left),
            ("STATUS", Align::Left),
            ("HOST", Align::Left),
            ("PID", Align::Right),
            ("STARTED", Align::Left),
            ("RUNNING", Align::Right),
            ("HEARTBEAT", Align::Right),
            ("HELD", Align::Right),
        ],
        &cells,
    );
    for w in rows.iter().filter(|w| w.status == WorkerStatus::Gone) {
        let _ = write!(
            out,
            "\n{} is gone (no heartbeat for {GONE_AFTER_MISSED} intervals of {}); ",
            w.id,
            duration::format(w.heartbeat_interval)
        );
        if w.held.is_empty() {
            out.push_str("it holds no call\n");
        } else {
            let _ = writeln!(
                out,
                "the calls it holds come back when their leases run out:"
            );
            for cid in &w.held {
                let _ = writeln!(out, "  {cid}");
            }
        }
    }
    out
}
