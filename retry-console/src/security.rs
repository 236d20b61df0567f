//! Who may see the console and act on it: the host's check, the token (header or login
//! cookie), CSRF tokens, the security headers of every response, and where it may listen.

use std::fmt::Write as _;
use std::net::SocketAddr;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::get;
use axum::{Form, Router};
use maud::html;
use serde::Deserialize;

use crate::layout::{page, Flash};
use crate::{Console, ConsoleConfig, ConsoleError};

/// The session cookie set by the login form.
const SESSION_COOKIE: &str = "retry_console_session";
/// The CSRF cookie, compared with the form's field.
const CSRF_COOKIE: &str = "retry_console_csrf";

/// The Content-Security-Policy of every response: no inline script or style, nothing from
/// elsewhere.
pub(crate) const CSP: &str = "default-src 'none'; style-src 'self'; script-src 'self'; \
    img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'";

/// 32 random bytes from the operating system, as hex.
pub(crate) fn secret() -> Result<String, ConsoleError> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)
        .map_err(|e| ConsoleError(format!("no random bytes for the console's secrets: {e}")))?;
    Ok(bytes.iter().fold(String::with_capacity(64), |mut hex, b| {
        let _ = write!(hex, "{b:02x}");
        hex
    }))
}

/// Equal, in a time that does not depend on where they differ.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// The value of cookie `name`.
fn cookie<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// Whether a token-protected console may serve the request: the bearer header carries the
/// token, or the session cookie the login set.
fn has_token(console: &Console, token: &str, headers: &HeaderMap) -> bool {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    bearer.is_some_and(|b| same(b.trim(), token))
        || cookie(headers, SESSION_COOKIE).is_some_and(|c| same(c, &console.inner.session))
}

/// Where this console's cookies apply.
fn cookie_path(console: &Console) -> String {
    format!("{}/", console.config().base_path)
}

/// Every request: the host's check, then the token (except for the login page and the
/// stylesheet), then the security headers on the answer and the CSRF cookie if the browser
/// lacks it.
pub(crate) async fn guard(
    State(console): State<Console>,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let actor = crate::audit::actor_of(&console, &parts);
    parts.extensions.insert(actor);
    let path = parts.uri.path().to_owned();
    let public = path == "/login" || path.starts_with("/assets/");
    let mut response = if console
        .config()
        .authorize
        .as_ref()
        .is_some_and(|authorize| !authorize(&parts))
    {
        (StatusCode::FORBIDDEN, "forbidden by the application").into_response()
    } else if !public
        && console
            .config()
            .token
            .as_deref()
            .is_some_and(|token| !has_token(&console, token, &parts.headers))
    {
        let mut answer = (StatusCode::UNAUTHORIZED, login_page(&console, None)).into_response();
        answer.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static("Bearer realm=\"retry-console\""),
        );
        answer
    } else {
        let has_csrf = cookie(&parts.headers, CSRF_COOKIE).is_some();
        let mut answer = next.run(Request::from_parts(parts, body)).await;
        if !has_csrf {
            if let Ok(value) = HeaderValue::from_str(&format!(
                "{CSRF_COOKIE}={}; Path={}; HttpOnly; SameSite=Strict",
                console.inner.csrf,
                cookie_path(&console)
            )) {
                answer.headers_mut().append(header::SET_COOKIE, value);
            }
        }
        answer
    };
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CSP),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("no-referrer"),
    );
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    response
}

/// The CSRF field of a form.
pub(crate) fn csrf_field(console: &Console) -> maud::Markup {
    html! { input type="hidden" name="csrf" value=(console.inner.csrf); }
}

/// Refuses a POST whose form field and cookie do not both carry this process's CSRF token.
///
/// # Errors
/// 403 Forbidden, with a page saying why.
pub(crate) fn check_csrf(
    console: &Console,
    headers: &HeaderMap,
    field: &str,
) -> Result<(), Response> {
    let expected = &console.inner.csrf;
    let cookie_ok = cookie(headers, CSRF_COOKIE).is_some_and(|c| same(c, expected));
    if cookie_ok && same(field, expected) {
        Ok(())
    } else {
        Err((
            StatusCode::FORBIDDEN,
            page(
                console,
                "Refused",
                &html! {
                    h1 { "Refused: the form's CSRF token is missing or stale" }
                    p { "Reload the page and submit the form again." }
                },
            ),
        )
            .into_response())
    }
}

/// Whether the console may listen on `addr`: any loopback address, or any other when a token
/// is set.
///
/// ```
/// use retry_console::{listen_allowed, ConsoleConfig};
///
/// let open = ConsoleConfig::default();
/// assert!(listen_allowed("127.0.0.1:7878".parse().unwrap(), &open).is_ok());
/// let err = listen_allowed("0.0.0.0:7878".parse().unwrap(), &open).unwrap_err();
/// assert!(err.to_string().contains("--token"));
/// let guarded = ConsoleConfig { token: Some("s3cret".into()), ..ConsoleConfig::default() };
/// assert!(listen_allowed("0.0.0.0:7878".parse().unwrap(), &guarded).is_ok());
/// ```
///
/// # Errors
/// A non-loopback address without a token.
pub fn listen_allowed(addr: SocketAddr, config: &ConsoleConfig) -> Result<(), ConsoleError> {
    if addr.ip().is_loopback() || config.token.is_some() {
        Ok(())
    } else {
        Err(ConsoleError(format!(
            "refusing to serve the console on {addr} without a token: anyone who reaches that \
             address could act on the store. Listen on 127.0.0.1 (the default), or set a \
             token with --token or RETRY_CONSOLE_TOKEN"
        )))
    }
}

pub(crate) fn routes() -> Router<Console> {
    Router::new().route("/login", get(login_form).post(login))
}

fn login_page(console: &Console, flash: Option<Flash>) -> maud::Markup {
    page(
        console,
        "Log in",
        &html! {
            h1 { "Log in" }
            @if let Some(flash) = flash { (flash) }
            form method="post" action=(console.link("/login")) class="login" {
                (csrf_field(console))
                label { "Token " input type="password" name="token" autocomplete="current-password" required; }
                button type="submit" { "Log in" }
            }
            p.hint { "The token is the one given to " code { "retry-store serve --token" } " (or RETRY_CONSOLE_TOKEN)." }
        },
    )
}

async fn login_form(State(console): State<Console>) -> Response {
    if console.config().token.is_none() {
        return Redirect::to(&console.link("/")).into_response();
    }
    login_page(&console, None).into_response()
}

#[derive(Deserialize)]
struct Login {
    #[serde(default)]
    token: String,
    #[serde(default)]
    csrf: String,
}

async fn login(
    State(console): State<Console>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    if let Err(refused) = check_csrf(&console, &headers, &form.csrf) {
        return refused;
    }
    let Some(token) = console.config().token.as_deref() else {
        return Redirect::to(&console.link("/")).into_response();
    };
    if !same(form.token.trim(), token) {
        return (
            StatusCode::UNAUTHORIZED,
            login_page(
                &console,
                Some(Flash::Error("That is not the token.".into())),
            ),
        )
            .into_response();
    }
    let mut answer = Redirect::to(&console.link("/")).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{SESSION_COOKIE}={}; Path={}; HttpOnly; SameSite=Strict",
        console.inner.session,
        cookie_path(&console)
    )) {
        answer.headers_mut().append(header::SET_COOKIE, value);
    }
    answer
}
