//! The audit: who acted (the request's actor, from [`ConsoleConfig::actor`] or the console's
//! own name), and the page listing every recorded action, newest first, a keyset page at a
//! time (`/audit?before=ID`).

use axum::extract::{Query, State};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::html;
use retry_runtime::durable::{format_time, AuditEntry, CallFilter, Store, StoreError};
use retry_runtime::CorrelationId;
use serde::Deserialize;

use crate::layout::{page, store_failed, time};
use crate::Console;

/// Records shown on a page.
const PAGE: usize = 50;

/// Who makes the request, as the audit records it: set on every request by the guard, read
/// by the actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Actor(pub(crate) String);

/// The request's actor: the host application's answer ([`ConsoleConfig::actor`]), else
/// `console:token` on a console that asks for a token (the request carried it), else
/// `console`.
///
/// [`ConsoleConfig::actor`]: crate::ConsoleConfig::actor
pub(crate) fn actor_of(console: &Console, parts: &Parts) -> Actor {
    let config = console.config();
    let named = config.actor.as_ref().and_then(|actor| actor(parts));
    Actor(named.unwrap_or_else(|| {
        if config.token.is_some() {
            "console:token".to_owned()
        } else {
            "console".to_owned()
        }
    }))
}

/// Records an action of `actor`.
pub(crate) async fn record(
    store: &Store,
    actor: &Actor,
    action: &str,
    target: impl Into<String>,
    count: u64,
) -> Result<(), StoreError> {
    store
        .record_audit(AuditEntry::new(actor.0.clone(), action, target, count))
        .await
}

/// A bulk action's filter as its audit target: `function=billing::push_invoice state=dead
/// since=... until=... text="..."`, the fields set only.
pub(crate) fn describe(filter: &CallFilter) -> String {
    let mut parts = Vec::new();
    if let Some(f) = &filter.function {
        parts.push(format!("function={f}"));
    }
    if let Some(s) = filter.state {
        parts.push(format!("state={s}"));
    }
    if let Some(cid) = filter.cid {
        parts.push(format!("cid={cid}"));
    }
    if let Some(t) = filter.since {
        parts.push(format!("since={}", format_time(t)));
    }
    if let Some(t) = filter.until {
        parts.push(format!("until={}", format_time(t)));
    }
    if let Some(text) = &filter.text {
        parts.push(format!("text={text:?}"));
    }
    if parts.is_empty() {
        "every call".to_owned()
    } else {
        parts.join(" ")
    }
}

pub(crate) fn routes() -> Router<Console> {
    Router::new().route("/audit", get(list))
}

#[derive(Deserialize)]
struct AuditParams {
    /// The ID of the last record of the previous page.
    before: Option<u64>,
}

async fn list(State(console): State<Console>, Query(params): Query<AuditParams>) -> Response {
    // One more than shown: whether an older page exists.
    let mut records = match console.store().audit(params.before, PAGE + 1).await {
        Ok(records) => records,
        Err(e) => return store_failed(&console, &e),
    };
    let more = records.len() > PAGE;
    records.truncate(PAGE);
    let body = html! {
        h1 { "Audit" }
        p.hint { "Every action taken on the store from the console and " code { "retry-store" } ", newest first." }
        @if records.is_empty() {
            p.none { "No action recorded." }
        } @else {
            table #audit.audit {
                thead { tr { th { "when" } th { "who" } th { "action" } th { "target" } th { "calls" } } }
                tbody {
                    @for r in &records {
                        tr {
                            td { (time(Some(r.at))) }
                            td { code { (r.entry.actor) } }
                            td { (r.entry.action) }
                            td {
                                @match r.entry.target.parse::<CorrelationId>() {
                                    Ok(cid) => a.cid href=(console.link(&format!("/calls/{cid}"))) { (cid) },
                                    Err(_) => code { (r.entry.target) },
                                }
                            }
                            td { (r.entry.count) }
                        }
                    }
                }
            }
        }
        p.pages {
            @if params.before.is_some() { a href=(console.link("/audit")) { "Newest" } " " }
            @if let (true, Some(last)) = (more, records.last()) {
                a #older href=(console.link(&format!("/audit?before={}", last.id))) { "Older →" }
            }
        }
    };
    page(&console, "Audit", &body).into_response()
}
