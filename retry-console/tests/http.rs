//! Every page and action of the console over HTTP (without a server: `oneshot`), on a seeded
//! SQLite store, and the pages on PostgreSQL when `RETRY_TEST_POSTGRES_URL` is set.

mod common;

use std::sync::Arc;

use axum::Router;
use common::{get, pair, post, seed, sqlite_store, Seeded, XSS};
use retry_console::{router, Console, ConsoleConfig};
use retry_runtime::durable::{CallState, Store};

fn app(store: &Store, config: ConsoleConfig) -> Router {
    router(Console::new(store.clone(), config).unwrap())
}

async fn seeded() -> (Store, Seeded, tempfile::TempDir) {
    let (store, dir) = sqlite_store().await;
    let seeded = seed(&store).await;
    (store, seeded, dir)
}

#[tokio::test]
async fn the_overview_shows_functions_states_lag_dead_letters_and_the_chart() {
    let (store, _seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    let page = get(&app, "/", &[]).await;
    assert_eq!(page.status, 200);
    assert!(page.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let body = &page.body;
    assert!(
        body.contains("billing::push_invoice") && body.contains("mail::send"),
        "{body}"
    );
    // Dead letters link to the filtered list.
    assert!(
        body.contains("href=\"/calls?function=billing%3A%3Apush_invoice&amp;state=dead\">3</a>"),
        "{body}"
    );
    // The chart: 1 succeeded and 3 dead + 1 waiting failed in the last hour.
    assert!(
        body.contains("<svg") && body.contains("1 succeeded, 4 failed"),
        "{body}"
    );
    // The queue lag of mail::send: its 4 pending calls are due a minute ago.
    assert!(body.contains("1m 0") || body.contains("1m 1"), "{body}");
    assert!(body.contains("src=\"/assets/refresh.js\""));
    assert!(
        !body.contains("<script>") && !body.contains(" style="),
        "no inline script or style"
    );

    // A refresh reads the current minute again: a call that succeeds now is counted.
    succeed_one(&store).await;
    // Within two seconds every browser is shown the same reading: the store is not asked.
    let shared = get(&app, "/", &[]).await;
    assert!(
        shared.body.contains("1 succeeded, 4 failed"),
        "{}",
        shared.body
    );
    // An action of the console forgets it: the next overview reads the store.
    let (token, cookie) = csrf(&app, "/").await;
    let paused = post(
        &app,
        "/actions/pause",
        &format!("function=nothing%3A%3Ahere&csrf={token}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(paused.status, 303, "{}", paused.body);
    let again = get(&app, "/", &[]).await;
    assert!(
        again.body.contains("2 succeeded, 4 failed") || again.body.contains("6 succeeded"),
        "{}",
        again.body
    );
    // And a reading older than two seconds is read again.
    succeed_one(&store).await;
    let summary = |body: &str| {
        let end = body.find(" failed").expect("the chart's summary");
        let start = body[..end].rfind('>').map_or(0, |i| i + 1);
        body[start..end].to_string()
    };
    let before = summary(&again.body);
    assert_eq!(summary(&get(&app, "/", &[]).await.body), before);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let later = get(&app, "/", &[]).await;
    assert_ne!(summary(&later.body), before, "{}", later.body);

    // The part the script refreshes, alone.
    let live = get(&app, "/live", &[]).await;
    assert_eq!(live.status, 200);
    assert!(live.body.contains("billing::push_invoice") && !live.body.contains("<html"));
}

/// Stores a call of `mail::send` and records its success, now.
async fn succeed_one(store: &retry_runtime::durable::Store) {
    let b = store.backend();
    let now = std::time::SystemTime::now();
    b.enqueue(
        vec![retry_runtime::durable::NewCall::new("mail::send", "[]")],
        now,
    )
    .await
    .unwrap();
    let claims = b
        .claim(
            "w",
            &["mail::send".to_string()],
            10,
            std::time::Duration::from_secs(30),
            now,
        )
        .await
        .unwrap();
    for claim in claims {
        b.complete(claim.record.cid, claim.fence, 1, now, now)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn every_answer_carries_the_security_headers() {
    let (store, _dir) = sqlite_store().await;
    let app = app(&store, ConsoleConfig::default());
    for uri in ["/", "/calls", "/assets/console.css", "/no/such/page"] {
        let answer = get(&app, uri, &[]).await;
        let csp = answer.headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("default-src 'none'") && csp.contains("script-src 'self'"),
            "{uri}"
        );
        assert!(csp.contains("frame-ancestors 'none'") && csp.contains("form-action 'self'"));
        assert_eq!(answer.headers["x-content-type-options"], "nosniff");
        assert_eq!(answer.headers["referrer-policy"], "no-referrer");
    }
    assert_eq!(get(&app, "/no/such/page", &[]).await.status, 404);
    let css = get(&app, "/assets/console.css", &[]).await;
    assert_eq!(css.status, 200);
    assert!(css.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/css"));
    let js = get(&app, "/assets/refresh.js", &[]).await;
    assert!(js.body.contains("setTimeout"));
}

#[tokio::test]
async fn the_list_filters_sorts_and_pages() {
    let (store, seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());

    let dead = get(
        &app,
        "/calls?state=dead&function=billing::push_invoice",
        &[],
    )
    .await;
    assert_eq!(dead.status, 200);
    for cid in &seeded.dead {
        assert!(dead.body.contains(&cid.to_string()));
    }
    assert!(!dead.body.contains(&seeded.pending[0].to_string()));
    assert!(dead.body.contains("Requeue the matching calls"));

    // Text in the arguments, whatever the case; text in an error.
    let by_text = get(&app, "/calls?text=USER2%40example", &[]).await;
    assert!(by_text.body.contains(&seeded.pending[2].to_string()));
    assert!(!by_text.body.contains(&seeded.pending[1].to_string()));
    let by_error = get(&app, "/calls?text=ConnectionRefused", &[]).await;
    assert_eq!(
        by_error.body.matches("class=\"cid\"").count(),
        2,
        "{}",
        by_error.body
    );

    // A call's ID selects it.
    let one = get(&app, &format!("/calls?cid={}", seeded.parent), &[]).await;
    assert_eq!(one.body.matches("class=\"cid\"").count(), 1);

    // Keyset pages of 3: 9 calls in 3 pages, each call once.
    let mut seen = std::collections::BTreeSet::new();
    let mut uri = "/calls?limit=3&sort=updated-asc".to_string();
    for _ in 0..10 {
        let page = get(&app, &uri, &[]).await;
        assert_eq!(page.status, 200);
        for part in page.body.split("class=\"cid\" href=\"/calls/").skip(1) {
            assert!(seen.insert(part[..26].to_string()), "a call shown twice");
        }
        match page.body.find("rel=\"next\" href=\"") {
            Some(at) => {
                let rest = &page.body[at + 17..];
                uri = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
            }
            None => break,
        }
    }
    assert_eq!(seen.len(), 9);

    // By due time: only calls with one (the 4 pending and the waiting one).
    let due = get(&app, "/calls?sort=due-asc", &[]).await;
    assert_eq!(due.body.matches("class=\"cid\"").count(), 5);

    // Time range: everything changed in the last hour, nothing before.
    let recent = get(&app, "/calls?since=1h", &[]).await;
    assert_eq!(recent.body.matches("class=\"cid\"").count(), 9);
    let old = get(&app, "/calls?until=2000-01-01T00:00:00Z", &[]).await;
    assert!(old.body.contains("No calls match"));

    for bad in [
        "/calls?state=finished",
        "/calls?cid=nope",
        "/calls?since=yesterday",
        "/calls?sort=x",
        "/calls?after=1.x",
    ] {
        assert_eq!(get(&app, bad, &[]).await.status, 400, "{bad}");
    }
}

#[tokio::test]
async fn a_call_shows_every_field_its_arguments_its_tree_and_stored_html_as_text() {
    let (store, seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    let page = get(&app, &format!("/calls/{}", seeded.dead[0]), &[]).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    for field in [
        "attempts",
        "created",
        "last attempt",
        "dead reason",
        "policy exhausted",
        "fence",
    ] {
        assert!(body.contains(field), "{field}");
    }
    // Pretty JSON, escaped.
    assert!(body.contains("&quot;invoice&quot;: 0"), "{body}");
    assert!(body.contains("&lt;b&gt;bold&lt;/b&gt;"));
    // The stored error is text.
    assert!(body.contains("&lt;img src=x onerror="), "{body}");
    assert!(body.contains("&lt;script&gt;"));
    assert!(!body.contains(XSS) && !body.contains("<img") && !body.contains("<script>"));
    assert!(body.contains("id=\"requeue\""));

    // The parent links to its child, the child to its parent.
    let parent = get(&app, &format!("/calls/{}", seeded.parent), &[]).await;
    assert!(parent
        .body
        .contains(&format!("href=\"/calls/{}\"", seeded.child)));
    let child = get(&app, &format!("/calls/{}", seeded.child), &[]).await;
    assert!(child
        .body
        .contains(&format!("href=\"/calls/{}\"", seeded.parent)));
    assert!(child.body.contains("id=\"cancel\"") && !child.body.contains("id=\"requeue\""));

    assert_eq!(get(&app, "/calls/not-an-id", &[]).await.status, 400);
    let unknown = retry_runtime::CorrelationId::new();
    assert_eq!(
        get(&app, &format!("/calls/{unknown}"), &[]).await.status,
        404
    );
}

/// The CSRF token and cookie from a page with a form.
async fn csrf(app: &Router, uri: &str) -> (String, String) {
    let page = get(app, uri, &[]).await;
    let cookie = pair(&page.cookie("retry_console_csrf").expect("the CSRF cookie"));
    assert!(page
        .cookie("retry_console_csrf")
        .unwrap()
        .contains("SameSite=Strict"));
    (page.csrf(), cookie)
}

#[tokio::test]
async fn requeue_and_cancel_are_post_only_and_need_the_csrf_token() {
    let (store, seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    let dead = seeded.dead[1];
    let (token, cookie) = csrf(&app, &format!("/calls/{dead}")).await;
    let uri = format!("/calls/{dead}/requeue");

    assert_eq!(get(&app, &uri, &[]).await.status, 405, "GET does not act");
    // No token, a wrong one, the token without its cookie: refused, nothing changed.
    for (form, headers) in [
        (String::new(), vec![("cookie", cookie.as_str())]),
        ("csrf=forged".to_string(), vec![("cookie", cookie.as_str())]),
        (format!("csrf={token}"), vec![]),
    ] {
        assert_eq!(post(&app, &uri, &form, &headers).await.status, 403);
    }
    assert_eq!(
        store.get(dead).await.unwrap().unwrap().state,
        CallState::Dead
    );

    let done = post(&app, &uri, &format!("csrf={token}"), &[("cookie", &cookie)]).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), format!("/calls/{dead}"));
    assert_eq!(
        store.get(dead).await.unwrap().unwrap().state,
        CallState::Pending
    );

    // Again: the call is no longer dead.
    let again = post(&app, &uri, &format!("csrf={token}"), &[("cookie", &cookie)]).await;
    assert_eq!(again.status, 409);

    let pending = seeded.pending[0];
    let cancelled = post(
        &app,
        &format!("/calls/{pending}/cancel"),
        &format!("csrf={token}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(cancelled.status, 303);
    assert_eq!(
        store.get(pending).await.unwrap().unwrap().state,
        CallState::Cancelled
    );
}

#[tokio::test]
async fn bulk_actions_show_the_count_then_act_on_post() {
    let (store, seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    let filter = "function=billing%3A%3Apush_invoice&state=dead";
    let confirm = get(&app, &format!("/actions/bulk?action=requeue&{filter}"), &[]).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("<strong id=\"count\">3</strong>"),
        "{}",
        confirm.body
    );
    assert_eq!(
        store.stats().await.unwrap().count_state(CallState::Dead),
        3,
        "nothing done yet"
    );
    let (token, cookie) = (
        confirm.csrf(),
        pair(&confirm.cookie("retry_console_csrf").unwrap()),
    );

    // An action the state does not allow is refused.
    let wrong = get(&app, &format!("/actions/bulk?action=cancel&{filter}"), &[]).await;
    assert_eq!(wrong.status, 400);
    assert_eq!(
        get(&app, "/actions/bulk?action=requeue", &[]).await.status,
        400
    );

    let forged = post(
        &app,
        "/actions/bulk",
        &format!("action=requeue&{filter}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(forged.status, 403);
    let done = post(
        &app,
        "/actions/bulk",
        &format!("action=requeue&csrf={token}&{filter}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("3 calls requeued"), "{}", done.body);
    for cid in &seeded.dead {
        assert_eq!(
            store.get(*cid).await.unwrap().unwrap().state,
            CallState::Pending
        );
    }

    // Cancel every pending call of mail::send.
    let done = post(
        &app,
        "/actions/bulk",
        &format!("action=cancel&csrf={token}&function=mail%3A%3Asend&state=pending"),
        &[("cookie", &cookie)],
    )
    .await;
    assert!(done.body.contains("4 calls cancelled"), "{}", done.body);
}

#[tokio::test]
async fn purge_counts_then_deletes() {
    let (store, _seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    assert_eq!(get(&app, "/actions", &[]).await.status, 200);
    let confirm = get(&app, "/actions/purge?state=dead&older_than=0s", &[]).await;
    assert_eq!(confirm.status, 200);
    assert!(
        confirm.body.contains("<strong id=\"count\">3</strong>"),
        "{}",
        confirm.body
    );
    assert_eq!(
        get(&app, "/actions/purge?state=pending&older_than=0s", &[])
            .await
            .status,
        400
    );
    let cookie = pair(&confirm.cookie("retry_console_csrf").unwrap());
    let done = post(
        &app,
        "/actions/purge",
        &format!("state=dead&older_than=0s&csrf={}", confirm.csrf()),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(done.status, 200);
    assert!(done.body.contains("3 dead calls purged"));
    assert_eq!(store.stats().await.unwrap().count_state(CallState::Dead), 0);
}

#[tokio::test]
async fn read_only_serves_no_action() {
    let (store, seeded, _dir) = seeded().await;
    let app = app(
        &store,
        ConsoleConfig {
            read_only: true,
            ..ConsoleConfig::default()
        },
    );
    let page = get(&app, &format!("/calls/{}", seeded.dead[0]), &[]).await;
    assert_eq!(page.status, 200);
    assert!(!page.body.contains("<form method=\"post\"") && !page.body.contains("id=\"requeue\""));
    let list = get(&app, "/calls?state=dead", &[]).await;
    assert!(!list.body.contains("Requeue the matching"));
    assert!(!get(&app, "/", &[]).await.body.contains("href=\"/actions\""));
    for uri in [
        format!("/calls/{}/requeue", seeded.dead[0]),
        format!("/calls/{}/cancel", seeded.pending[0]),
    ] {
        let status = post(&app, &uri, "csrf=x", &[]).await.status;
        assert!(status == 404 || status == 405, "{uri}: {status}");
    }
    for uri in [
        "/actions",
        "/actions/bulk?action=requeue&state=dead",
        "/actions/purge?state=dead&older_than=1s",
    ] {
        assert_eq!(get(&app, uri, &[]).await.status, 404, "{uri}");
    }
    assert_eq!(
        post(&app, "/actions/bulk", "action=requeue&state=dead", &[])
            .await
            .status,
        404
    );
    assert_eq!(store.stats().await.unwrap().count_state(CallState::Dead), 3);
}

#[tokio::test]
async fn a_token_is_asked_by_header_or_login_cookie_never_in_the_url() {
    let (store, _seeded, _dir) = seeded().await;
    let config = ConsoleConfig {
        token: Some("s3cret-token".into()),
        ..ConsoleConfig::default()
    };
    let app = app(&store, config);

    let refused = get(&app, "/", &[]).await;
    assert_eq!(refused.status, 401);
    assert!(refused.body.contains("Log in") && !refused.body.contains("billing::push_invoice"));
    assert!(refused.headers["content-security-policy"].to_str().is_ok());
    assert_eq!(
        get(&app, "/calls?token=s3cret-token", &[]).await.status,
        401
    );
    assert_eq!(
        get(&app, "/", &[("authorization", "Bearer wrong")])
            .await
            .status,
        401
    );
    assert_eq!(post(&app, "/actions/bulk", "", &[]).await.status, 401);

    let ok = get(&app, "/", &[("authorization", "Bearer s3cret-token")]).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("billing::push_invoice"));
    assert!(
        !ok.body.contains("s3cret-token"),
        "the token never shows on a page"
    );

    // The login form: CSRF-checked, a wrong token refused, the right one sets the cookie.
    let form = get(&app, "/login", &[]).await;
    assert_eq!(form.status, 200);
    let cookie = pair(&form.cookie("retry_console_csrf").unwrap());
    let csrf = form.csrf();
    assert_eq!(
        post(&app, "/login", "token=s3cret-token", &[("cookie", &cookie)])
            .await
            .status,
        403
    );
    let wrong = post(
        &app,
        "/login",
        &format!("token=nope&csrf={csrf}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(wrong.status, 401);
    let login = post(
        &app,
        "/login",
        &format!("token=s3cret-token&csrf={csrf}"),
        &[("cookie", &cookie)],
    )
    .await;
    assert_eq!(login.status, 303);
    let session = login.cookie("retry_console_session").unwrap();
    assert!(
        session.contains("HttpOnly") && session.contains("SameSite=Strict"),
        "{session}"
    );
    assert!(
        !session.contains("s3cret-token"),
        "the cookie is not the token"
    );
    let with_cookie = get(&app, "/calls", &[("cookie", &pair(&session))]).await;
    assert_eq!(with_cookie.status, 200);
    assert_eq!(
        get(
            &app,
            "/calls",
            &[("cookie", "retry_console_session=forged")]
        )
        .await
        .status,
        401
    );
}

#[tokio::test]
async fn the_host_application_authorizes_and_nests_the_console() {
    let (store, seeded, _dir) = seeded().await;
    let config = ConsoleConfig {
        base_path: "/admin/retry".into(),
        authorize: Some(Arc::new(|parts: &axum::http::request::Parts| {
            parts.headers.get("x-user").is_some_and(|u| u == "ops")
        })),
        ..ConsoleConfig::default()
    };
    let app = Router::new().nest("/admin/retry", app(&store, config));
    assert_eq!(get(&app, "/admin/retry", &[]).await.status, 403);
    let page = get(&app, "/admin/retry", &[("x-user", "ops")]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("href=\"/admin/retry/calls?function="));
    assert!(page
        .body
        .contains("href=\"/admin/retry/assets/console.css\""));
    assert!(page.body.contains("class=\"brand\" href=\"/admin/retry\""));
    assert!(page
        .cookie("retry_console_csrf")
        .unwrap()
        .contains("Path=/admin/retry/"));
    let call = get(
        &app,
        &format!("/admin/retry/calls/{}", seeded.dead[0]),
        &[("x-user", "ops")],
    )
    .await;
    assert_eq!(call.status, 200);
    assert!(call.body.contains(&format!(
        "action=\"/admin/retry/calls/{}/requeue\"",
        seeded.dead[0]
    )));
}

#[tokio::test]
async fn the_pages_on_postgresql() {
    let Some((store, admin, schema)) = common::postgres_store().await else {
        return;
    };
    let seeded = seed(&store).await;
    let app = app(&store, ConsoleConfig::default());

    let overview = get(&app, "/", &[]).await;
    assert_eq!(overview.status, 200, "{}", overview.body);
    assert!(
        overview.body.contains("1 succeeded, 4 failed"),
        "{}",
        overview.body
    );
    let dead = get(&app, "/calls?state=dead&text=connectionrefused", &[]).await;
    assert_eq!(dead.status, 200, "{}", dead.body);
    assert_eq!(dead.body.matches("class=\"cid\"").count(), 2);
    let mut seen = std::collections::BTreeSet::new();
    let mut uri = "/calls?limit=4".to_string();
    loop {
        let page = get(&app, &uri, &[]).await;
        for part in page.body.split("class=\"cid\" href=\"/calls/").skip(1) {
            assert!(seen.insert(part[..26].to_string()));
        }
        let Some(at) = page.body.find("rel=\"next\" href=\"") else {
            break;
        };
        let rest = &page.body[at + 17..];
        uri = rest[..rest.find('"').unwrap()].replace("&amp;", "&");
    }
    assert_eq!(seen.len(), 9);
    let parent = get(&app, &format!("/calls/{}", seeded.parent), &[]).await;
    assert!(parent.body.contains(&seeded.child.to_string()));
    let confirm = get(&app, "/actions/bulk?action=requeue&state=dead", &[]).await;
    assert!(confirm.body.contains("<strong id=\"count\">3</strong>"));
    common::drop_schema(&admin, &schema).await;
}

#[tokio::test]
async fn the_overview_pauses_and_resumes_a_function_with_the_csrf_token() {
    let (store, _seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    let (token, cookie) = csrf(&app, "/").await;
    let overview = get(&app, "/", &[]).await;
    assert!(
        overview.body.contains("action=\"/actions/pause\""),
        "a pause button per function"
    );
    assert!(!overview.body.contains("action=\"/actions/resume\""));

    let form = format!("function=mail%3A%3Asend&csrf={token}");
    // No token, a wrong one, the token without its cookie: refused, nothing paused.
    for (body, headers) in [
        (
            "function=mail%3A%3Asend".to_string(),
            vec![("cookie", cookie.as_str())],
        ),
        (
            "function=mail%3A%3Asend&csrf=forged".to_string(),
            vec![("cookie", cookie.as_str())],
        ),
        (form.clone(), vec![]),
    ] {
        assert_eq!(
            post(&app, "/actions/pause", &body, &headers).await.status,
            403
        );
    }
    assert!(store.paused().await.unwrap().is_empty());
    assert_eq!(get(&app, "/actions/pause", &[]).await.status, 405);

    let done = post(&app, "/actions/pause", &form, &[("cookie", &cookie)]).await;
    assert_eq!(done.status, 303);
    assert_eq!(done.location(), "/");
    let paused = store.paused().await.unwrap();
    assert_eq!(paused.len(), 1);
    assert_eq!(
        (paused[0].function.as_str(), paused[0].paused_by.as_str()),
        ("mail::send", "console")
    );
    let live = get(&app, "/live", &[]).await;
    assert!(live.body.contains("tr class=\"paused\""), "{}", live.body);
    assert!(live.body.contains("action=\"/actions/resume\""));
    let names = ["mail::send".to_owned()];
    let lease = std::time::Duration::from_secs(30);
    assert!(store
        .claim("w", &names, 10, lease)
        .await
        .unwrap()
        .is_empty());

    // A second click (another operator's) changes nothing and is no error.
    let again = post(&app, "/actions/pause", &form, &[("cookie", &cookie)]).await;
    assert_eq!(again.status, 303);

    let resumed = post(&app, "/actions/resume", &form, &[("cookie", &cookie)]).await;
    assert_eq!(resumed.status, 303);
    assert!(store.paused().await.unwrap().is_empty());
    assert!(!store
        .claim("w", &names, 10, lease)
        .await
        .unwrap()
        .is_empty());
    assert!(!get(&app, "/live", &[])
        .await
        .body
        .contains("tr class=\"paused\""));

    // Read-only: the state is shown, no button, no route.
    store.pause("mail::send", "ops").await.unwrap();
    let read_only = self::app(
        &store,
        ConsoleConfig {
            read_only: true,
            ..ConsoleConfig::default()
        },
    );
    let page = get(&read_only, "/", &[]).await;
    assert!(page.body.contains("paused"));
    assert!(!page.body.contains("/actions/pause") && !page.body.contains("/actions/resume"));
    for uri in ["/actions/pause", "/actions/resume"] {
        let status = post(&read_only, uri, &form, &[("cookie", &cookie)])
            .await
            .status;
        assert!(status == 404 || status == 405, "{uri}: {status}");
    }
    assert_eq!(store.paused().await.unwrap().len(), 1);
}

#[tokio::test]
async fn the_workers_page_shows_live_gone_and_stopped_workers_with_the_calls_gone_ones_hold() {
    use retry_runtime::durable::{NewCall, NewWorker};
    use std::time::{Duration, SystemTime};

    let (store, _dir) = sqlite_store().await;
    let b = store.backend();
    let now = SystemTime::now();
    let every = Duration::from_secs(5);
    let ago = |secs| now - Duration::from_secs(secs);

    // Live: registered a minute ago, its latest heartbeat 2 s ago with 3 calls running; its
    // host is stored text that must not run.
    let mut live = NewWorker::new("live-worker", ago(60), every);
    live.host = XSS.to_owned();
    b.register_worker(&live, ago(60)).await.unwrap();
    assert!(b.worker_heartbeat("live-worker", 3, ago(2)).await.unwrap());
    // Gone: silent for 40 s (more than 3 intervals), still holding the call it claimed.
    let gone = NewWorker::new("gone-worker", ago(120), every);
    b.register_worker(&gone, ago(40)).await.unwrap();
    let call = NewCall::new("mail::send", "[]");
    let held = call.cid;
    b.enqueue(vec![call], ago(50)).await.unwrap();
    let claims = b
        .claim(
            "gone-worker",
            &["mail::send".to_string()],
            1,
            Duration::from_secs(30),
            ago(45),
        )
        .await
        .unwrap();
    assert_eq!(claims.len(), 1);
    // Stopped: shut down cleanly 10 s ago.
    let stopped = NewWorker::new("stopped-worker", ago(300), every);
    b.register_worker(&stopped, ago(300)).await.unwrap();
    assert!(b.worker_stopped("stopped-worker", ago(10)).await.unwrap());

    let app = app(&store, ConsoleConfig::default());
    let page = get(&app, "/workers", &[]).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    assert!(
        body.contains("href=\"/workers\""),
        "in the navigation: {body}"
    );
    for heading in ["Live (1)", "Gone (1)", "Stopped (1)"] {
        assert!(body.contains(heading), "{heading}: {body}");
    }
    let section = |from: &str, to: &str| -> String {
        let start = body.find(from).unwrap();
        let end = body[start..].find(to).map_or(body.len(), |e| start + e);
        body[start..end].to_owned()
    };
    let live_part = section("Live (1)", "Gone (1)");
    assert!(live_part.contains("live-worker"), "{live_part}");
    assert!(
        live_part.contains(&format!(">{}<", std::process::id())),
        "the pid"
    );
    assert!(live_part.contains(">3<"), "3 calls running: {live_part}");
    assert!(
        live_part.contains("2s ago") || live_part.contains("3s ago"),
        "the heartbeat's age: {live_part}"
    );
    assert!(!live_part.contains("gone-worker") && !live_part.contains("stopped-worker"));
    let gone_part = section("Gone (1)", "Stopped (1)");
    assert!(gone_part.contains("gone-worker"), "{gone_part}");
    assert!(
        gone_part.contains("40s ago") || gone_part.contains("41s ago"),
        "{gone_part}"
    );
    assert!(
        gone_part.contains(&format!("href=\"/calls/{held}\"")),
        "the call it holds, linked: {gone_part}"
    );
    let stopped_part = section("Stopped (1)", "</main>");
    assert!(stopped_part.contains("stopped-worker"), "{stopped_part}");
    // Stored text is shown as text.
    assert!(!body.contains(XSS), "{body}");
    assert!(body.contains("&lt;"), "{body}");

    // The part the script refreshes, alone; the held call's page exists.
    let fragment = get(&app, "/workers/live", &[]).await;
    assert_eq!(fragment.status, 200);
    assert!(fragment.body.contains("gone-worker") && !fragment.body.contains("<html"));
    let call_page = get(&app, &format!("/calls/{held}"), &[]).await;
    assert_eq!(call_page.status, 200);
    assert!(call_page.body.contains("gone-worker"), "its worker");
}

#[tokio::test]
async fn the_workers_page_on_postgresql() {
    use retry_runtime::durable::NewWorker;
    use std::time::{Duration, SystemTime};

    let Some((store, admin, schema)) = common::postgres_store().await else {
        return;
    };
    let now = SystemTime::now();
    let b = store.backend();
    b.register_worker(&NewWorker::new("pg-live", now, Duration::from_secs(5)), now)
        .await
        .unwrap();
    assert!(b.worker_heartbeat("pg-live", 7, now).await.unwrap());
    let old = now - Duration::from_secs(600);
    b.register_worker(&NewWorker::new("pg-gone", old, Duration::from_secs(5)), old)
        .await
        .unwrap();
    let app = app(&store, ConsoleConfig::default());
    let page = get(&app, "/workers", &[]).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains("Live (1)") && page.body.contains("Gone (1)"));
    let gone_at = page.body.find("Gone (1)").unwrap();
    assert!(page.body[..gone_at].contains("pg-live") && page.body[..gone_at].contains(">7<"));
    assert!(page.body[gone_at..].contains("pg-gone") && page.body[gone_at..].contains("10m 0"));
    common::drop_schema(&admin, &schema).await;
}

// == The attempt history and the audit ==

#[tokio::test]
async fn a_call_page_lists_every_attempt_with_its_worker_and_its_error_as_text() {
    let (store, seeded, _dir) = seeded().await;
    let app = app(&store, ConsoleConfig::default());
    let page = get(&app, &format!("/calls/{}", seeded.dead[0]), &[]).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    let table = &body[body.find("id=\"attempts\"").expect("the attempts table")..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(
        table.matches("<tr>").count(),
        2,
        "a header and one attempt: {table}"
    );
    assert!(table.contains("<code>worker-1</code>"), "{table}");
    assert!(table.contains("class=\"outcome dead\""), "{table}");
    assert!(
        table.contains("0ms"),
        "the seeded attempt took no time: {table}"
    );
    // The attempt's error is the stored XSS, shown as text.
    assert!(table.contains("&lt;img src=x onerror="), "{table}");
    assert!(!body.contains("<img") && !body.contains("<script>"));

    // The child failed once under worker-2 and waits.
    let child = get(&app, &format!("/calls/{}", seeded.child), &[]).await;
    assert!(
        child.body.contains("class=\"outcome failed\""),
        "{}",
        child.body
    );
    assert!(child.body.contains("<code>worker-2</code>"));
    // A pending call has none yet.
    let pending = get(&app, &format!("/calls/{}", seeded.pending[0]), &[]).await;
    assert!(pending.body.contains("None recorded") && !pending.body.contains("id=\"attempts\""));
}

/// The audit's rows, as (actor, action, target, count), newest first.
async fn audited(store: &Store) -> Vec<(String, String, String, u64)> {
    store
        .audit(None, 100)
        .await
        .unwrap()
        .into_iter()
        .map(|r| (r.entry.actor, r.entry.action, r.entry.target, r.entry.count))
        .collect()
}

#[tokio::test]
async fn every_action_is_audited_with_its_actor_and_listed_newest_first() {
    let (store, seeded, _dir) = seeded().await;
    let config = ConsoleConfig {
        actor: Some(Arc::new(|parts: &axum::http::request::Parts| {
            parts
                .headers
                .get("x-user")?
                .to_str()
                .ok()
                .map(|u| format!("sso:{u}"))
        })),
        ..ConsoleConfig::default()
    };
    let app = app(&store, config);
    let dead = seeded.dead[1];
    let (token, cookie) = csrf(&app, &format!("/calls/{dead}")).await;
    let alice = [("cookie", cookie.as_str()), ("x-user", "alice")];
    let s = |t: &str| t.to_owned();

    // Refused requests record nothing.
    let forged = post(
        &app,
        &format!("/calls/{dead}/requeue"),
        "csrf=forged",
        &alice,
    )
    .await;
    assert_eq!(forged.status, 403);
    assert!(audited(&store).await.is_empty());

    let form = format!("csrf={token}");
    let requeued = post(&app, &format!("/calls/{dead}/requeue"), &form, &alice).await;
    assert_eq!(requeued.status, 303);
    // Again: nothing changes (409), and the attempt is recorded with the count 0.
    let again = post(&app, &format!("/calls/{dead}/requeue"), &form, &alice).await;
    assert_eq!(again.status, 409);
    // Without the header, the console's own name.
    let anonymous = [("cookie", cookie.as_str())];
    let pending = seeded.pending[0];
    let cancelled = post(&app, &format!("/calls/{pending}/cancel"), &form, &anonymous).await;
    assert_eq!(cancelled.status, 303);
    let bulk = post(
        &app,
        "/actions/bulk",
        &format!("action=cancel&csrf={token}&function=mail%3A%3Asend&state=pending"),
        &alice,
    )
    .await;
    assert_eq!(bulk.status, 200);
    assert!(bulk.body.contains("3 calls cancelled"), "{}", bulk.body);
    let purge = post(
        &app,
        "/actions/purge",
        &format!("state=cancelled&older_than=0s&csrf={token}"),
        &alice,
    )
    .await;
    assert_eq!(purge.status, 200);
    assert!(
        purge.body.contains("4 cancelled calls purged"),
        "{}",
        purge.body
    );
    let pause = format!("function=mail%3A%3Asend&csrf={token}");
    assert_eq!(
        post(&app, "/actions/pause", &pause, &alice).await.status,
        303
    );
    assert_eq!(store.paused().await.unwrap()[0].paused_by, "sso:alice");
    assert_eq!(
        post(&app, "/actions/resume", &pause, &alice).await.status,
        303
    );

    assert_eq!(
        audited(&store).await,
        [
            (s("sso:alice"), s("resume"), s("mail::send"), 1),
            (s("sso:alice"), s("pause"), s("mail::send"), 1),
            (
                s("sso:alice"),
                s("purge"),
                s("state=cancelled older_than=0s"),
                4
            ),
            (
                s("sso:alice"),
                s("cancel"),
                s("function=mail::send state=pending"),
                3
            ),
            (s("console"), s("cancel"), pending.to_string(), 1),
            (s("sso:alice"), s("requeue"), dead.to_string(), 0),
            (s("sso:alice"), s("requeue"), dead.to_string(), 1),
        ]
    );

    audit_page_lists(&app, dead).await;
}

/// The audit page of the actions above: linked from every page, newest first, calls as
/// links.
async fn audit_page_lists(app: &Router, dead: retry_runtime::CorrelationId) {
    let overview = get(app, "/", &[]).await;
    assert!(
        overview.body.contains("href=\"/audit\""),
        "{}",
        overview.body
    );
    let page = get(app, "/audit", &[]).await;
    assert_eq!(page.status, 200);
    let body = &page.body;
    let rows = body.matches("<tr>").count();
    assert_eq!(rows, 8, "a header and 7 records: {body}");
    let newest = body.find("resume").unwrap();
    let oldest = body.rfind("requeue").unwrap();
    assert!(newest < body.find("purge").unwrap() && body.find("purge").unwrap() < oldest);
    assert!(body.contains(&format!("href=\"/calls/{dead}\"")), "{body}");
    assert!(body.contains("<code>sso:alice</code>") && body.contains("<code>console</code>"));
    assert!(!body.contains("id=\"older\""), "one page");
}

#[tokio::test]
async fn the_audit_page_pages_by_keyset_and_shows_stored_text_as_text() {
    let (store, _dir) = sqlite_store().await;
    for n in 0..120_u64 {
        let actor = if n == 119 {
            XSS.to_owned()
        } else {
            format!("cli:user{n}")
        };
        store
            .record_audit(retry_runtime::durable::AuditEntry::new(
                actor,
                "purge",
                "state=dead",
                n,
            ))
            .await
            .unwrap();
    }
    // Read-only consoles show the audit too.
    let read_only = ConsoleConfig {
        read_only: true,
        ..ConsoleConfig::default()
    };
    let app = app(&store, read_only);
    let mut uri = "/audit".to_string();
    let mut counts = Vec::new();
    for _ in 0..5 {
        let page = get(&app, &uri, &[]).await;
        assert_eq!(page.status, 200);
        assert!(!page.body.contains("<img") && !page.body.contains("<script>"));
        let body = &page.body;
        let table_rows = body.matches("<tr>").count().saturating_sub(1);
        counts.push(table_rows);
        match body.find("id=\"older\"") {
            Some(at) => {
                let rest = &body[at..];
                let rest = &rest[rest.find("href=\"").unwrap() + 6..];
                uri = rest[..rest.find('"').unwrap()].to_owned();
            }
            None => break,
        }
    }
    assert_eq!(counts, [50, 50, 20]);
    let first = get(&app, "/audit", &[]).await;
    assert!(
        first.body.contains("&lt;img src=x onerror="),
        "{}",
        first.body
    );
    assert!(first.body.contains("cli:user118") && !first.body.contains("cli:user68<"));
    let last = get(&app, &uri, &[]).await;
    assert!(last.body.contains("<code>cli:user0</code>") && !last.body.contains("cli:user20<"));
    assert_eq!(get(&app, "/audit?before=x", &[]).await.status, 400);
}
