//! Regression tests of known defects: each section names the defect it pins down and asserts
//! the correct behaviour. Deterministic: sync waits on `testing::instant_sleeps`, async ones on
//! tokio's paused clock, and what the runtime logs through a recording subscriber.
use retry_runtime::{current_cid, retry, testing, CorrelationId, Reason, Report};
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::time::Instant;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// ---------------------------------------------------------------- helpers

#[derive(Debug, Clone, PartialEq)]
struct E(u32);

type Reports = RefCell<Vec<Report<E>>>;

/// Counts an attempt and returns its number.
fn tick(calls: &Cell<u32>) -> u32 {
    calls.set(calls.get() + 1);
    calls.get()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

type Fields = BTreeMap<String, String>;

struct FieldVisitor<'a>(&'a mut Fields);

impl Visit for FieldVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().to_string(), value.to_string());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().to_string(), format!("{value:?}"));
    }
}

/// What the recording subscriber saw.
#[derive(Debug, Clone)]
enum Rec {
    Span {
        name: String,
        target: String,
    },
    Event {
        level: Level,
        target: String,
        fields: Fields,
    },
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Rec>>>);

impl Recorder {
    fn push(&self, r: Rec) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(r);
    }
    fn take(&self) -> Vec<Rec> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, _id: &Id, _ctx: Context<'_, S>) {
        self.push(Rec::Span {
            name: attrs.metadata().name().to_string(),
            target: attrs.metadata().target().to_string(),
        });
    }

    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.push(Rec::Event {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
        });
    }
}

/// Runs `f` with the recorder as this thread's subscriber.
fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Rec>) {
    let rec = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(rec.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, rec.take())
}

/// Runs a future on a paused current-thread runtime, with the recorder.
fn capture_async<F: std::future::Future>(fut: F) -> (F::Output, Vec<Rec>) {
    capture(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap()
            .block_on(fut)
    })
}

/// The events of a level, any target: (target, fields).
fn events_at(recs: &[Rec], lvl: Level) -> Vec<(String, Fields)> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Event {
                level,
                target,
                fields,
            } if *level == lvl => Some((target.clone(), fields.clone())),
            _ => None,
        })
        .collect()
}

/// The events of a level whose message is `msg`: (target, fields).
fn events_with_message(recs: &[Rec], lvl: Level, msg: &str) -> Vec<(String, Fields)> {
    events_at(recs, lvl)
        .into_iter()
        .filter(|(_, f)| f.get("message").is_some_and(|m| m == msg))
        .collect()
}

fn retry_events(recs: &[Rec]) -> Vec<(String, Fields)> {
    events_with_message(recs, Level::INFO, "attempt failed; retrying")
}

fn failure_events(recs: &[Rec]) -> Vec<(String, Fields)> {
    events_with_message(recs, Level::WARN, "call failed")
}

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k)
        .unwrap_or_else(|| panic!("no field `{k}` in {f:?}"))
}

// ---------------------------------------------------------------- 1. delay_from is not capped by max_delay

#[retry(
    max = 1,
    delay = "10ms",
    max_delay = "2s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    on_retry = |_n, _e: &E, d| waits.borrow_mut().push(d),
)]
fn hinted_120s(calls: &Cell<u32>, waits: &RefCell<Vec<Duration>>) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn delay_from_is_not_capped_by_max_delay_sync() {
    let sleeps = testing::instant_sleeps();
    let (calls, waits) = (Cell::new(0), RefCell::default());
    assert_eq!(hinted_120s(&calls, &waits), Ok(2));
    assert_eq!(sleeps.delays(), [secs(120)], "the wait the error asked for");
    assert_eq!(waits.into_inner(), [secs(120)], "on_retry's delay argument");
}

#[retry(
    max = 1,
    delay = "10ms",
    max_delay = "2s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    on_retry = |_n, _e: &E, d| waits.borrow_mut().push(d),
)]
async fn hinted_120s_async(
    starts: &RefCell<Vec<Instant>>,
    waits: &RefCell<Vec<Duration>>,
) -> Result<usize, E> {
    starts.borrow_mut().push(Instant::now());
    let n = starts.borrow().len();
    if n == 1 {
        Err(E(1))
    } else {
        Ok(n)
    }
}

#[tokio::test(start_paused = true)]
async fn delay_from_is_not_capped_by_max_delay_async() {
    let (starts, waits) = (RefCell::default(), RefCell::default());
    assert_eq!(hinted_120s_async(&starts, &waits).await, Ok(2));
    let starts = starts.into_inner();
    assert_eq!(starts[1] - starts[0], secs(120), "on the paused clock");
    assert_eq!(waits.into_inner(), [secs(120)], "on_retry's delay argument");
}

#[retry(
    max = 3,
    delay = "10ms",
    budget = "60s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn hint_past_budget(calls: &Cell<u32>, reports: &Reports) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn delay_from_past_the_budget_stops_with_budget_spent_sync() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(hint_past_budget(&calls, &reports), Err(E(1)));
    assert_eq!(
        calls.get(),
        1,
        "no retry when the asked-for wait passes the budget"
    );
    assert!(sleeps.delays().is_empty(), "{:?}", sleeps.delays());
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(
        (reports[0].attempts, reports[0].reason),
        (1, Reason::BudgetSpent)
    );
}

#[retry(
    max = 3,
    delay = "10ms",
    max_delay = "2s",
    budget = "60s",
    delay_from = |_: &E| Some(Duration::from_secs(120)),
    fallback = |r: Report<E>| Ok((r.attempts, r.reason)),
)]
async fn hint_past_budget_async(calls: &Cell<u32>) -> Result<(u32, Reason), E> {
    Err(E(tick(calls)))
}

#[tokio::test(start_paused = true)]
async fn delay_from_past_the_budget_stops_with_budget_spent_async() {
    let calls = Cell::new(0);
    let t0 = Instant::now();
    assert_eq!(
        hint_past_budget_async(&calls).await,
        Ok((1, Reason::BudgetSpent))
    );
    assert_eq!(calls.get(), 1);
    assert_eq!(t0.elapsed(), Duration::ZERO, "no wait at all");
}

#[retry(max = 2, backoff = "fixed", delay = "10s", max_delay = "2s", delay_from = |_: &E| None)]
fn computed_capped(calls: &Cell<u32>) -> Result<(), E> {
    Err(E(tick(calls)))
}

#[test]
fn computed_waits_are_still_capped_by_max_delay() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(computed_capped(&calls), Err(E(3)));
    assert_eq!(sleeps.delays(), [secs(2), secs(2)]);
}

// ---------------------------------------------------------------- 2. async functions polled outside tokio

#[retry(max = 2, delay = "10ms")]
async fn fails_once_10ms(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[retry(max = 2, delay = "0ms")]
async fn fails_once_zero_delay(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn async_retry_works_under_a_non_tokio_executor() {
    let calls = Cell::new(0);
    assert_eq!(futures_executor::block_on(fails_once_10ms(&calls)), Ok(2));
    assert_eq!(calls.get(), 2);
}

#[test]
fn async_retry_with_zero_delay_works_under_a_non_tokio_executor() {
    let calls = Cell::new(0);
    assert_eq!(
        futures_executor::block_on(fails_once_zero_delay(&calls)),
        Ok(2)
    );
    assert_eq!(calls.get(), 2);
}

// ---------------------------------------------------------------- 6. Report::elapsed counts from the call's start

#[retry(
    max = 1,
    delay = "5ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn slow_attempts_async(calls: &Cell<u32>, reports: &Reports) -> Result<(), E> {
    let n = tick(calls);
    tokio::time::sleep(ms(100)).await;
    Err(E(n))
}

#[tokio::test(start_paused = true)]
async fn report_elapsed_includes_the_first_attempt_async() {
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(slow_attempts_async(&calls, &reports).await, Err(E(2)));
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attempts, 2);
    // 100 (first attempt) + 5 (wait) + 100 (second attempt), on the paused clock.
    assert_eq!(reports[0].elapsed, ms(205));
}

#[retry(
    max = 1,
    delay = "5ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn slow_attempts(
    calls: &Cell<u32>,
    sleeps: &testing::InstantSleeps,
    reports: &Reports,
) -> Result<(), E> {
    let n = tick(calls);
    sleeps.advance(ms(100));
    Err(E(n))
}

#[test]
fn report_elapsed_includes_the_first_attempt_sync() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(slow_attempts(&calls, &sleeps, &reports), Err(E(2)));
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attempts, 2);
    // The virtual clock moved 205 ms; the real one a little more.
    assert!(reports[0].elapsed >= ms(205), "{:?}", reports[0].elapsed);
}

// ---------------------------------------------------------------- 7. no WARN for expected ends

#[retry(max = 3, delay = "0ms", when = |e: &E| e.0 != 0)]
fn rejected(calls: &Cell<u32>) -> Result<(), E> {
    tick(calls);
    Err(E(0))
}

#[retry(max = 2, delay = "0ms", fallback = |r: Report<E>| Ok(r.attempts))]
fn recovered(calls: &Cell<u32>) -> Result<u32, E> {
    Err(E(tick(calls)))
}

#[retry(max = 2, delay = "0ms")]
fn fails_after_retrying(calls: &Cell<u32>) -> Result<u32, E> {
    Err(E(tick(calls)))
}

#[test]
fn no_warn_when_the_error_is_not_retryable() {
    let calls = Cell::new(0);
    let (out, recs) = capture(|| rejected(&calls));
    assert_eq!(out, Err(E(0)));
    assert_eq!(calls.get(), 1);
    assert_eq!(
        events_at(&recs, Level::WARN),
        [],
        "a rejected error is expected"
    );
}

#[test]
fn no_warn_when_the_fallback_recovers() {
    let calls = Cell::new(0);
    let (out, recs) = capture(|| recovered(&calls));
    assert_eq!(out, Ok(3));
    assert_eq!(events_at(&recs, Level::WARN), [], "the fallback answered");
}

#[test]
fn one_warn_when_the_call_fails_after_retrying() {
    let calls = Cell::new(0);
    let (out, recs) = capture(|| fails_after_retrying(&calls));
    assert_eq!(out, Err(E(3)));
    assert_eq!(events_at(&recs, Level::WARN).len(), 1, "{recs:?}");
}

// ---------------------------------------------------------------- 8. errors logged with Display when they are errors

/// An error whose `Display` and `Debug` differ.
struct Human;

impl fmt::Display for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("human text")
    }
}

impl fmt::Debug for Human {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DEBUG-FORM")
    }
}

impl std::error::Error for Human {}

#[retry(max = 1, delay = "0ms")]
fn fails_human() -> Result<(), Human> {
    Err(Human)
}

/// An error with only `Debug`.
struct DebugOnly(u32);

impl fmt::Debug for DebugOnly {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DebugOnly({})", self.0)
    }
}

#[retry(max = 1, delay = "0ms")]
fn fails_debug_only() -> Result<(), DebugOnly> {
    Err(DebugOnly(7))
}

#[test]
fn retry_event_logs_a_std_error_with_display() {
    let (out, recs) = capture(fails_human);
    assert!(out.is_err());
    let infos = retry_events(&recs);
    assert_eq!(infos.len(), 1, "{recs:?}");
    let error = field(&infos[0].1, "error");
    assert!(error.contains("human text"), "{error:?}");
    assert!(!error.contains("DEBUG-FORM"), "{error:?}");
}

#[test]
fn failure_event_logs_a_std_error_with_display() {
    let (out, recs) = capture(fails_human);
    assert!(out.is_err());
    let warns = failure_events(&recs);
    assert_eq!(warns.len(), 1, "{recs:?}");
    let error = field(&warns[0].1, "error");
    assert!(error.contains("human text"), "{error:?}");
    assert!(!error.contains("DEBUG-FORM"), "{error:?}");
}

#[test]
fn retry_event_logs_a_debug_only_error_with_debug() {
    let (out, recs) = capture(fails_debug_only);
    assert!(out.is_err());
    let infos = retry_events(&recs);
    assert_eq!(infos.len(), 1, "{recs:?}");
    let error = field(&infos[0].1, "error");
    assert!(error.contains("DebugOnly(7)"), "{error:?}");
}

// ---------------------------------------------------------------- 9. max = "forever" has a default cap on each wait

#[retry(max = "forever", backoff = "exp", delay = "1s")]
fn forever_exp(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n <= 30 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[retry(max = "forever", backoff = "exp", delay = "1s", max_delay = "5m")]
fn forever_exp_capped_5m(calls: &Cell<u32>) -> Result<u32, E> {
    let n = tick(calls);
    if n <= 30 {
        Err(E(n))
    } else {
        Ok(n)
    }
}

#[test]
fn forever_without_max_delay_waits_at_most_60s() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(forever_exp(&calls), Ok(31));
    let waits = sleeps.delays();
    assert_eq!(waits.len(), 30);
    let longest = waits.iter().max().copied().unwrap();
    assert!(longest <= secs(60), "a wait of {longest:?}");
}

#[test]
fn forever_with_explicit_max_delay_waits_up_to_it() {
    let sleeps = testing::instant_sleeps();
    let calls = Cell::new(0);
    assert_eq!(forever_exp_capped_5m(&calls), Ok(31));
    let waits = sleeps.delays();
    assert_eq!(waits.len(), 30);
    assert_eq!(waits.iter().max().copied(), Some(secs(300)));
}

// ---------------------------------------------------------------- 10. current_cid() inside the hooks

type Seen = RefCell<Vec<(&'static str, Option<CorrelationId>)>>;

fn saw(seen: &Seen, what: &'static str) {
    seen.borrow_mut().push((what, current_cid()));
}

#[retry(
    max = 1,
    delay = "0ms",
    when = |_: &E| { saw(seen, "when"); true },
    delay_from = |_: &E| { saw(seen, "delay_from"); None },
    on_retry = |_n, _e: &E, _d| saw(seen, "on_retry"),
    on_exhausted = |_r: &Report<E>| saw(seen, "on_exhausted"),
    fallback = |_r: Report<E>| { saw(seen, "fallback"); Ok(0) },
)]
fn cid_in_hooks(seen: &Seen) -> Result<u32, E> {
    saw(seen, "body");
    Err(E(1))
}

#[retry(
    max = 1,
    delay = "1ms",
    when = |_: &E| { saw(seen, "when"); true },
    delay_from = |_: &E| { saw(seen, "delay_from"); None },
    on_retry = |_n, _e: &E, _d| saw(seen, "on_retry"),
    on_exhausted = |_r: &Report<E>| saw(seen, "on_exhausted"),
    fallback = |_r: Report<E>| { saw(seen, "fallback"); Ok(0) },
)]
async fn cid_in_hooks_async(seen: &Seen) -> Result<u32, E> {
    saw(seen, "body");
    tokio::task::yield_now().await;
    Err(E(1))
}

/// Every hook ran and saw the body's cid.
fn check_hooks_saw_the_cid(seen: Seen) {
    let seen = seen.into_inner();
    let body = seen
        .iter()
        .find(|(w, _)| *w == "body")
        .and_then(|(_, c)| *c)
        .expect("current_cid() is Some in the body");
    let mut wrong = Vec::new();
    for hook in ["when", "delay_from", "on_retry", "on_exhausted", "fallback"] {
        let in_hook: Vec<_> = seen.iter().filter(|(w, _)| *w == hook).collect();
        assert!(!in_hook.is_empty(), "`{hook}` never ran: {seen:?}");
        if in_hook.iter().any(|(_, cid)| *cid != Some(body)) {
            wrong.push(hook);
        }
    }
    assert!(
        wrong.is_empty(),
        "current_cid() is not the call's {body} inside {wrong:?}: {seen:?}"
    );
}

#[test]
fn current_cid_is_the_calls_inside_every_hook_sync() {
    let seen = Seen::default();
    assert_eq!(cid_in_hooks(&seen), Ok(0));
    check_hooks_saw_the_cid(seen);
}

#[tokio::test(start_paused = true)]
async fn current_cid_is_the_calls_inside_every_hook_async() {
    let seen = Seen::default();
    assert_eq!(cid_in_hooks_async(&seen).await, Ok(0));
    check_hooks_saw_the_cid(seen);
}

// ---------------------------------------------------------------- 11. events and spans target the caller's module

mod m {
    use super::E;
    use retry_runtime::retry;

    #[retry(max = 1, delay = "0ms")]
    pub fn always_fails() -> Result<(), E> {
        Err(E(1))
    }

    #[retry(max = 1, delay = "1ms")]
    pub async fn always_fails_async() -> Result<(), E> {
        Err(E(1))
    }

    pub const MODULE: &str = module_path!();
}

/// The retry and failure events and the attempt spans all carry `m`'s module path.
fn check_targets(recs: &[Rec]) {
    assert_eq!(m::MODULE, "regressions::m");
    let infos = retry_events(recs);
    assert_eq!(infos.len(), 1, "{recs:?}");
    assert_eq!(infos[0].0, m::MODULE, "the retry event's target");
    let warns = failure_events(recs);
    assert_eq!(warns.len(), 1, "{recs:?}");
    assert_eq!(warns[0].0, m::MODULE, "the failure event's target");
    let spans: Vec<_> = recs
        .iter()
        .filter_map(|r| match r {
            Rec::Span { name, target }
                if name.ends_with("always_fails") || name.ends_with("always_fails_async") =>
            {
                Some(target.clone())
            }
            _ => None,
        })
        .collect();
    assert_eq!(spans.len(), 2, "one span per attempt: {recs:?}");
    assert!(
        spans.iter().all(|t| t == m::MODULE),
        "span targets {spans:?}"
    );
}

#[test]
fn events_and_spans_target_the_callers_module_sync() {
    let (out, recs) = capture(m::always_fails);
    assert_eq!(out, Err(E(1)));
    check_targets(&recs);
}

#[test]
fn events_and_spans_target_the_callers_module_async() {
    let (out, recs) = capture_async(m::always_fails_async());
    assert_eq!(out, Err(E(1)));
    check_targets(&recs);
}

// ---------------------------------------------------------------- method names include the type

mod names {
    use retry_runtime::{retry, Report};
    use std::cell::RefCell;

    thread_local! {
        pub static NAMES: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }

    fn record(r: &Report<String>) {
        NAMES.with(|n| n.borrow_mut().push(r.name));
    }

    pub struct Orders;
    pub struct Invoices;

    impl Orders {
        #[retry(max = 1, delay = "0ms", on_exhausted = record)]
        pub fn get(&self) -> Result<(), String> {
            Err("orders down".into())
        }
    }

    impl Invoices {
        #[retry(max = 1, delay = "0ms", on_exhausted = record)]
        pub fn get(&self) -> Result<(), String> {
            Err("invoices down".into())
        }
    }
}

#[test]
fn method_report_names_include_the_type() {
    assert!(names::Orders.get().is_err());
    assert!(names::Invoices.get().is_err());
    let got = names::NAMES.with(|n| n.borrow().clone());
    assert_eq!(got.len(), 2, "{got:?}");
    assert_ne!(got[0], got[1], "two methods, two names");
    assert!(got[0].ends_with("Orders::get"), "{got:?}");
    assert!(got[1].ends_with("Invoices::get"), "{got:?}");
}
