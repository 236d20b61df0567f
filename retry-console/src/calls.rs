//! The list of calls: a filter form, a keyset page, and the bulk actions the filter allows.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup};
use retry_runtime::durable::{CallFilter, CallQuery, CallSort, CallState, Cursor};
use serde::{Deserialize, Serialize};

use crate::layout::{clip, page, problem, state, store_failed, time};
use crate::Console;

/// The most calls on one page.
const MAX_LIMIT: usize = 500;
/// Calls on a page unless asked otherwise.
const DEFAULT_LIMIT: usize = 50;

pub(crate) fn routes() -> Router<Console> {
    Router::new().route("/calls", get(list))
}

/// The filter as the form and the URLs write it: every field optional, empty is absent.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub(crate) struct FilterParams {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) function: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) cid: Option<String>,
    /// `1h` (that long ago) or `2026-01-31T12:00:00Z`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) since: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) until: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) text: Option<String>,
}

/// The list's URL: the filter, the order, the page.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
struct ListParams {
    #[serde(flatten)]
    filter: FilterParams,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sort: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    after: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limit: Option<String>,
}

fn present(field: Option<&String>) -> Option<&str> {
    field.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl FilterParams {
    /// The store's filter, or what is wrong with a field.
    pub(crate) fn to_filter(&self, now: SystemTime) -> Result<CallFilter, String> {
        Ok(CallFilter {
            function: present(self.function.as_ref()).map(str::to_owned),
            state: present(self.state.as_ref())
                .map(str::parse::<CallState>)
                .transpose()
                .map_err(|e| e.to_string())?,
            cid: present(self.cid.as_ref())
                .map(|c| {
                    c.parse()
                        .map_err(|e| format!("`{c}` is not a correlation ID: {e}"))
                })
                .transpose()?,
            since: present(self.since.as_ref())
                .map(|t| point(t, now))
                .transpose()?,
            until: present(self.until.as_ref())
                .map(|t| point(t, now))
                .transpose()?,
            text: self
                .text
                .as_ref()
                .filter(|t| !t.is_empty())
                .map(ToOwned::to_owned),
        })
    }

    /// The query string of these fields (and `extra` ones).
    pub(crate) fn query_string(&self) -> String {
        serde_urlencoded::to_string(self).unwrap_or_default()
    }

    /// The filter's fields as hidden inputs of a form.
    pub(crate) fn hidden_fields(&self) -> Markup {
        html! {
            @for (name, value) in [
                ("function", &self.function), ("state", &self.state), ("cid", &self.cid),
                ("since", &self.since), ("until", &self.until), ("text", &self.text),
            ] {
                @if let Some(value) = value { input type="hidden" name=(name) value=(value); }
            }
        }
    }
}

/// A point in time: `DURATION` ago (`90s`, `1h`, `7d`), or an RFC 3339 UTC time
/// (`2026-01-31T12:00:00Z`, seconds and `Z` optional).
pub(crate) fn point(text: &str, now: SystemTime) -> Result<SystemTime, String> {
    if let Ok(ago) = retry_duration::parse(text) {
        return Ok(now.checked_sub(ago).unwrap_or(UNIX_EPOCH));
    }
    utc(text).ok_or_else(|| {
        format!(
            "`{text}` is neither a duration ago (90s, 1h, 7d) nor a UTC time \
             (2026-01-31T12:00:00Z)"
        )
    })
}

/// `YYYY-MM-DDTHH:MM[:SS][Z]` (or with a space), as UTC.
fn utc(text: &str) -> Option<SystemTime> {
    let text = text.strip_suffix('Z').unwrap_or(text);
    let (date, clock) = text.split_once(['T', ' '])?;
    let mut dates = date.split('-').map(str::parse::<i64>);
    let (year, month, day) = (
        dates.next()?.ok()?,
        dates.next()?.ok()?,
        dates.next()?.ok()?,
    );
    let mut clocks = clock.split(':').map(str::parse::<i64>);
    let (hour, minute) = (clocks.next()?.ok()?, clocks.next()?.ok()?);
    let second = clocks.next().transpose().ok()?.unwrap_or(0);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = u64::try_from(days * 86_400 + hour * 3600 + minute * 60 + second).ok()?;
    Some(UNIX_EPOCH + Duration::from_secs(secs))
}

/// A link to the list of the calls of `function` in `state`.
pub(crate) fn link(console: &Console, function: Option<&str>, state: Option<CallState>) -> String {
    let params = FilterParams {
        function: function.map(str::to_owned),
        state: state.map(|s| s.as_str().to_owned()),
        ..FilterParams::default()
    };
    let query = params.query_string();
    if query.is_empty() {
        console.link("/calls")
    } else {
        format!("{}?{query}", console.link("/calls"))
    }
}

/// The action a bulk form over `filter` may offer: requeue finished calls, cancel unfinished
/// ones (a state is needed, so the count shown is the count acted on).
pub(crate) fn bulk_action(state: Option<CallState>) -> Option<&'static str> {
    match state? {
        CallState::Dead | CallState::Cancelled => Some("requeue"),
        CallState::Pending | CallState::Waiting | CallState::Running => Some("cancel"),
        CallState::Succeeded => None,
    }
}

async fn list(State(console): State<Console>, Query(params): Query<ListParams>) -> Response {
    let now = SystemTime::now();
    let filter = match params.filter.to_filter(now) {
        Ok(filter) => filter,
        Err(why) => return problem(&console, StatusCode::BAD_REQUEST, &why),
    };
    let sort = match present(params.sort.as_ref()).map(str::parse::<CallSort>) {
        None => CallSort::default(),
        Some(Ok(sort)) => sort,
        Some(Err(e)) => return store_failed(&console, &e),
    };
    let after = match present(params.after.as_ref()).map(str::parse::<Cursor>) {
        None => None,
        Some(Ok(cursor)) => Some(cursor),
        Some(Err(e)) => return store_failed(&console, &e),
    };
    let limit = present(params.limit.as_ref())
        .and_then(|l| l.parse().ok())
        .unwrap_or(DEFAULT_LIMIT)
        .clamp(1, MAX_LIMIT);
    let query = CallQuery {
        filter: filter.clone(),
        sort,
        after,
        limit,
    };
    let found = match console.store().browse(&query).await {
        Ok(found) => found,
        Err(e) => return store_failed(&console, &e),
    };
    let base = console.link("/calls");
    let with = |sort: CallSort, after: Option<Cursor>| {
        let params = ListParams {
            filter: params.filter.clone(),
            sort: Some(sort.as_str().to_owned()),
            after: after.map(|c| c.to_string()),
            limit: params.limit.clone(),
        };
        format!(
            "{base}?{}",
            serde_urlencoded::to_string(&params).unwrap_or_default()
        )
    };
    let bulk = bulk_action(filter.state).filter(|_| !console.config().read_only);
    let body = html! {
        h1 { "Calls" }
        (filter_form(&console, &params, sort))
        @if let Some(action) = bulk {
            p.bulk {
                a.button href={ (console.link("/actions/bulk")) "?action=" (action) "&" (params.filter.query_string()) } {
                    @if action == "requeue" { "Requeue the matching calls…" } @else { "Cancel the matching calls…" }
                }
            }
        }
        @if found.calls.is_empty() {
            p.empty { "No calls match." }
        } @else {
            table.calls {
                thead { tr {
                    th { "call" } th { "function" } th { "state" } th.num { "attempts" }
                    th { a href=(with(if sort == CallSort::UpdatedDesc { CallSort::UpdatedAsc } else { CallSort::UpdatedDesc }, None)) { "last change" } }
                    th { a href=(with(if sort == CallSort::DueAsc { CallSort::DueDesc } else { CallSort::DueAsc }, None)) { "due" } }
                    th { "last error" }
                } }
                tbody {
                    @for call in &found.calls {
                        tr {
                            td { a.cid href=(console.link(&format!("/calls/{}", call.cid))) { (call.cid) } }
                            td { (call.function) }
                            td { (state(call.state)) }
                            td.num { (call.attempts) }
                            td { (time(Some(call.updated_at))) }
                            td { (time(call.next_due_at)) }
                            td.error { @if let Some(e) = &call.last_error { (clip(e, 120)) } }
                        }
                    }
                }
            }
        }
        nav.pages {
            @if after.is_some() { a href=(with(sort, None)) { "« First page" } }
            @if let Some(next) = found.next { a rel="next" href=(with(sort, Some(next))) { "Next page »" } }
        }
    };
    page(&console, "Calls", &body).into_response()
}

fn filter_form(console: &Console, params: &ListParams, sort: CallSort) -> Markup {
    let f = &params.filter;
    let value = |v: &Option<String>| v.clone().unwrap_or_default();
    html! {
        form.filter method="get" action=(console.link("/calls")) {
            label { "Function " input name="function" value=(value(&f.function)); }
            label { "State "
                select name="state" {
                    option value="" { "any" }
                    @for s in CallState::ALL {
                        option value=(s.as_str()) selected[f.state.as_deref() == Some(s.as_str())] { (s.as_str()) }
                    }
                }
            }
            label { "Call ID " input name="cid" value=(value(&f.cid)) size="28"; }
            label { "Changed since " input name="since" value=(value(&f.since)) placeholder="1h or 2026-01-31T12:00Z" size="12"; }
            label { "until " input name="until" value=(value(&f.until)) size="12"; }
            label { "Text " input name="text" value=(value(&f.text)) placeholder="in arguments or errors"; }
            label { "Order "
                select name="sort" {
                    @for s in CallSort::ALL {
                        option value=(s.as_str()) selected[s == sort] { (s.as_str()) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{point, utc};
    use std::time::{Duration, UNIX_EPOCH};

    #[test]
    fn times_are_durations_ago_or_utc() {
        let now = UNIX_EPOCH + Duration::from_secs(10_000);
        assert_eq!(point("1h", now), Ok(UNIX_EPOCH + Duration::from_secs(6400)));
        assert_eq!(
            utc("2023-11-14T22:13:20Z"),
            Some(UNIX_EPOCH + Duration::from_secs(1_700_000_000))
        );
        assert_eq!(
            utc("2000-03-01 00:00"),
            Some(UNIX_EPOCH + Duration::from_secs(951_868_800))
        );
        assert!(point("yesterday", now).is_err());
        assert!(utc("2023-13-01T00:00").is_none());
    }
}
