//! What the console's tests share: a seeded store, requests, and reading answers.
#![allow(dead_code)] // each test binary uses what it needs

use std::time::{Duration, SystemTime};

use axum::body::Body;
use axum::http::{header, Request, Response, StatusCode};
use axum::Router;
use retry_runtime::durable::{NewCall, Progress, Store};
use retry_runtime::CorrelationId;
use tower::ServiceExt;

#[path = "../../../tests/common/pg.rs"]
mod pg;

/// The error stored on the XSS call: it must show as text and never run.
pub const XSS: &str =
    "<img src=x onerror=\"document.title='pwned'\"><script>document.title='pwned'</script>";

/// The calls [`seed`] stored.
pub struct Seeded {
    /// Dead calls of `billing::push_invoice`; the first one's last error is [`XSS`].
    pub dead: Vec<CorrelationId>,
    /// Pending calls of `mail::send`.
    pub pending: Vec<CorrelationId>,
    /// A succeeded call of `billing::push_invoice` that started `child`.
    pub parent: CorrelationId,
    /// A waiting call of `mail::send`, started by `parent`.
    pub child: CorrelationId,
}

/// Stores, at the current time: 3 dead and 1 succeeded calls of `billing::push_invoice`, 4
/// pending and 1 waiting of `mail::send` (the waiting one a child of the succeeded one).
pub async fn seed(store: &Store) -> Seeded {
    let b = store.backend();
    let now = SystemTime::now();
    let lease = Duration::from_secs(30);
    let billing = || vec!["billing::push_invoice".to_string()];
    let mail = || vec!["mail::send".to_string()];

    let dead: Vec<NewCall> = (0..3)
        .map(|i| {
            NewCall::new(
                "billing::push_invoice",
                format!(r#"{{"invoice":{i},"note":"<b>bold</b>"}}"#),
            )
        })
        .collect();
    let parent = NewCall::new("billing::push_invoice", r#"{"invoice":99}"#);
    b.enqueue(dead.clone(), now).await.unwrap();
    b.enqueue(vec![parent.clone()], now).await.unwrap();
    let claims = b
        .claim("worker-1", &billing(), 10, lease, now)
        .await
        .unwrap();
    assert_eq!(claims.len(), 4);
    for claim in &claims {
        let cid = claim.record.cid;
        if cid == parent.cid {
            assert!(b.complete(cid, claim.fence, 1, now, now).await.unwrap());
            continue;
        }
        let error = if cid == dead[0].cid {
            XSS.to_string()
        } else {
            "Os { code: 111, kind: ConnectionRefused }".to_string()
        };
        let progress = Progress {
            attempts: 5,
            started_at: Some(now),
            last_wait_ns: 1_000_000,
            attempt_started: now,
        };
        assert!(b
            .bury(
                cid,
                claim.fence,
                Some(progress),
                "policy exhausted".into(),
                Some(error),
                now
            )
            .await
            .unwrap());
    }

    let pending: Vec<NewCall> = (0..4)
        .map(|i| NewCall::new("mail::send", format!(r#"{{"to":"user{i}@example.com"}}"#)))
        .collect();
    let child = NewCall::new("mail::send", r#"{"to":"billing@example.com"}"#)
        .with_parent(parent.cid)
        .due_at(now - Duration::from_secs(1));
    b.enqueue(vec![child.clone()], now - Duration::from_secs(120))
        .await
        .unwrap();
    let claims = b.claim("worker-2", &mail(), 1, lease, now).await.unwrap();
    let progress = Progress {
        attempts: 1,
        started_at: Some(now),
        last_wait_ns: 0,
        attempt_started: now,
    };
    assert!(b
        .reschedule(
            child.cid,
            claims[0].fence,
            progress,
            now + Duration::from_secs(600),
            "timeout".into(),
            now
        )
        .await
        .unwrap());
    // Due a minute ago: the queue lag of mail::send is about a minute.
    let due = pending
        .iter()
        .cloned()
        .map(|c| c.due_at(now - Duration::from_secs(60)))
        .collect();
    b.enqueue(due, now - Duration::from_secs(60)).await.unwrap();
    Seeded {
        dead: dead.iter().map(|c| c.cid).collect(),
        pending: pending.iter().map(|c| c.cid).collect(),
        parent: parent.cid,
        child: child.cid,
    }
}

/// A SQLite store in a fresh directory (kept alive by the returned guard).
pub async fn sqlite_store() -> (Store, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    (Store::open(&url).await.unwrap(), dir)
}

/// An answer, its body read.
pub struct Answer {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The value of the `Set-Cookie` named `name`, if set.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with(&format!("{name}=")))
            .map(str::to_owned)
    }

    /// The CSRF token in a form of the page.
    pub fn csrf(&self) -> String {
        let at = self
            .body
            .find("name=\"csrf\" value=\"")
            .expect("a form with a CSRF field");
        let rest = &self.body[at + 19..];
        rest[..rest.find('"').unwrap()].to_owned()
    }

    pub fn location(&self) -> String {
        self.headers[header::LOCATION].to_str().unwrap().to_owned()
    }
}

/// Sends `request` to `app`.
pub async fn send(app: &Router, request: Request<Body>) -> Answer {
    let response: Response<Body> = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), 16 << 20)
        .await
        .unwrap();
    Answer {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

/// A GET of `uri`, with `headers`.
pub async fn get(app: &Router, uri: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request = Request::get(uri);
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send(app, request.body(Body::empty()).unwrap()).await
}

/// A form POST of `form` (URL-encoded) to `uri`, with `headers`.
pub async fn post(app: &Router, uri: &str, form: &str, headers: &[(&str, &str)]) -> Answer {
    let mut request =
        Request::post(uri).header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    for (k, v) in headers {
        request = request.header(*k, *v);
    }
    send(app, request.body(Body::from(form.to_owned())).unwrap()).await
}

/// The `name=value` part of a `Set-Cookie` line.
pub fn pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().unwrap().to_owned()
}

/// A store in a fresh schema of the PostgreSQL server at `RETRY_TEST_POSTGRES_URL`, with the
/// client that drops the schema ([`drop_schema`]); `None` (after saying so) when the variable
/// is not set, which fails under CI. The set-up is the workspace's (`tests/common/pg.rs`).
pub async fn postgres_store() -> Option<(Store, tokio_postgres::Client, String)> {
    let (url, schema) = pg::fresh_schema().await?;
    let admin = pg::connect(&pg::server_url()?).await;
    Some((Store::open(&url).await.unwrap(), admin, schema))
}

/// Drops the schema of [`postgres_store`].
pub async fn drop_schema(admin: &tokio_postgres::Client, schema: &str) {
    admin
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
        .unwrap();
}
