//! The engine on its own: no runtime, no sleeping, a clock advanced by hand. Each test runs
//! one call attempt by attempt and checks the step, the progress, the report, the hooks that
//! ran (in order, each inside the call's context) and the events.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::time::Duration;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};
use tracing_subscriber::Registry;

use super::{AttemptOutcome, Attempts, Clock, End, Engine, Step};
use crate::cid::{current_cid, CallCtx};
use crate::hooks::{hooks, Hook, HookSet, NoHook, WithDebug, WithDisplay};
use crate::site::Site;
use crate::{Backoff, CorrelationId, Jitter, Policy, Reason, Report, DEFAULT_MAX_DELAY};

static SITE: Site = Site::new(
    "engine_tests::f",
    false,
    "inline",
    "engine_tests",
    file!(),
    line!(),
);

type R = Result<u32, Boom>;

/// The error of the tests: `Display` and `Debug` differ, to tell the formats apart.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Boom(u32);

impl fmt::Display for Boom {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "boom #{}", self.0)
    }
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

// ---------------------------------------------------------------------------------------
// The fake clock, the hook log and the event recorder.

/// A clock moved by hand that counts its readings.
/// The clock reads the metrics add (feature `metrics`): the start of every call, for its
/// duration.
const METRICS: u32 = if cfg!(feature = "metrics") { 1 } else { 0 };

struct FakeClock {
    now: Cell<SystemTime>,
    reads: Cell<u32>,
}

impl FakeClock {
    fn new() -> Self {
        Self {
            now: Cell::new(UNIX_EPOCH + Duration::from_secs(1_700_000_000)),
            reads: Cell::new(0),
        }
    }

    fn advance(&self, d: Duration) {
        self.now.set(self.now.get() + d);
    }

    fn reads(&self) -> u32 {
        self.reads.get()
    }
}

impl Clock for FakeClock {
    fn now(&self) -> SystemTime {
        self.reads.set(self.reads.get() + 1);
        self.now.get()
    }
}

/// What the hooks saw: one line per call, the current correlation ID at each call, and a
/// copy of each report handed to a hook.
#[derive(Default)]
struct Log {
    calls: RefCell<Vec<String>>,
    cids: RefCell<Vec<Option<CorrelationId>>>,
    reports: RefCell<Vec<Report<Boom>>>,
}

impl Log {
    fn note(&self, line: String) {
        self.calls.borrow_mut().push(line);
        self.cids.borrow_mut().push(current_cid());
    }

    fn report(&self, hook: &str, r: &Report<Boom>) {
        self.note(format!(
            "{hook} {:?} {} {:?}",
            r.reason, r.attempts, r.last_error
        ));
        self.reports.borrow_mut().push(r.clone());
    }

    fn calls(&self) -> Vec<String> {
        self.calls.borrow().clone()
    }

    fn last_report(&self) -> Report<Boom> {
        self.reports
            .borrow()
            .last()
            .cloned()
            .expect("a hook got a report")
    }

    /// Every hook ran inside the call: `current_cid()` was the call's ID.
    fn assert_in_call(&self, ctx: &CallCtx) {
        let cids = self.cids.borrow();
        assert!(!cids.is_empty(), "no hook ran");
        let cid = ctx.cid();
        for (line, seen) in self.calls.borrow().iter().zip(cids.iter()) {
            assert_eq!(*seen, Some(cid), "hook `{line}` ran outside the call");
        }
    }
}

fn always(_: &Boom) -> bool {
    true
}

fn never(_: &Boom) -> bool {
    false
}

fn no_hint(_: &Boom) -> Option<Duration> {
    None
}

/// Hooks that record every call into `$log`: `when`, `delay_from`, `on_retry`,
/// `on_exhausted` and `on_done` (a macro, so that a test can add a fallback to the result).
macro_rules! recording {
    ($log:expr, $format:expr, $when:expr, $hint:expr) => {{
        let log: &Log = $log;
        let when = $when;
        let hint = $hint;
        hooks($format)
            .with_when(Hook(move |e: &Boom| {
                log.note(format!("when {e}"));
                when(e)
            }))
            .with_delay_from(Hook(move |e: &Boom| {
                log.note(format!("delay_from {e}"));
                hint(e)
            }))
            .with_on_retry(Hook(move |n: u32, e: &Boom, d: Duration| {
                log.note(format!("on_retry {n} {e} {d:?}"));
            }))
            .with_on_exhausted(Hook(move |r: &Report<Boom>| log.report("on_exhausted", r)))
            .with_on_done(Hook(move |r: &Report<Boom>| log.report("on_done", r)))
    }};
}

/// One event as recorded: level, target and fields (values as text).
#[derive(Debug, Clone)]
struct Seen {
    level: Level,
    target: String,
    fields: Vec<(String, String)>,
}

impl Seen {
    fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn field(&self, name: &str) -> &str {
        self.get(name)
            .unwrap_or_else(|| panic!("event {self:?} has no field `{name}`"))
    }

    fn message(&self) -> &str {
        self.field("message")
    }
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Seen>>>);

struct Fields(Vec<(String, String)>);

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0.push((field.name().to_owned(), format!("{value:?}")));
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.push((field.name().to_owned(), value.to_owned()));
    }
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let mut fields = Fields(Vec::new());
        event.record(&mut fields);
        let meta = event.metadata();
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Seen {
                level: *meta.level(),
                target: meta.target().to_owned(),
                fields: fields.0,
            });
    }
}

/// Serialises the tests of this file: the level filter and the interest of call sites are
/// global in `tracing`, so a subscriber installed by one test must not overlap another test.
fn serial() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Runs `f` with a subscriber that records every event of this thread.
fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Seen>) {
    let recorder = Recorder::default();
    let out = tracing::subscriber::with_default(Registry::default().with(recorder.clone()), f);
    let seen = recorder
        .0
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .clone();
    (out, seen)
}

/// Makes `tracing`'s global level filter OFF, as when no subscriber was ever installed: a
/// subscriber that wants nothing is registered (which recomputes the filter from the live
/// subscribers, only this one under [`serial`]) and dropped.
fn no_subscriber() {
    let off = tracing::Dispatch::new(Registry::default().with(LevelFilter::OFF));
    drop(off);
    assert!(!tracing::level_enabled!(Level::ERROR));
}

// ---------------------------------------------------------------------------------------
// Driving a call.

/// Starts the next attempt and settles its outcome.
fn attempt<H: HookSet<R>>(
    engine: &Engine<'_, R, H>,
    ctx: &CallCtx,
    state: &mut Attempts,
    clock: &FakeClock,
    outcome: AttemptOutcome<R>,
    previous: Option<Boom>,
) -> Step<R> {
    state.start_attempt();
    engine.on_outcome(ctx, state, outcome, previous, clock)
}

fn fail(n: u32) -> AttemptOutcome<R> {
    AttemptOutcome::Returned(Err(Boom(n)))
}

fn retried(step: Step<R>) -> (Duration, Boom) {
    match step {
        Step::Retry { wait, error } => (wait, error),
        Step::Done(End::Ok(v)) => panic!("expected a retry; the call succeeded with {v}"),
        Step::Done(End::Failed(r)) => panic!("expected a retry; the call failed: {r}"),
    }
}

fn failed(step: Step<R>) -> Report<Boom> {
    match step {
        Step::Done(End::Failed(r)) => r,
        Step::Done(End::Ok(v)) => panic!("expected a failure; the call succeeded with {v}"),
        Step::Retry { wait, error } => panic!("expected a failure; retry in {wait:?} ({error})"),
    }
}

fn succeeded(step: Step<R>) -> u32 {
    match step {
        Step::Done(End::Ok(v)) => v,
        Step::Done(End::Failed(r)) => panic!("expected a success; the call failed: {r}"),
        Step::Retry { wait, error } => panic!("expected a success; retry in {wait:?} ({error})"),
    }
}

fn fixed(delay: Duration) -> Policy {
    Policy::new().backoff(Backoff::Fixed).delay(delay)
}

// ---------------------------------------------------------------------------------------
// Success.

#[test]
fn success_at_once_runs_only_on_done() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(100));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    clock.advance(ms(30));

    let v = succeeded(attempt(
        &engine,
        &ctx,
        &mut state,
        &clock,
        AttemptOutcome::Returned(Ok(7)),
        None,
    ));

    assert_eq!(v, 7);
    assert_eq!(state.made, 1);
    assert_eq!(log.calls(), ["on_done Succeeded 1 None"]);
    let r = log.last_report();
    assert_eq!(r.elapsed, ms(30));
    assert_eq!(r.name, "engine_tests::f");
    assert!(r.is_ok());
    log.assert_in_call(&ctx);
}

#[test]
fn success_after_a_failure_reports_the_previous_error() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(100));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);

    let (wait, error) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
    clock.advance(wait);
    let v = succeeded(attempt(
        &engine,
        &ctx,
        &mut state,
        &clock,
        AttemptOutcome::Returned(Ok(8)),
        Some(error),
    ));

    assert_eq!(v, 8);
    assert_eq!(state.made, 2);
    assert_eq!(
        log.calls(),
        [
            "when boom #1",
            "delay_from boom #1",
            "on_retry 1 boom #1 100ms",
            "on_done Succeeded 2 Some(Boom(1))",
        ]
    );
    assert_eq!(log.last_report().elapsed, ms(100));
    log.assert_in_call(&ctx);
}

#[test]
fn success_without_hooks_reads_no_clock() {
    let _s = serial();
    no_subscriber();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(100));
    let h = hooks(WithDisplay);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let (wait, error) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
    assert_eq!(wait, ms(100));
    let v = succeeded(attempt(
        &engine,
        &ctx,
        &mut state,
        &clock,
        AttemptOutcome::Returned(Ok(1)),
        Some(error),
    ));
    assert_eq!(v, 1);
    assert_eq!(state.started.is_some(), METRICS == 1);
    // With metrics, the start and the end (the duration of a call that failed once).
    assert_eq!(clock.reads(), 2 * METRICS);
}

// ---------------------------------------------------------------------------------------
// Retrying and its ends.

#[test]
fn retry_waits_as_the_policy_says_and_calls_on_retry() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = Policy::new().delay(ms(100)); // exponential by 2, 3 retries
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);

    let (wait, error) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
    assert_eq!((wait, error), (ms(100), Boom(1)));
    assert_eq!(state.made, 1);
    let (wait, error) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(2), None));
    assert_eq!((wait, error), (ms(200), Boom(2)));
    assert_eq!(state.made, 2);
    // Jitter off: no wait is remembered.
    assert_eq!(state.last_wait_ns, 0);

    assert_eq!(
        log.calls(),
        [
            "when boom #1",
            "delay_from boom #1",
            "on_retry 1 boom #1 100ms",
            "when boom #2",
            "delay_from boom #2",
            "on_retry 2 boom #2 200ms",
        ]
    );
    log.assert_in_call(&ctx);
}

#[test]
fn not_retryable_stops_after_one_attempt() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(100));
    let h = recording!(&log, WithDisplay, never, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    clock.advance(ms(12));

    let (r, events) = capture(|| failed(attempt(&engine, &ctx, &mut state, &clock, fail(4), None)));

    assert_eq!(state.made, 1);
    assert_eq!(r.reason, Reason::NotRetryable);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.last_error, Some(Boom(4)));
    assert_eq!(r.elapsed, ms(12));
    assert_eq!((r.cid, r.parent), (ctx.cid(), None));
    // `delay_from` is not asked about an error that will not be retried.
    assert_eq!(
        log.calls(),
        [
            "when boom #4",
            "on_exhausted NotRetryable 1 Some(Boom(4))",
            "on_done NotRetryable 1 Some(Boom(4))",
        ]
    );
    log.assert_in_call(&ctx);

    // An expected end: one INFO event, no WARN.
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e.level, Level::INFO);
    assert_eq!(e.target, "engine_tests");
    assert_eq!(e.field("reason"), "error not retryable");
    assert_eq!(e.field("error"), "boom #4");
    assert_eq!(e.field("attempts"), "1");
    assert_eq!(e.field("elapsed"), "12ms");
}

#[test]
fn exhausted_after_max_retries_plus_one_attempts() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(100)).max_retries(Some(2));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let ((r, state), events) = capture(|| {
        let mut state = engine.start(&clock);
        for n in 1..=2 {
            clock.advance(ms(10)); // the attempt
            let (wait, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(n), None));
            clock.advance(wait);
        }
        clock.advance(ms(10));
        let r = failed(attempt(&engine, &ctx, &mut state, &clock, fail(3), None));
        (r, state)
    });

    assert_eq!(state.made, 3);
    assert_eq!(r.reason, Reason::Exhausted);
    assert_eq!(r.attempts, 3);
    assert_eq!(r.last_error, Some(Boom(3)));
    assert_eq!(r.elapsed, ms(230));
    assert_eq!(r.policy, policy);
    assert_eq!(
        log.calls(),
        [
            "when boom #1",
            "delay_from boom #1",
            "on_retry 1 boom #1 100ms",
            "when boom #2",
            "delay_from boom #2",
            "on_retry 2 boom #2 100ms",
            "when boom #3",
            // No retry is left, so `delay_from` is not asked.
            "on_exhausted Exhausted 3 Some(Boom(3))",
            "on_done Exhausted 3 Some(Boom(3))",
        ]
    );
    assert_eq!(log.last_report().elapsed, ms(230));
    log.assert_in_call(&ctx);

    // One INFO per retried failure, then one WARN.
    let cid = ctx.cid().to_string();
    assert_eq!(events.len(), 3, "{events:?}");
    for (i, e) in events[..2].iter().enumerate() {
        assert_eq!(e.level, Level::INFO);
        assert_eq!(e.target, "engine_tests");
        assert_eq!(e.message(), "attempt failed; retrying");
        assert_eq!(e.field("name"), "engine_tests::f");
        assert_eq!(e.field("cid"), cid);
        assert_eq!(e.field("attempt"), (i + 1).to_string());
        assert_eq!(e.field("error"), format!("boom #{}", i + 1));
        assert_eq!(e.field("next_delay"), "100ms");
    }
    let end = &events[2];
    assert_eq!(end.level, Level::WARN);
    assert_eq!(end.target, "engine_tests");
    assert_eq!(end.message(), "call failed");
    assert_eq!(end.field("name"), "engine_tests::f");
    assert_eq!(end.field("cid"), cid);
    assert_eq!(end.get("parent"), None);
    assert_eq!(end.field("attempts"), "3");
    assert_eq!(end.field("elapsed"), "230ms");
    assert_eq!(end.field("reason"), "retries exhausted");
    assert_eq!(end.field("error"), "boom #3");
}

#[test]
fn errors_are_shown_with_debug_under_with_debug() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(5)).max_retries(Some(1));
    let h = recording!(&log, WithDebug, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let (_, events) = capture(|| {
        let mut state = engine.start(&clock);
        retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
        failed(attempt(&engine, &ctx, &mut state, &clock, fail(2), None))
    });
    let shown: Vec<_> = events
        .iter()
        .map(|e| (e.level, e.field("error").to_owned()))
        .collect();
    assert_eq!(
        shown,
        [
            (Level::INFO, "Boom(1)".to_owned()),
            (Level::WARN, "Boom(2)".to_owned())
        ]
    );
}

// ---------------------------------------------------------------------------------------
// The budget and asked-for waits.

#[test]
fn budget_shortens_the_last_wait_then_stops() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(300))
        .max_retries(None)
        .budget(Some(Duration::from_secs(1)));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let ((waits, r, state), events) = capture(|| {
        let mut state = engine.start(&clock);
        let mut waits = Vec::new();
        clock.advance(ms(100));
        let (w, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
        waits.push(w); // at 100 ms: 300 ms fits
        clock.advance(w + ms(400));
        let (w, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(2), None));
        waits.push(w); // at 800 ms: 200 ms left
        clock.advance(w);
        let r = failed(attempt(&engine, &ctx, &mut state, &clock, fail(3), None));
        (waits, r, state) // at 1 s: nothing left
    });

    assert_eq!(waits, [ms(300), ms(200)]);
    assert_eq!(state.made, 3);
    assert_eq!(r.reason, Reason::BudgetSpent);
    assert_eq!(r.attempts, 3);
    assert_eq!(r.elapsed, Duration::from_secs(1));
    assert_eq!(r.last_error, Some(Boom(3)));
    assert_eq!(
        log.calls()[log.calls().len() - 2..],
        [
            "on_exhausted BudgetSpent 3 Some(Boom(3))",
            "on_done BudgetSpent 3 Some(Boom(3))",
        ]
    );
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Level::INFO, Level::INFO, Level::WARN]);
    assert_eq!(events[1].field("next_delay"), "200ms");
    assert_eq!(events[2].field("reason"), "budget spent");
}

#[test]
fn budget_overrun_by_a_slow_attempt_stops_at_once() {
    let _s = serial();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(1)).budget(Some(Duration::from_secs(1)));
    let h = hooks(WithDisplay);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    assert_eq!(clock.reads(), 1);
    clock.advance(ms(1500));
    let r = failed(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
    assert_eq!(r.reason, Reason::BudgetSpent);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.elapsed, ms(1500));
}

#[test]
fn asked_for_wait_is_not_capped_by_max_delay() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(1)).max_delay(Some(ms(10)));
    let h = recording!(&log, WithDisplay, always, |e: &Boom| {
        (e.0 == 9).then(|| Duration::from_secs(5))
    });
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let (wait, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(9), None));
    assert_eq!(wait, Duration::from_secs(5));
    // Without a hint the computed wait is capped as usual.
    let (wait, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
    assert_eq!(wait, ms(1));
    assert_eq!(log.calls()[2], "on_retry 1 boom #9 5s");
}

#[test]
fn asked_for_wait_past_the_budget_stops_at_once() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(1))
        .max_retries(None)
        .budget(Some(Duration::from_secs(1)));
    let h = recording!(&log, WithDisplay, always, |_: &Boom| Some(
        Duration::from_secs(2)
    ));
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let r = failed(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
    assert_eq!(state.made, 1);
    assert_eq!(r.reason, Reason::BudgetSpent);
    assert_eq!(
        log.calls(),
        [
            "when boom #1",
            "delay_from boom #1",
            "on_exhausted BudgetSpent 1 Some(Boom(1))",
            "on_done BudgetSpent 1 Some(Boom(1))",
        ]
    );
    log.assert_in_call(&ctx);
}

// ---------------------------------------------------------------------------------------
// Timeouts, panics, stops from outside.

#[test]
fn timed_out_attempts_are_retried_and_the_last_one_names_the_end() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50)).max_retries(Some(1));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let ((wait, r), events) = capture(|| {
        let mut state = engine.start(&clock);
        let (wait, _) = retried(attempt(
            &engine,
            &ctx,
            &mut state,
            &clock,
            AttemptOutcome::TimedOut(Boom(1)),
            None,
        ));
        let r = failed(attempt(
            &engine,
            &ctx,
            &mut state,
            &clock,
            AttemptOutcome::TimedOut(Boom(2)),
            None,
        ));
        (wait, r)
    });
    assert_eq!(wait, ms(50));
    assert_eq!(r.reason, Reason::TimedOut);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.last_error, Some(Boom(2)));
    assert_eq!(
        log.calls(),
        [
            "when boom #1",
            "delay_from boom #1",
            "on_retry 1 boom #1 50ms",
            "when boom #2",
            "on_exhausted TimedOut 2 Some(Boom(2))",
            "on_done TimedOut 2 Some(Boom(2))",
        ]
    );
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Level::INFO, Level::WARN]);
    assert_eq!(events[1].field("reason"), "attempt timed out");
}

#[test]
fn a_timed_out_attempts_error_goes_through_when() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50)).max_retries(Some(1));
    let h = recording!(&log, WithDisplay, never, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let r = failed(attempt(
        &engine,
        &ctx,
        &mut state,
        &clock,
        AttemptOutcome::TimedOut(Boom(1)),
        None,
    ));
    // `when` rejects the timed-out attempt's error as it would any other.
    assert_eq!(r.reason, Reason::NotRetryable);
    assert_eq!(log.calls()[0], "when boom #1");
}

#[test]
fn last_attempt_failing_plainly_after_a_timeout_is_exhausted() {
    let _s = serial();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50)).max_retries(Some(1));
    let h = hooks(WithDisplay);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    retried(attempt(
        &engine,
        &ctx,
        &mut state,
        &clock,
        AttemptOutcome::TimedOut(Boom(1)),
        None,
    ));
    let r = failed(attempt(&engine, &ctx, &mut state, &clock, fail(2), None));
    assert_eq!(r.reason, Reason::Exhausted);
}

#[test]
fn panic_ends_the_call_without_on_exhausted() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let ((r, state), events) = capture(|| {
        let mut state = engine.start(&clock);
        let (wait, error) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
        clock.advance(wait);
        let r = failed(attempt(
            &engine,
            &ctx,
            &mut state,
            &clock,
            AttemptOutcome::Panicked("kaboom".to_owned()),
            Some(error),
        ));
        (r, state)
    });
    assert_eq!(state.made, 2);
    assert_eq!(r.reason, Reason::Panicked);
    assert_eq!(r.attempts, 2);
    assert_eq!(r.last_error, Some(Boom(1)));
    assert_eq!(r.elapsed, ms(50));
    assert_eq!(
        log.calls()[3..],
        ["on_done Panicked 2 Some(Boom(1))"],
        "{:?}",
        log.calls()
    );
    log.assert_in_call(&ctx);
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Level::INFO, Level::ERROR]);
    let e = &events[1];
    assert_eq!(e.message(), "attempt panicked; the call ends");
    assert_eq!(e.target, "engine_tests");
    assert_eq!(e.field("error"), "kaboom");
    assert_eq!(e.field("reason"), "panicked");
}

#[test]
fn stopped_from_outside_reports_the_previous_error() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let (r, events) = capture(|| {
        let mut state = engine.start(&clock);
        let (wait, error) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
        clock.advance(wait / 2);
        // Cancelled during the wait: the executor settles the attempt that would have run.
        engine.on_outcome(
            &ctx,
            &mut state,
            AttemptOutcome::Stopped(Reason::Cancelled, None),
            Some(error),
            &clock,
        )
    });
    let r = failed(r);
    assert_eq!(r.reason, Reason::Cancelled);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.last_error, Some(Boom(1)));
    assert_eq!(r.elapsed, ms(25));
    // No `on_exhausted` for a stop from outside.
    assert_eq!(log.calls()[3..], ["on_done Cancelled 1 Some(Boom(1))"]);
    log.assert_in_call(&ctx);
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Level::INFO, Level::INFO]);
    assert_eq!(events[1].field("reason"), "cancelled");
}

#[test]
fn stopped_with_its_own_error_reports_that_one() {
    let _s = serial();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50));
    let h = hooks(WithDisplay);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let r = failed(attempt(
        &engine,
        &ctx,
        &mut state,
        &clock,
        AttemptOutcome::Stopped(Reason::ShutDown, Some(Boom(2))),
        Some(Boom(1)),
    ));
    assert_eq!(r.reason, Reason::ShutDown);
    assert_eq!(r.last_error, Some(Boom(2)));
}

// ---------------------------------------------------------------------------------------
// The fallback.

#[test]
fn fallback_recovers_and_on_done_sees_no_error() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50)).max_retries(Some(1));
    let h = recording!(&log, WithDisplay, always, no_hint).with_fallback(Hook(
        |r: Report<Boom>| -> R {
            log.report("fallback", &r);
            Ok(42)
        },
    ));
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let ((v, state), events) = capture(|| {
        let mut state = engine.start(&clock);
        retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
        clock.advance(ms(70));
        let v = succeeded(attempt(&engine, &ctx, &mut state, &clock, fail(2), None));
        (v, state)
    });
    assert_eq!(v, 42);
    assert_eq!(state.made, 2);
    assert_eq!(
        log.calls()[4..],
        [
            "on_exhausted Exhausted 2 Some(Boom(2))",
            "fallback Exhausted 2 Some(Boom(2))",
            "on_done Exhausted 2 None",
        ]
    );
    assert_eq!(log.last_report().elapsed, ms(70));
    log.assert_in_call(&ctx);
    // Recovered: INFO, no WARN.
    let levels: Vec<_> = events.iter().map(|e| e.level).collect();
    assert_eq!(levels, [Level::INFO, Level::INFO]);
    assert_eq!(events[1].message(), "call recovered by its fallback");
    assert_eq!(events[1].target, "engine_tests");
    assert_eq!(events[1].field("reason"), "retries exhausted");
    assert_eq!(events[1].get("error"), None);
}

#[test]
fn fallback_error_becomes_the_calls_error() {
    let _s = serial();
    let (log, clock, ctx) = (Log::default(), FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(50));
    let h =
        recording!(&log, WithDisplay, never, no_hint).with_fallback(Hook(|r: Report<Boom>| -> R {
            log.report("fallback", &r);
            Err(Boom(99))
        }));
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let (r, events) = capture(|| {
        let mut state = engine.start(&clock);
        failed(attempt(&engine, &ctx, &mut state, &clock, fail(1), None))
    });
    assert_eq!(r.reason, Reason::NotRetryable);
    assert_eq!(r.attempts, 1);
    assert_eq!(r.last_error, Some(Boom(99)));
    assert_eq!(
        log.calls(),
        [
            "when boom #1",
            "on_exhausted NotRetryable 1 Some(Boom(1))",
            "fallback NotRetryable 1 Some(Boom(1))",
            "on_done NotRetryable 1 Some(Boom(99))",
        ]
    );
    log.assert_in_call(&ctx);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0].level, Level::INFO);
    assert_eq!(events[0].field("error"), "boom #99");
}

// ---------------------------------------------------------------------------------------
// Identity.

#[test]
fn report_and_hooks_carry_the_calls_cid_and_parent() {
    let _s = serial();
    let outer = CallCtx::new();
    let ctx = {
        let _in = outer.enter();
        CallCtx::new()
    };
    let (log, clock) = (Log::default(), FakeClock::new());
    let policy = fixed(ms(1)).max_retries(Some(1));
    let h = recording!(&log, WithDisplay, always, no_hint);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let (r, events) = capture(|| {
        let mut state = engine.start(&clock);
        retried(attempt(&engine, &ctx, &mut state, &clock, fail(1), None));
        failed(attempt(&engine, &ctx, &mut state, &clock, fail(2), None))
    });
    assert_ne!(ctx.cid(), outer.cid());
    assert_eq!(r.cid, ctx.cid());
    assert_eq!(r.parent, Some(outer.cid()));
    assert_eq!(log.last_report().parent, Some(outer.cid()));
    log.assert_in_call(&ctx);
    // Outside the hooks the call is not current.
    assert_eq!(current_cid(), None);
    assert_eq!(events[1].field("parent"), outer.cid().to_string());
    assert_eq!(events[1].field("cid"), ctx.cid().to_string());
}

// ---------------------------------------------------------------------------------------
// When the clock is read.

#[test]
fn start_reads_the_clock_only_when_something_sees_the_elapsed_time() {
    let _s = serial();
    let policy = fixed(ms(1));
    let budget = policy.budget(Some(Duration::from_secs(1)));
    let bare = hooks(WithDisplay);
    let reads = |policy: &Policy, on_done: bool| {
        let clock = FakeClock::new();
        let state = if on_done {
            let h = hooks(WithDisplay).with_on_done(Hook(|_: &Report<Boom>| {}));
            Engine::<R, _>::new(&SITE, policy, &h).start(&clock)
        } else {
            Engine::<R, _>::new(&SITE, policy, &bare).start(&clock)
        };
        assert_eq!(state.started.is_some(), clock.reads() == 1);
        clock.reads()
    };

    no_subscriber();
    assert_eq!(reads(&policy, false), METRICS, "nothing observes the call");
    assert_eq!(reads(&budget, false), 1, "a budget");
    assert_eq!(reads(&policy, true), 1, "a hook that reads the report");
    let with_exhausted = hooks(WithDisplay).with_on_exhausted(Hook(|_: &Report<Boom>| {}));
    let clock = FakeClock::new();
    Engine::<R, _>::new(&SITE, &policy, &with_exhausted).start(&clock);
    assert_eq!(clock.reads(), 1, "on_exhausted reads the report");
    let with_fallback = hooks(WithDisplay).with_fallback(Hook(|_: Report<Boom>| -> R { Ok(0) }));
    let clock = FakeClock::new();
    Engine::<R, _>::new(&SITE, &policy, &with_fallback).start(&clock);
    assert_eq!(clock.reads(), 1, "the fallback reads the report");

    let (n, _) = capture(|| reads(&policy, false));
    assert_eq!(n, 1, "a subscriber that wants the WARN event");
}

#[test]
fn a_hook_free_call_without_budget_reads_no_clock_while_retrying() {
    let _s = serial();
    no_subscriber();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = fixed(ms(5)).max_retries(Some(3));
    let h = hooks(WithDisplay)
        .with_when(Hook(always))
        .with_on_retry(Hook(|_: u32, _: &Boom, _: Duration| {}));
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    for n in 1..=3 {
        retried(attempt(&engine, &ctx, &mut state, &clock, fail(n), None));
    }
    assert_eq!(clock.reads(), METRICS);
    // The end builds a report, which reads the clock once (the metrics take its elapsed).
    let r = failed(attempt(&engine, &ctx, &mut state, &clock, fail(4), None));
    assert_eq!(clock.reads(), 1 + METRICS);
    assert_eq!(r.elapsed, Duration::ZERO);
}

// ---------------------------------------------------------------------------------------
// Waits.

#[test]
fn decorrelated_jitter_remembers_the_last_wait() {
    let _s = serial();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = Policy::new()
        .max_retries(None)
        .delay(ms(10))
        .max_delay(Some(Duration::from_secs(1)))
        .jitter(Jitter::Decorrelated);
    let h = hooks(WithDisplay);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let mut previous = ms(10);
    for n in 1..50 {
        let (wait, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(n), None));
        assert_eq!(
            u128::from(state.last_wait_ns),
            wait.as_nanos(),
            "attempt {n}"
        );
        assert!(wait >= ms(10) && wait <= previous * 3 && wait <= Duration::from_secs(1));
        previous = wait.max(ms(10));
    }
}

#[test]
fn retrying_forever_never_waits_past_the_default_cap() {
    let _s = serial();
    let (clock, ctx) = (FakeClock::new(), CallCtx::new());
    let policy = Policy::new()
        .max_retries(None)
        .delay(Duration::from_secs(1));
    assert_eq!(policy.max_delay, None);
    let h = hooks(WithDisplay).with_delay_from(NoHook);
    let engine = Engine::<R, _>::new(&SITE, &policy, &h);
    let mut state = engine.start(&clock);
    let mut waits = Vec::new();
    for n in 1..=100 {
        let (wait, _) = retried(attempt(&engine, &ctx, &mut state, &clock, fail(n), None));
        waits.push(wait);
    }
    assert_eq!(state.made, 100);
    assert_eq!(waits[..3], [1, 2, 4].map(Duration::from_secs));
    assert!(waits.iter().all(|w| *w <= DEFAULT_MAX_DELAY));
    assert_eq!(waits[99], DEFAULT_MAX_DELAY);
}

/// An async call keeps its progress packed (`PackedAttempts`, 24 bytes): every field comes
/// back as it went in, a start before the epoch and no start included.
#[test]
fn packed_attempts_round_trip() {
    use super::{CallState, PackedAttempts};
    assert_eq!(core::mem::size_of::<PackedAttempts>(), 24);
    assert_eq!(core::mem::size_of::<Attempts>(), 32);
    let starts = [
        None,
        Some(UNIX_EPOCH),
        Some(UNIX_EPOCH + Duration::new(1_700_000_000, 123_456_789)),
        Some(UNIX_EPOCH - Duration::new(5, 0)),
        Some(UNIX_EPOCH - Duration::new(5, 1)),
        Some(SystemTime::now()),
    ];
    for started in starts {
        let a = Attempts {
            made: 7,
            last_wait_ns: 40_000,
            started,
        };
        let mut p = PackedAttempts::store(a);
        assert_eq!(p.load(), a);
        assert_eq!((p.made(), p.observed()), (7, started.is_some()));
        p.start_attempt();
        assert_eq!(p.load(), Attempts { made: 8, ..a });
    }
}
