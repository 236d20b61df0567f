//! The frame of every page, the embedded stylesheet and script, and the small formatters the
//! pages share.

use std::time::{Duration, SystemTime};

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use maud::{html, Markup, Render, DOCTYPE};
use retry_runtime::durable::{format_time, CallState, StoreError};

use crate::Console;

/// The stylesheet, embedded: operators run the console on machines without internet.
const STYLESHEET: &str = include_str!("../assets/console.css");
/// The live refresh of the overview, embedded.
const REFRESH_SCRIPT: &str = include_str!("../assets/refresh.js");

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/assets/console.css", get(stylesheet))
        .route("/assets/refresh.js", get(script))
}

async fn stylesheet() -> Response {
    asset("text/css; charset=utf-8", STYLESHEET)
}

async fn script() -> Response {
    asset("text/javascript; charset=utf-8", REFRESH_SCRIPT)
}

fn asset(content_type: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// A message above a page's content.
pub(crate) enum Flash {
    Done(String),
    Error(String),
}

impl Render for Flash {
    fn render(&self) -> Markup {
        match self {
            Flash::Done(text) => html! { p.flash.done role="status" { (text) } },
            Flash::Error(text) => html! { p.flash.error role="alert" { (text) } },
        }
    }
}

/// A whole page: `body` in the console's frame.
pub(crate) fn page(console: &Console, title: &str, body: &Markup) -> Markup {
    page_with_script(console, title, body, false)
}

/// A whole page, with the live-refresh script if `live`.
pub(crate) fn page_with_script(
    console: &Console,
    title: &str,
    body: &Markup,
    live: bool,
) -> Markup {
    let config = console.config();
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                meta name="referrer" content="no-referrer";
                title { (title) " · retry console" }
                link rel="stylesheet" href=(console.link("/assets/console.css"));
                @if live { script src=(console.link("/assets/refresh.js")) defer {} }
            }
            body {
                header.top {
                    a.brand href=(console.link("/")) { "retry console" }
                    nav {
                        a href=(console.link("/")) { "Overview" }
                        a href=(console.link("/calls")) { "Calls" }
                        a href=(console.link("/workers")) { "Workers" }
                        @if !config.read_only { a href=(console.link("/actions")) { "Actions" } }
                        a href=(console.link("/audit")) { "Audit" }
                    }
                    span.store {
                        @if let Some(label) = &config.store_label { (label) }
                        @if config.read_only { " · read-only" }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// A page answering a request that went wrong.
pub(crate) fn problem(console: &Console, status: StatusCode, message: &str) -> Response {
    (
        status,
        page(
            console,
            "Error",
            &html! {
                h1 { (status.canonical_reason().unwrap_or("Error")) }
                p.flash.error { (message) }
            },
        ),
    )
        .into_response()
}

/// A store error as a page: 400 for a request the store refused, 500 otherwise.
pub(crate) fn store_failed(console: &Console, error: &StoreError) -> Response {
    let status = match error {
        StoreError::Invalid(_) => StatusCode::BAD_REQUEST,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    problem(console, status, &error.to_string())
}

pub(crate) async fn not_found(
    axum::extract::State(console): axum::extract::State<Console>,
) -> Response {
    problem(
        &console,
        StatusCode::NOT_FOUND,
        "No such page in the console.",
    )
}

/// A time as RFC 3339 UTC, or a dash.
pub(crate) fn time(t: Option<SystemTime>) -> Markup {
    let Some(t) = t else {
        return html! { span.none { "—" } };
    };
    html! { time datetime=(format_time(t)) { (format_time(t).replace('T', " ")) } }
}

/// A duration as an operator reads it: `850ms`, `42s`, `7m 05s`, `3h 12m`, `2d 4h`.
pub(crate) fn span(d: Duration) -> String {
    let s = d.as_secs();
    match s {
        0 => format!("{}ms", d.as_millis()),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {:02}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {:02}m", s / 3600, s / 60 % 60),
        _ => format!("{}d {}h", s / 86_400, s / 3600 % 24),
    }
}

/// A state as a coloured label.
pub(crate) fn state(state: CallState) -> Markup {
    html! { span class={ "state " (state.as_str()) } { (state.as_str()) } }
}

/// At most `max` characters of `text`, with an ellipsis if cut.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_owned()
    } else {
        let mut cut: String = text.chars().take(max).collect();
        cut.push('…');
        cut
    }
}

#[cfg(test)]
mod tests {
    use super::{clip, span};
    use std::time::Duration;

    #[test]
    fn spans_read_as_an_operator_says_them() {
        assert_eq!(span(Duration::from_millis(850)), "850ms");
        assert_eq!(span(Duration::from_secs(42)), "42s");
        assert_eq!(span(Duration::from_secs(425)), "7m 05s");
        assert_eq!(span(Duration::from_secs(3 * 3600 + 720)), "3h 12m");
        assert_eq!(span(Duration::from_secs(2 * 86_400 + 4 * 3600)), "2d 4h");
    }

    #[test]
    fn clip_cuts_on_characters() {
        assert_eq!(clip("héllo", 10), "héllo");
        assert_eq!(clip("héllo", 2), "hé…");
    }
}
