//! The overview: per function, the calls by state, the queue lag and the dead letters, and
//! whether it is paused (with a pause or resume button, unless read-only); the calls per
//! minute of the last hour. `/live` is the part the script refreshes.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use retry_runtime::durable::{
    format_time, CallState, MinuteCount, PausedFunction, QueueLag, Stats, StoreError,
};

use crate::chart::{buckets, chart, MINUTES};
use crate::layout::{page_with_script, span, store_failed};
use crate::security::csrf_field;
use crate::{calls, Console};

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/", get(overview))
        .route("/live", get(live))
}

/// What the overview shows, read from the store.
pub(crate) struct Overview {
    stats: Stats,
    minutes: Vec<MinuteCount>,
    lags: Vec<QueueLag>,
    paused: Vec<PausedFunction>,
    now: SystemTime,
}

/// How long one reading of the overview is shown to every browser that asks: however many
/// browsers refresh it, the store answers its queries at most once in this time. An action
/// of this console forgets it at once ([`Shared::forget`]).
const SHARED_FOR: Duration = Duration::from_secs(2);

/// What the overview's readers share. The counts per minute read so far: the minutes before
/// `through` are final and are not read again; each refresh reads only from `through` on
/// (an index range), so refreshes cost the store little however many calls it holds. A
/// minute's counts are what happened in it, kept even if a call counted there changed later.
/// And the latest reading with its time, which the browsers asking within [`SHARED_FOR`] get
/// (the lock is held while reading, so concurrent requests wait for one reading).
#[derive(Default)]
pub(crate) struct Shared {
    counts: Vec<MinuteCount>,
    through: Option<SystemTime>,
    latest: Option<(Instant, Arc<Overview>)>,
}

impl Shared {
    /// Drops the latest reading (after an action changed the store).
    pub(crate) fn forget(&mut self) {
        self.latest = None;
    }
}

/// The start of the minute of `t`.
fn minute_of(t: SystemTime) -> SystemTime {
    let since_epoch = t.duration_since(UNIX_EPOCH).unwrap_or(Duration::ZERO);
    UNIX_EPOCH + Duration::from_secs(since_epoch.as_secs() / 60 * 60)
}

/// The calls per minute of the last hour before `now`.
async fn per_minute(
    console: &Console,
    shared: &mut Shared,
    now: SystemTime,
) -> Result<Vec<MinuteCount>, StoreError> {
    let hour_ago = minute_of(now - Duration::from_secs(60 * MINUTES as u64));
    let since = match shared.through {
        Some(through) if through >= hour_ago && through <= now => through,
        _ => hour_ago,
    };
    let fresh = console.store().calls_per_minute(since).await?;
    shared
        .counts
        .retain(|c| c.minute >= hour_ago && c.minute < since);
    shared.counts.extend(fresh);
    shared.through = Some(minute_of(now));
    Ok(shared.counts.clone())
}

/// The overview: the latest reading if it is recent enough, or a new one.
async fn read(console: &Console) -> Result<Arc<Overview>, StoreError> {
    let mut shared = console.inner.overview.lock().await;
    if let Some((at, data)) = &shared.latest {
        if at.elapsed() < SHARED_FOR {
            return Ok(Arc::clone(data));
        }
    }
    let store = console.store();
    let now = SystemTime::now();
    let (stats, minutes, lags, paused) = tokio::try_join!(
        store.stats(),
        per_minute(console, &mut shared, now),
        store.queue_lag(),
        store.paused()
    )?;
    let data = Arc::new(Overview {
        stats,
        minutes,
        lags,
        paused,
        now,
    });
    shared.latest = Some((Instant::now(), Arc::clone(&data)));
    Ok(data)
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
        .chain(data.paused.iter().map(|p| p.function.as_str()))
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
                    th { "claims" }
                } }
                tbody {
                    @for function in &functions {
                        @let lag = data.lags.iter().find(|l| l.function == *function);
                        @let mine: Vec<MinuteCount> = data.minutes.iter().filter(|m| m.function == *function).cloned().collect();
                        @let paused = data.paused.iter().find(|p| p.function == *function);
                        tr.paused[paused.is_some()] {
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
                            td { (pause_cell(console, function, paused)) }
                        }
                    }
                }
            }
        }
    }
}

/// Whether the function's calls are claimed: "paused" (since when, by whom) or "running",
/// with the button that flips it (none in read-only mode).
fn pause_cell(console: &Console, function: &str, paused: Option<&PausedFunction>) -> Markup {
    let read_only = console.config().read_only;
    html! {
        @match paused {
            Some(p) => {
                strong.paused title=(format!("since {} by {}", format_time(p.paused_at), p.paused_by)) { "paused" }
                @if !read_only {
                    " "
                    form.inline method="post" action=(console.link("/actions/resume")) {
                        (csrf_field(console))
                        input type="hidden" name="function" value=(function);
                        button.resume type="submit" { "Resume" }
                    }
                }
            }
            None => {
                span.none { "running" }
                @if !read_only {
                    " "
                    form.inline method="post" action=(console.link("/actions/pause")) {
                        (csrf_field(console))
                        input type="hidden" name="function" value=(function);
                        button.pause.danger type="submit" { "Pause" }
                    }
                }
            }
        }
    }
}
