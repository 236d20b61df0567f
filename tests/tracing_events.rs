//! What a subscriber sees: a span per attempt named after the function with `cid` and
//! `attempt` (and `parent` for a call started inside another), one `INFO` event per retried failure, one `WARN` event per failed call (none for
//! the expected ends: a rejected error, a fallback's answer), errors in their `Display` form
//! when they have one, and every span and event targeted at the caller's module.
use retry_runtime::{current_cid, retry, Report};
use std::cell::Cell;
use std::fmt;
use std::sync::Mutex;
use tracing::Level;

#[path = "common/recorder.rs"]
mod recorder;
use recorder::{
    capture, capture_async, enters, events, events_at, failure_events, field, retry_events, spans,
    Rec,
};

#[derive(Debug, Clone, PartialEq)]
struct E(u32);

// ---------------------------------------------------------------- sync

#[retry(max = 3, backoff = "linear", delay = "10ms")]
fn traced(ok_at: u32, cids: &Mutex<Vec<String>>) -> Result<u32, E> {
    let mut c = cids.lock().unwrap();
    c.push(current_cid().unwrap().to_string());
    let n = u32::try_from(c.len()).unwrap();
    tracing::info!(target: "body", n, "in the body");
    if n >= ok_at {
        Ok(n)
    } else {
        Err(E(n))
    }
}

/// The body's events: each in the attempt's span, with the call's cid and its number.
fn check_attempt_spans(recs: &[Rec], name: &str, cid: &str, attempts: u32) {
    let body = events(recs, Level::INFO, "body");
    assert_eq!(body.len(), usize::try_from(attempts).unwrap());
    for (i, (fields, span)) in body.iter().enumerate() {
        let n = (i + 1).to_string();
        assert_eq!(field(fields, "n"), n);
        let span = span.as_ref().expect("the body runs inside a span");
        assert_eq!(span.name, name);
        assert_eq!(field(&span.fields, "cid"), cid);
        assert_eq!(field(&span.fields, "attempt"), n);
        assert_eq!(span.fields.len(), 2, "{:?}", span.fields);
    }
}

#[test]
fn each_attempt_runs_in_a_span_with_cid_and_attempt() {
    let _sleeps = retry_runtime::testing::instant_sleeps();
    let cids = Mutex::default();
    let (out, recs) = capture(|| traced(3, &cids));
    assert_eq!(out, Ok(3));
    let cids = cids.into_inner().unwrap();
    assert!(cids.iter().all(|c| *c == cids[0]));
    check_attempt_spans(&recs, "tracing_events::traced", &cids[0], 3);
    let entered = enters(&recs);
    assert_eq!(entered.len(), 3, "one span entered per sync attempt");
    assert!(entered.iter().all(|s| s.name == "tracing_events::traced"));
}

#[test]
fn a_retried_failure_logs_one_info_event() {
    let _sleeps = retry_runtime::testing::instant_sleeps();
    let cids = Mutex::default();
    let (out, recs) = capture(|| traced(3, &cids));
    assert_eq!(out, Ok(3));
    let cid = cids.into_inner().unwrap()[0].clone();
    let infos = events(&recs, Level::INFO, module_path!());
    assert_eq!(infos.len(), 2, "one per failed attempt that is retried");
    for (i, (f, _)) in infos.iter().enumerate() {
        let n = i + 1;
        assert_eq!(field(f, "attempt"), n.to_string());
        assert_eq!(field(f, "error"), format!("E({n})"));
        assert_eq!(field(f, "next_delay"), format!("{}ms", 10 * n));
        assert_eq!(field(f, "cid"), cid);
        assert_eq!(field(f, "name"), "tracing_events::traced");
    }
    assert!(
        events(&recs, Level::WARN, module_path!()).is_empty(),
        "no WARN for a call that succeeds"
    );
}

#[test]
fn a_first_time_success_logs_nothing() {
    let cids = Mutex::default();
    let (out, recs) = capture(|| traced(1, &cids));
    assert_eq!(out, Ok(1));
    assert!(events(&recs, Level::INFO, module_path!()).is_empty());
    assert!(events(&recs, Level::WARN, module_path!()).is_empty());
    assert_eq!(enters(&recs).len(), 1);
}

#[test]
fn exhaustion_logs_exactly_one_warn_event() {
    let _sleeps = retry_runtime::testing::instant_sleeps();
    let cids = Mutex::default();
    let (out, recs) = capture(|| traced(99, &cids));
    assert_eq!(out, Err(E(4)));
    let cid = cids.into_inner().unwrap()[0].clone();
    assert_eq!(events(&recs, Level::INFO, module_path!()).len(), 3);
    let warns = events(&recs, Level::WARN, module_path!());
    assert_eq!(warns.len(), 1);
    let f = &warns[0].0;
    assert_eq!(field(f, "attempts"), "4");
    assert_eq!(field(f, "reason"), "retries exhausted");
    assert_eq!(field(f, "cid"), cid);
    assert_eq!(field(f, "name"), "tracing_events::traced");
    assert!(field(f, "error").contains("E(4)"), "{f:?}");
    let all_warns = recs
        .iter()
        .filter(|r| matches!(r, Rec::Event { level, .. } if *level == Level::WARN))
        .count();
    assert_eq!(all_warns, 1);
}

#[retry(max = 1, delay = "0ms", name = "billing::charge")]
fn renamed() -> Result<(), E> {
    tracing::info!(target: "body", n = 1, "in the body");
    Err(E(0))
}

#[test]
fn the_name_key_names_the_span_and_events() {
    let (out, recs) = capture(renamed);
    assert_eq!(out, Err(E(0)));
    let body = events(&recs, Level::INFO, "body");
    assert_eq!(body.len(), 2);
    assert!(body
        .iter()
        .all(|(_, s)| s.as_ref().unwrap().name == "billing::charge"));
    let warns = events(&recs, Level::WARN, module_path!());
    assert_eq!(warns.len(), 1);
    assert_eq!(field(&warns[0].0, "name"), "billing::charge");
}

#[retry(max = 1, delay = "0ms")]
fn inner_call() -> Result<String, E> {
    Ok(current_cid().unwrap().to_string())
}

#[retry(max = 1, delay = "0ms")]
fn outer_call() -> Result<(String, String), E> {
    Ok((current_cid().unwrap().to_string(), inner_call()?))
}

#[test]
fn a_call_started_by_another_names_its_parent_in_its_span() {
    let (out, recs) = capture(outer_call);
    let (outer, inner) = out.unwrap();
    let all = spans(&recs);
    let outer_span = all
        .iter()
        .find(|s| s.name == "tracing_events::outer_call")
        .unwrap();
    let inner_span = all
        .iter()
        .find(|s| s.name == "tracing_events::inner_call")
        .unwrap();
    assert_eq!(field(&outer_span.fields, "cid"), outer);
    assert!(
        !outer_span.fields.contains_key("parent"),
        "a call with no parent has no `parent` field: {:?}",
        outer_span.fields
    );
    assert_eq!(field(&inner_span.fields, "cid"), inner);
    assert_eq!(field(&inner_span.fields, "parent"), outer);
}

// ---------------------------------------------------------------- async

#[retry(max = 2, delay = "5ms")]
async fn traced_async(ok_at: u32, cids: &Mutex<Vec<String>>) -> Result<u32, E> {
    let n = {
        let mut c = cids.lock().unwrap();
        c.push(current_cid().unwrap().to_string());
        u32::try_from(c.len()).unwrap()
    };
    tokio::task::yield_now().await;
    // After a suspension: still inside the attempt's span.
    tracing::info!(target: "body", n, "in the body");
    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    if n >= ok_at {
        Ok(n)
    } else {
        Err(E(n))
    }
}

#[test]
fn async_attempts_run_in_spans_and_log() {
    let cids = Mutex::default();
    let (out, recs) = capture_async(traced_async(99, &cids));
    assert_eq!(out, Err(E(3)));
    let cid = cids.into_inner().unwrap()[0].clone();
    check_attempt_spans(&recs, "tracing_events::traced_async", &cid, 3);
    let infos = events(&recs, Level::INFO, module_path!());
    assert_eq!(infos.len(), 2);
    for (i, (f, _)) in infos.iter().enumerate() {
        let n = i + 1;
        assert_eq!(field(f, "attempt"), n.to_string());
        assert_eq!(field(f, "error"), format!("E({n})"));
        assert_eq!(field(f, "next_delay"), format!("{}ms", 5 << i));
    }
    let warns = events(&recs, Level::WARN, module_path!());
    assert_eq!(warns.len(), 1);
    assert_eq!(field(&warns[0].0, "attempts"), "3");
    // Entered at each poll: more than once per attempt, always with its fields.
    let entered = enters(&recs);
    assert!(entered.len() >= 3 * 3, "{}", entered.len());
    for s in &entered {
        assert_eq!(s.name, "tracing_events::traced_async");
        assert_eq!(field(&s.fields, "cid"), cid);
    }
}

#[test]
fn async_success_after_a_failure() {
    let cids = Mutex::default();
    let (out, recs) = capture_async(traced_async(2, &cids));
    assert_eq!(out, Ok(2));
    assert_eq!(events(&recs, Level::INFO, module_path!()).len(), 1);
    assert!(events(&recs, Level::WARN, module_path!()).is_empty());
}

/// Counts an attempt and returns its number.
fn tick(calls: &Cell<u32>) -> u32 {
    calls.set(calls.get() + 1);
    calls.get()
}

// ---------------------------------------------------------------- no WARN for expected ends

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

// ---------------------------------------------------------------- errors logged with Display when they are errors

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

// ---------------------------------------------------------------- events and spans target the caller's module

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
    assert_eq!(m::MODULE, "tracing_events::m");
    let infos = retry_events(recs);
    assert_eq!(infos.len(), 1, "{recs:?}");
    assert_eq!(infos[0].0, m::MODULE, "the retry event's target");
    let warns = failure_events(recs);
    assert_eq!(warns.len(), 1, "{recs:?}");
    assert_eq!(warns[0].0, m::MODULE, "the failure event's target");
    let spans: Vec<String> = spans(recs)
        .into_iter()
        .filter(|s| s.name.ends_with("always_fails") || s.name.ends_with("always_fails_async"))
        .map(|s| s.target)
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
