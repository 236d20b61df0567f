//! The overview: per function, the calls by state, the queue lag and the dead letters; the
//! calls per minute of the last hour. `/live` is the part the script refreshes.

use std::collections::BTreeSet;
use std::time::{Duration, SystemTime};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use retry_runtime::durable::{CallState, MinuteCount, QueueLag, Stats, StoreError};

use crate::chart::{buckets, chart, MINUTES};
use crate::layout::{page_with_script, span, store_failed};
use crate::{calls, Console};

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/", get(overview))
        .route("/live", get(live))
}

/// What the overview shows, read from the store.
struct Overview {
    stats: Stats,
    minutes: Vec<MinuteCount>,
    lags: Vec<QueueLag>,
    now: SystemTime,
}

async fn read(console: &Console) -> Result<Overview, StoreError> {
    let store = console.store();
    let now = SystemTime::now();
    let since = now - Duration::from_secs(60 * MINUTES as u64);
    let (stats, minutes, lags) = tokio::try_join!(
        store.stats(),
        store.calls_per_minute(since),
        store.queue_lag()
    )?;
    Ok(Overview {
        stats,
        minutes,
        lags,
        now,
    })
}

async fn overview(State(console): State<Console>) -> Response {
    match read(&console).await {
        Ok(data) => {
            let body = html! {
                h1 { "Overview" }
                div #live data-src=(console.link("/live")) aria-live="polite" {
                    (fragment(&console, &data))
                }
                p.hint { "Refreshes every 5 seconds (with scripts on); reload by hand otherwise." }
            };
            page_with_script(&console, "Overview", &body, true).into_response()
        }
        Err(e) => store_failed(&console, &e),
    }
}

async fn live(State(console): State<Console>) -> Response {
    match read(&console).await {
        Ok(data) => fragment(&console, &data).into_response(),
        Err(e) => store_failed(&console, &e),
    }
}

/// The refreshed part: the chart and the table of functions.
fn fragment(console: &Console, data: &Overview) -> Markup {
    let functions: BTreeSet<&str> = data
        .stats
        .rows
        .iter()
        .map(|r| r.function.as_str())
        .chain(data.lags.iter().map(|l| l.function.as_str()))
        .collect();
    let all = buckets(&data.minutes, data.now);
    html! {
        section.summary {
            @for state in CallState::ALL {
                a.tile href=(calls::link(console, None, Some(state))) {
                    span.count { (data.stats.count_state(state)) }
                    (crate::layout::state(state))
                }
            }
        }
        (chart(&all, "Calls per minute, every function"))
        @if functions.is_empty() {
            p.empty { "No calls in the store yet." }
        } @else {
            table.functions {
                thead { tr {
                    th { "function" }
                    @for state in CallState::ALL { th.num { (state.as_str()) } }
                    th.num { "due now" }
                    th.num { "queue lag" }
                    th { "last hour" }
                } }
                tbody {
                    @for function in &functions {
                        @let lag = data.lags.iter().find(|l| l.function == *function);
                        @let mine: Vec<MinuteCount> = data.minutes.iter().filter(|m| m.function == *function).cloned().collect();
                        tr {
                            td { a href=(calls::link(console, Some(function), None)) { (function) } }
                            @for state in CallState::ALL {
                                @let n = data.stats.count(function, state);
                                td.num {
                                    @if n == 0 { span.none { "0" } }
                                    @else if state == CallState::Dead {
                                        a.dead href=(calls::link(console, Some(function), Some(state))) { (n) }
                                    } @else {
                                        a href=(calls::link(console, Some(function), Some(state))) { (n) }
                                    }
                                }
                            }
                            td.num { (lag.map_or(0, |l| l.due)) }
                            td.num {
                                @match lag {
                                    Some(l) => (span(data.now.duration_since(l.oldest_due).unwrap_or(Duration::ZERO))),
                                    None => span.none { "—" },
                                }
                            }
                            td.spark { (chart(&buckets(&mine, data.now), function)) }
                        }
                    }
                }
            }
        }
    }
}
