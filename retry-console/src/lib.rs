//! The operators' console of the durable store of `#[retry]` calls: server-rendered pages over
//! a [`Store`], as an [`axum::Router`] a program mounts where it likes, and what
//! `retry-store serve` serves.
//!
//! - **Overview** (`/`): per function, the calls by state, the queue lag (age of the oldest
//!   due call), the dead letters (linking to them), and the calls that succeeded and failed
//!   per minute over the last hour as an SVG chart. It refreshes itself every few seconds with
//!   a small script; with scripts off it is the same page, reloaded by hand.
//! - **Calls** (`/calls`): filtered by function, state, ID, time of last change and text in the
//!   arguments or errors; sorted by last change or due time; keyset pages.
//! - **A call** (`/calls/{cid}`): every field, the arguments as pretty JSON, the last error,
//!   every attempt kept (time, worker, duration, outcome, error), its parent and the calls it
//!   started, its actions.
//! - **Actions** (`/actions`): requeue and cancel a call, the same in bulk over a filter, and
//!   purge, each bulk action behind a confirmation page that shows how many calls it touches.
//! - **Workers** (`/workers`): the live workers from their heartbeats (ID, host, process,
//!   start, calls running, age of the last heartbeat), and the gone ones with the calls they
//!   still hold.
//! - **Audit** (`/audit`): every action taken (here or with `retry-store`): who, when, what,
//!   on what, how many calls; newest first, keyset pages. Who is the host application's
//!   [`ConsoleConfig::actor`], else the console's own name.
//!
//! Security: every stored text is escaped; every response carries a Content-Security-Policy
//! that forbids inline script; actions are POST only with a CSRF token (a per-process secret,
//! in the form and in a `SameSite=Strict` cookie); with a [`ConsoleConfig::token`] every page
//! asks for it, as an `Authorization: Bearer` header or through a login form that sets an
//! `HttpOnly` cookie; [`ConsoleConfig::read_only`] serves no action at all; the host
//! application's own check goes in [`ConsoleConfig::authorize`].
//!
//! ```
//! use retry_console::{router, Console, ConsoleConfig};
//! use retry_runtime::durable::Store;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let store = Store::open("sqlite::memory:").await?;
//! let config = ConsoleConfig {
//!     base_path: "/admin/retry".into(),
//!     read_only: true,
//!     ..ConsoleConfig::default()
//! };
//! let app: axum::Router = axum::Router::new()
//!     .nest("/admin/retry", router(Console::new(store, config)?));
//! # let _ = app;
//! # Ok(())
//! # }
//! ```

mod actions;
mod audit;
mod call;
mod calls;
mod chart;
mod layout;
mod overview;
mod security;
mod workers;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use retry_runtime::durable::Store;

pub use security::listen_allowed;

/// The host application's own authorization: given the request's head, whether to serve it
/// (`false` answers 403 Forbidden).
pub type Authorize = Arc<dyn Fn(&http::request::Parts) -> bool + Send + Sync>;

/// Who makes a request, as the host application knows it (its user's name), for the audit
/// record of every action; `None` (or no hook) records the console's own name.
///
/// ```
/// use retry_console::{Actor, ConsoleConfig};
/// use std::sync::Arc;
///
/// let actor: Actor = Arc::new(|parts: &http::request::Parts| {
///     parts.headers.get("x-user")?.to_str().ok().map(|u| format!("sso:{u}"))
/// });
/// let config = ConsoleConfig { actor: Some(actor), ..ConsoleConfig::default() };
/// # let _ = config;
/// ```
pub type Actor = Arc<dyn Fn(&http::request::Parts) -> Option<String> + Send + Sync>;

/// How the console is served.
#[derive(Clone, Default)]
pub struct ConsoleConfig {
    /// Serve no action at all: no buttons, and the action routes are not there (404).
    pub read_only: bool,
    /// The token every request must carry (an `Authorization: Bearer` header, or the cookie
    /// the login form sets); `None`: no token is asked.
    pub token: Option<String>,
    /// The host application's own check, run before anything else.
    pub authorize: Option<Authorize>,
    /// Who acts, for the audit record of every action; without it (or when it answers
    /// `None`) the audit names `console`, or `console:token` on a console with a token.
    pub actor: Option<Actor>,
    /// The path the router is nested under (`/admin/retry`), for links and cookies; empty
    /// when it is served at the root.
    pub base_path: String,
    /// What to call the store in the page header (a URL without its password, a file name).
    pub store_label: Option<String>,
}

impl fmt::Debug for ConsoleConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConsoleConfig")
            .field("read_only", &self.read_only)
            .field("token", &self.token.as_ref().map(|_| "***"))
            .field("authorize", &self.authorize.as_ref().map(|_| "Fn"))
            .field("actor", &self.actor.as_ref().map(|_| "Fn"))
            .field("base_path", &self.base_path)
            .field("store_label", &self.store_label)
            .finish()
    }
}

/// The console's state: the store, the configuration and this process's secrets. Cheap to
/// clone.
#[derive(Clone)]
pub struct Console {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    config: ConsoleConfig,
    /// The CSRF token of this process's forms.
    csrf: String,
    /// The session cookie's value after a successful login.
    session: String,
    /// The overview's counts per minute and its latest reading, shared by every browser.
    overview: tokio::sync::Mutex<overview::Shared>,
}

impl fmt::Debug for Console {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Console")
            .field("config", &self.inner.config)
            .finish_non_exhaustive()
    }
}

/// The console could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConsoleError(pub String);

impl fmt::Display for ConsoleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConsoleError {}

impl Console {
    /// The console of `store`, with fresh secrets for its sessions and forms.
    ///
    /// # Errors
    /// The operating system gave no random bytes, or the token or base path is malformed
    /// (an empty token, a base path not starting with `/` or ending with one).
    pub fn new(store: Store, mut config: ConsoleConfig) -> Result<Console, ConsoleError> {
        if config.token.as_deref() == Some("") {
            return Err(ConsoleError("the console's token is empty".into()));
        }
        if config.base_path == "/" {
            config.base_path.clear();
        }
        if !config.base_path.is_empty()
            && (!config.base_path.starts_with('/') || config.base_path.ends_with('/'))
        {
            return Err(ConsoleError(format!(
                "the base path `{}` must start with `/` and not end with one (`/admin/retry`)",
                config.base_path
            )));
        }
        Ok(Console {
            inner: Arc::new(Inner {
                store,
                config,
                csrf: security::secret()?,
                session: security::secret()?,
                overview: tokio::sync::Mutex::default(),
            }),
        })
    }

    pub(crate) fn store(&self) -> &Store {
        &self.inner.store
    }

    pub(crate) fn config(&self) -> &ConsoleConfig {
        &self.inner.config
    }

    /// A link to `path` (which starts with `/`) under the base path.
    pub(crate) fn link(&self, path: &str) -> String {
        let base = &self.inner.config.base_path;
        if path == "/" && !base.is_empty() {
            // A nested router's root is the prefix itself.
            return base.clone();
        }
        format!("{base}{path}")
    }
}

/// The console's routes, for `Router::nest` (or to serve as they are). Read-only consoles have
/// no action routes.
pub fn router(console: Console) -> Router {
    let mut app = Router::new()
        .merge(overview::routes())
        .merge(calls::routes())
        .merge(call::routes())
        .merge(workers::routes())
        .merge(audit::routes())
        .merge(layout::routes())
        .merge(security::routes());
    if !console.config().read_only {
        // What an action changed shows on the next overview, not after its shared reading
        // expires.
        app = app.merge(
            actions::routes().route_layer(axum::middleware::map_response_with_state(
                console.clone(),
                forget_overview,
            )),
        );
    }
    app.fallback(layout::not_found)
        .layer(axum::middleware::from_fn_with_state(
            console.clone(),
            security::guard,
        ))
        .with_state(console)
}

async fn forget_overview(
    axum::extract::State(console): axum::extract::State<Console>,
    response: axum::response::Response,
) -> axum::response::Response {
    console.inner.overview.lock().await.forget();
    response
}

/// Serves `router(console)` on `addr` until the process ends, after checking that the
/// address may be listened on ([`listen_allowed`]).
///
/// # Errors
/// A non-loopback address without a token, or the address cannot be bound.
pub async fn serve(console: Console, addr: SocketAddr) -> Result<(), ConsoleError> {
    listen_allowed(addr, console.config())?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| ConsoleError(format!("cannot listen on {addr}: {e}")))?;
    axum::serve(listener, router(console))
        .await
        .map_err(|e| ConsoleError(format!("the console stopped: {e}")))
}
