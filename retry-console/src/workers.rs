//! The workers (`/workers`): the live workers of the store from the heartbeats they write (ID,
//! host, process, start, calls running, age of the last heartbeat), the gone ones (no
//! heartbeat for three intervals, no clean shutdown) with the calls they still hold as links,
//! and the ones stopped in the last day. `/workers/live` is the part the script refreshes.

use std::time::SystemTime;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use retry_runtime::durable::{WorkerRecord, WorkerStatus, GONE_AFTER_MISSED};

use crate::layout::{page_with_script, span, store_failed, time};
use crate::Console;

/// The most held calls linked per gone worker; the rest are counted.
const HELD_LINKS: usize = 50;

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/workers", get(workers))
        .route("/workers/live", get(live))
}

async fn workers(State(console): State<Console>) -> Response {
    match console.store().workers().await {
        Ok(rows) => {
            let body = html! {
                h1 { "Workers" }
                div #live data-src=(console.link("/workers/live")) aria-live="polite" {
                    (fragment(&console, &rows, SystemTime::now()))
                }
                p.hint {
                    "From the heartbeats the workers write. Refreshes every 5 seconds (with \
                     scripts on); reload by hand otherwise."
                }
            };
            page_with_script(&console, "Workers", &body, true).into_response()
        }
        Err(e) => store_failed(&console, &e),
    }
}

async fn live(State(console): State<Console>) -> Response {
    match console.store().workers().await {
        Ok(rows) => fragment(&console, &rows, SystemTime::now()).into_response(),
        Err(e) => store_failed(&console, &e),
    }
}

/// The refreshed part: the live, gone and stopped workers.
fn fragment(console: &Console, rows: &[WorkerRecord], now: SystemTime) -> Markup {
    let of =
        |status| -> Vec<&WorkerRecord> { rows.iter().filter(|w| w.status == status).collect() };
    let (live, gone, stopped) = (
        of(WorkerStatus::Live),
        of(WorkerStatus::Gone),
        of(WorkerStatus::Stopped),
    );
    html! {
        h2 { "Live (" (live.len()) ")" }
        @if live.is_empty() {
            p.empty { "No worker has written a heartbeat lately." }
        } @else {
            table.workers.live {
                thead { tr {
                    th { "worker" } th { "host" } th.num { "pid" } th { "started" }
                    th.num { "calls running" } th.num { "last heartbeat" }
                } }
                tbody {
                    @for w in &live {
                        tr {
                            td.cid { (w.id) }
                            td { (w.host) }
                            td.num { (w.pid) }
                            td { (time(Some(w.started_at))) }
                            td.num { (w.running) }
                            td.num title=(format!("every {}", span(w.heartbeat_interval))) {
                                (span(w.heartbeat_age(now))) " ago"
                            }
                        }
                    }
                }
            }
        }
        h2 { "Gone (" (gone.len()) ")" }
        p.hint {
            "Workers that missed " (GONE_AFTER_MISSED) " heartbeats without shutting down: they \
             died, hang or lost the store. The calls they hold come back to other workers when \
             their leases run out."
        }
        @if !gone.is_empty() {
            table.workers.gone {
                thead { tr {
                    th { "worker" } th { "host" } th.num { "pid" } th { "started" }
                    th.num { "last heartbeat" } th { "calls it holds" }
                } }
                tbody {
                    @for w in &gone {
                        tr {
                            td.cid { (w.id) }
                            td { (w.host) }
                            td.num { (w.pid) }
                            td { (time(Some(w.started_at))) }
                            td.num { (span(w.heartbeat_age(now))) " ago" }
                            td { (held(console, w)) }
                        }
                    }
                }
            }
        }
        @if !stopped.is_empty() {
            h2 { "Stopped (" (stopped.len()) ")" }
            table.workers.stopped {
                thead { tr {
                    th { "worker" } th { "host" } th.num { "pid" } th { "started" } th { "stopped" }
                } }
                tbody {
                    @for w in &stopped {
                        tr {
                            td.cid { (w.id) }
                            td { (w.host) }
                            td.num { (w.pid) }
                            td { (time(Some(w.started_at))) }
                            td { (time(w.stopped_at)) }
                        }
                    }
                }
            }
        }
    }
}

/// The calls a worker holds, as links to their pages.
fn held(console: &Console, w: &WorkerRecord) -> Markup {
    html! {
        @if w.held.is_empty() {
            span.none { "none" }
        } @else {
            ul.held {
                @for cid in w.held.iter().take(HELD_LINKS) {
                    li { a.cid href=(console.link(&format!("/calls/{cid}"))) { (cid) } }
                }
                @if w.held.len() > HELD_LINKS {
                    li.none { "and " (w.held.len() - HELD_LINKS) " more" }
                }
            }
        }
    }
}
