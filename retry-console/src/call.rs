//! One call: every field, its arguments as pretty JSON, its last error, every attempt the
//! store kept (time, worker, duration, outcome, error), its parent and the calls it started,
//! and the actions its state allows.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use retry_runtime::durable::{AttemptRecord, CallRecord, CallState, ATTEMPTS_KEPT};
use retry_runtime::CorrelationId;

use crate::layout::{page, problem, span, state, store_failed, time};
use crate::security::csrf_field;
use crate::Console;

/// The most children listed.
const CHILDREN: usize = 100;

pub(crate) fn routes() -> Router<Console> {
    Router::new().route("/calls/{cid}", get(show))
}

/// The call's ID from the path, or a 400 page.
pub(crate) fn parse_cid(console: &Console, text: &str) -> Result<CorrelationId, Response> {
    text.parse().map_err(|e| {
        problem(
            console,
            StatusCode::BAD_REQUEST,
            &format!("`{text}` is not a correlation ID: {e}"),
        )
    })
}

async fn show(State(console): State<Console>, Path(cid): Path<String>) -> Response {
    let cid = match parse_cid(&console, &cid) {
        Ok(cid) => cid,
        Err(bad) => return bad,
    };
    let store = console.store();
    let found = tokio::try_join!(
        store.get(cid),
        store.children(cid, CHILDREN),
        store.attempts(cid)
    );
    let (record, children, attempts) = match found {
        Ok(found) => found,
        Err(e) => return store_failed(&console, &e),
    };
    let Some(record) = record else {
        return problem(
            &console,
            StatusCode::NOT_FOUND,
            &format!("No call {cid} in the store (it may have been purged)."),
        );
    };
    let body = html! {
        h1 { "Call " code { (record.cid) } " " (state(record.state)) }
        (actions(&console, &record))
        h2 { "Last error" }
        @match &record.last_error {
            Some(e) => pre.error { (e) },
            None => p.none { "None." },
        }
        (fields(&console, &record))
        (attempts_table(&attempts))
        h2 { "Arguments" }
        pre.json { (pretty(&record.args)) }
        h2 { "Policy" }
        p { "The policy is the " code { "#[retry(...)]" } " attribute of " code { (record.function) }
            " in the workers' build; the store keeps only its progress (attempts, start, last wait)." }
        h2 { "Calls it started" }
        @if children.is_empty() {
            p.none { "None." }
        } @else {
            ul.children {
                @for child in &children {
                    li {
                        a.cid href=(console.link(&format!("/calls/{}", child.cid))) { (child.cid) }
                        " " (child.function) " " (state(child.state))
                    }
                }
            }
            @if children.len() == CHILDREN {
                p.hint { "The first " (CHILDREN) " are shown." }
            }
        }
    };
    page(&console, &format!("Call {cid}"), &body).into_response()
}

/// Every attempt the store kept, the latest first: when it started, the worker, how long it
/// ran, how it ended, its error (as text: stored errors are untrusted).
fn attempts_table(attempts: &[AttemptRecord]) -> Markup {
    html! {
        h2 { "Attempts" }
        @if attempts.is_empty() {
            p.none { "None recorded (attempts are recorded from schema version 4 on)." }
        } @else {
            table #attempts.attempts {
                thead { tr { th { "#" } th { "started" } th { "worker" } th { "duration" } th { "outcome" } th { "error" } } }
                tbody {
                    @for a in attempts.iter().rev() {
                        tr {
                            td { (a.attempt) }
                            td { (time(Some(a.started_at))) }
                            td { @match &a.worker { Some(w) => code { (w) }, None => span.none { "the caller" } } }
                            td { (span(a.duration())) }
                            td { span class=(format!("outcome {}", a.outcome)) { (a.outcome) } }
                            td { @match &a.error { Some(e) => pre.error { (e) }, None => span.none { "—" } } }
                        }
                    }
                }
            }
            p.hint { "The store keeps the last " (ATTEMPTS_KEPT) " attempts of a call." }
        }
    }
}

/// The arguments, indented if they are JSON (they always are when stored by the runtime).
fn pretty(args: &str) -> String {
    serde_json::from_str::<serde_json::Value>(args)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or_else(|| args.to_owned())
}

fn fields(console: &Console, r: &CallRecord) -> Markup {
    html! {
        table.fields {
            tr { th { "function" } td { a href=(crate::calls::link(console, Some(&r.function), None)) { (r.function) } } }
            tr { th { "state" } td { (state(r.state)) } }
            tr { th { "parent" } td {
                @match r.parent {
                    Some(p) => a.cid href=(console.link(&format!("/calls/{p}"))) { (p) },
                    None => span.none { "—" },
                }
            } }
            tr { th { "attempts" } td { (r.attempts) } }
            tr { th { "created" } td { (time(Some(r.created_at))) } }
            tr { th { "started (budget)" } td { (time(r.started_at)) } }
            tr { th { "first attempt" } td { (time(r.first_attempt_at)) } }
            tr { th { "last attempt" } td { (time(r.last_attempt_at)) } }
            tr { th { "due" } td { (time(r.next_due_at)) } }
            tr { th { "last change" } td { (time(Some(r.updated_at))) } }
            tr { th { "dead reason" } td { @match &r.dead_reason { Some(d) => (d), None => span.none { "—" } } } }
            tr { th { "worker" } td { @match &r.worker { Some(w) => code { (w) }, None => span.none { "—" } } } }
            tr { th { "lease until" } td { (time(r.lease_until)) } }
            tr { th { "fence" } td { (r.fence) } }
            tr { th { "last wait" } td { (span(std::time::Duration::from_nanos(r.last_wait_ns))) } }
        }
    }
}

/// The buttons of the actions the call's state allows (none in read-only mode).
fn actions(console: &Console, r: &CallRecord) -> Markup {
    if console.config().read_only {
        return html! {};
    }
    let requeue = matches!(r.state, CallState::Dead | CallState::Cancelled);
    let cancel = !r.state.is_finished();
    html! {
        div.actions {
            @if requeue {
                form method="post" action=(console.link(&format!("/calls/{}/requeue", r.cid))) {
                    (csrf_field(console))
                    button #requeue type="submit" { "Requeue" }
                }
            }
            @if cancel {
                form method="post" action=(console.link(&format!("/calls/{}/cancel", r.cid))) {
                    (csrf_field(console))
                    button #cancel.danger type="submit" { "Cancel" }
                }
            }
        }
    }
}
