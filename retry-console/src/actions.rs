//! The actions: requeue and cancel one call; the same in bulk over a filter, and purge, each
//! after a confirmation page that shows how many calls it touches; pause and resume a
//! function (the overview's buttons). POST only, CSRF-checked;
//! a read-only console has none of these routes. Each action done is recorded in the store's
//! audit, with the request's actor (a pause and a resume by the store itself).

use std::time::{Duration, SystemTime};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Extension, Form, Router};
use maud::html;
use retry_runtime::durable::{CallFilter, CallQuery, CallSort, CallState, Store, StoreError};
use serde::Deserialize;

use crate::audit::{self, Actor};
use crate::call::parse_cid;
use crate::calls::{bulk_action, link, FilterParams};
use crate::layout::{page, problem, store_failed, Flash};
use crate::security::{check_csrf, csrf_field};
use crate::Console;

/// Calls acted on at once by a bulk action (the SQLite writer commits them together).
const BULK_PAGE: usize = 500;

pub(crate) fn routes() -> Router<Console> {
    Router::new()
        .route("/calls/{cid}/requeue", post(requeue))
        .route("/calls/{cid}/cancel", post(cancel))
        .route("/actions", get(actions))
        .route("/actions/bulk", get(confirm_bulk).post(bulk))
        .route("/actions/purge", get(confirm_purge).post(purge))
        .route("/actions/pause", post(pause))
        .route("/actions/resume", post(resume))
}

#[derive(Deserialize)]
struct FunctionForm {
    #[serde(default)]
    function: String,
    #[serde(default)]
    csrf: String,
}

async fn pause(
    State(console): State<Console>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    Form(form): Form<FunctionForm>,
) -> Response {
    pause_or_resume(&console, &actor, &headers, &form, true).await
}

async fn resume(
    State(console): State<Console>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    Form(form): Form<FunctionForm>,
) -> Response {
    pause_or_resume(&console, &actor, &headers, &form, false).await
}

/// Pauses or resumes the form's function, then back to the overview (pausing a paused
/// function, or resuming a running one, changes nothing and is no error: two operators
/// clicked). The store records who paused it, and the audit record.
async fn pause_or_resume(
    console: &Console,
    actor: &Actor,
    headers: &HeaderMap,
    form: &FunctionForm,
    pause: bool,
) -> Response {
    if let Err(refused) = check_csrf(console, headers, &form.csrf) {
        return refused;
    }
    if form.function.is_empty() {
        return problem(console, StatusCode::BAD_REQUEST, "No function named.");
    }
    let store = console.store();
    let done = if pause {
        store.pause(&form.function, &actor.0).await
    } else {
        store.resume(&form.function, &actor.0).await
    };
    match done {
        Ok(_) => Redirect::to(&console.link("/")).into_response(),
        Err(e) => store_failed(console, &e),
    }
}

#[derive(Deserialize)]
struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

async fn requeue(
    State(console): State<Console>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    one(&console, &actor, &headers, &cid, &form.csrf, Act::Requeue).await
}

async fn cancel(
    State(console): State<Console>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    Path(cid): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> Response {
    one(&console, &actor, &headers, &cid, &form.csrf, Act::Cancel).await
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Act {
    Requeue,
    Cancel,
}

impl Act {
    fn parse(text: &str) -> Option<Act> {
        match text {
            "requeue" => Some(Act::Requeue),
            "cancel" => Some(Act::Cancel),
            _ => None,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Act::Requeue => "requeue",
            Act::Cancel => "cancel",
        }
    }

    async fn run(
        self,
        store: &Store,
        cid: retry_runtime::CorrelationId,
    ) -> Result<bool, StoreError> {
        match self {
            Act::Requeue => store.requeue(cid).await,
            Act::Cancel => store.cancel(cid).await,
        }
    }
}

/// Runs the action on one call, then records it (with the count 0 when it changed nothing).
async fn one(
    console: &Console,
    actor: &Actor,
    headers: &HeaderMap,
    cid: &str,
    csrf: &str,
    act: Act,
) -> Response {
    if let Err(refused) = check_csrf(console, headers, csrf) {
        return refused;
    }
    let cid = match parse_cid(console, cid) {
        Ok(cid) => cid,
        Err(bad) => return bad,
    };
    let store = console.store();
    let done = match act.run(store, cid).await {
        Ok(changed) => audit::record(store, actor, act.verb(), cid.to_string(), changed.into())
            .await
            .map(|()| changed),
        Err(e) => Err(e),
    };
    match done {
        Ok(true) => Redirect::to(&console.link(&format!("/calls/{cid}"))).into_response(),
        Ok(false) => problem(
            console,
            StatusCode::CONFLICT,
            &format!(
                "Call {cid} was not {}d: it is unknown or its state does not allow it \
                 (requeue: dead or cancelled; cancel: pending, waiting or running).",
                act.verb()
            ),
        ),
        Err(e) => store_failed(console, &e),
    }
}

async fn actions(State(console): State<Console>) -> Response {
    let body = html! {
        h1 { "Actions" }
        h2 { "In bulk" }
        p { "Filter the " a href=(console.link("/calls")) { "calls" } " by a state (and a function, a time, a text): the list then offers to requeue (dead, cancelled) or cancel (pending, waiting, running) every matching call, after showing how many." }
        p { "For instance: " a href=(link(&console, None, Some(CallState::Dead))) { "the dead calls" } "." }
        h2 { "Purge" }
        form.filter method="get" action=(console.link("/actions/purge")) {
            label { "Finished calls in state "
                select name="state" {
                    @for s in [CallState::Succeeded, CallState::Dead, CallState::Cancelled] {
                        option value=(s.as_str()) { (s.as_str()) }
                    }
                }
            }
            label { " unchanged for at least " input name="older_than" value="7d" size="6"; }
            button type="submit" { "Count them…" }
        }
    };
    page(&console, "Actions", &body).into_response()
}

#[derive(Deserialize)]
struct BulkParams {
    #[serde(default)]
    action: String,
    #[serde(default)]
    csrf: String,
    #[serde(flatten)]
    filter: FilterParams,
}

/// The action and the filter of a bulk request, checked: the filter names a state the action
/// applies to.
fn checked(console: &Console, params: &BulkParams) -> Result<(Act, CallFilter), Response> {
    let bad = |why: &str| problem(console, StatusCode::BAD_REQUEST, why);
    let act = Act::parse(&params.action).ok_or_else(|| bad("The action is requeue or cancel."))?;
    let filter = params
        .filter
        .to_filter(SystemTime::now())
        .map_err(|why| bad(&why))?;
    if bulk_action(filter.state) != Some(act.verb()) {
        return Err(bad(
            "A bulk action needs a state filter it applies to: requeue dead or cancelled \
             calls, cancel pending, waiting or running ones.",
        ));
    }
    Ok((act, filter))
}

async fn confirm_bulk(
    State(console): State<Console>,
    Query(params): Query<BulkParams>,
) -> Response {
    let (act, filter) = match checked(&console, &params) {
        Ok(checked) => checked,
        Err(bad) => return bad,
    };
    let count = match console.store().count_matching(&filter).await {
        Ok(count) => count,
        Err(e) => return store_failed(&console, &e),
    };
    let list = format!(
        "{}?{}",
        console.link("/calls"),
        params.filter.query_string()
    );
    let body = html! {
        h1 { "Confirm: " (act.verb()) " " (count) " calls" }
        p { "This will " (act.verb()) " " strong #count { (count) } " calls: "
            a href=(list) { "the calls the filter selects" } "." }
        @if count > 0 {
            form method="post" action=(console.link("/actions/bulk")) {
                (csrf_field(&console))
                input type="hidden" name="action" value=(act.verb());
                (params.filter.hidden_fields())
                button #confirm.danger type="submit" { "Yes, " (act.verb()) " them" }
                " "
                a href=(list) { "No, back to the list" }
            }
        }
    };
    page(&console, "Confirm", &body).into_response()
}

async fn bulk(
    State(console): State<Console>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    Form(params): Form<BulkParams>,
) -> Response {
    if let Err(refused) = check_csrf(&console, &headers, &params.csrf) {
        return refused;
    }
    let (act, filter) = match checked(&console, &params) {
        Ok(checked) => checked,
        Err(bad) => return bad,
    };
    let target = audit::describe(&filter);
    let store = console.store();
    let done = match run_bulk(store, act, filter).await {
        Ok(done) => done,
        Err(e) => return store_failed(&console, &e),
    };
    if let Err(e) = audit::record(store, &actor, act.verb(), target, done).await {
        return store_failed(&console, &e);
    }
    let list = format!(
        "{}?{}",
        console.link("/calls"),
        params.filter.query_string()
    );
    let body = html! {
        h1 { "Done" }
        (Flash::Done(format!("{} calls {}{}.", done, act.verb(), if act == Act::Cancel { "led" } else { "d" })))
        p { a href=(list) { "Back to the list" } }
    };
    page(&console, "Done", &body).into_response()
}

/// Acts on every call the filter selects, a page at a time (the calls acted on leave the
/// filter, whose state no longer matches them, so the first page is read again until it is
/// empty or nothing on it changes). Returns how many changed.
async fn run_bulk(store: &Store, act: Act, filter: CallFilter) -> Result<u64, StoreError> {
    let query = CallQuery {
        filter,
        sort: CallSort::UpdatedAsc,
        after: None,
        limit: BULK_PAGE,
    };
    let mut total = 0;
    loop {
        let page = store.browse(&query).await?;
        if page.calls.is_empty() {
            return Ok(total);
        }
        let mut tasks = tokio::task::JoinSet::new();
        for call in page.calls {
            let store = store.clone();
            tasks.spawn(async move { act.run(&store, call.cid).await });
        }
        let mut changed = 0;
        while let Some(result) = tasks.join_next().await {
            let done =
                result.map_err(|e| StoreError::Backend(format!("a bulk action failed: {e}")))??;
            changed += u64::from(done);
        }
        if changed == 0 {
            return Ok(total);
        }
        total += changed;
    }
}

#[derive(Deserialize)]
struct PurgeParams {
    #[serde(default)]
    state: String,
    #[serde(default)]
    older_than: String,
    #[serde(default)]
    csrf: String,
}

fn purge_checked(
    console: &Console,
    params: &PurgeParams,
) -> Result<(CallState, Duration), Response> {
    let bad = |why: String| problem(console, StatusCode::BAD_REQUEST, &why);
    let state: CallState = params.state.parse().map_err(|e| bad(format!("{e}")))?;
    if !state.is_finished() {
        return Err(bad(format!(
            "Only finished calls (succeeded, dead, cancelled) can be purged, not {state} ones."
        )));
    }
    let older_than = retry_duration::parse(params.older_than.trim()).map_err(bad)?;
    Ok((state, older_than))
}

async fn confirm_purge(
    State(console): State<Console>,
    Query(params): Query<PurgeParams>,
) -> Response {
    let (state, older_than) = match purge_checked(&console, &params) {
        Ok(checked) => checked,
        Err(bad) => return bad,
    };
    let filter = CallFilter {
        state: Some(state),
        until: SystemTime::now().checked_sub(older_than),
        ..CallFilter::default()
    };
    let count = match console.store().count_matching(&filter).await {
        Ok(count) => count,
        Err(e) => return store_failed(&console, &e),
    };
    let body = html! {
        h1 { "Confirm: purge " (count) " calls" }
        p { "This deletes " strong #count { (count) } " " (state.as_str()) " calls unchanged for at least " (params.older_than) ", for good." }
        @if count > 0 {
            form method="post" action=(console.link("/actions/purge")) {
                (csrf_field(&console))
                input type="hidden" name="state" value=(state.as_str());
                input type="hidden" name="older_than" value=(params.older_than);
                button #confirm.danger type="submit" { "Yes, purge them" }
            }
        }
    };
    page(&console, "Confirm", &body).into_response()
}

async fn purge(
    State(console): State<Console>,
    Extension(actor): Extension<Actor>,
    headers: HeaderMap,
    Form(params): Form<PurgeParams>,
) -> Response {
    if let Err(refused) = check_csrf(&console, &headers, &params.csrf) {
        return refused;
    }
    let (state, older_than) = match purge_checked(&console, &params) {
        Ok(checked) => checked,
        Err(bad) => return bad,
    };
    let store = console.store();
    let target = format!("state={state} older_than={}", params.older_than.trim());
    let done = match store.purge(state, older_than).await {
        Ok(n) => audit::record(store, &actor, "purge", target, n)
            .await
            .map(|()| n),
        Err(e) => Err(e),
    };
    match done {
        Ok(n) => page(
            &console,
            "Done",
            &html! {
                h1 { "Done" }
                (Flash::Done(format!("{n} {state} calls purged.")))
            },
        )
        .into_response(),
        Err(e) => store_failed(&console, &e),
    }
}
