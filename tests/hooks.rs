//! The hooks (`when`, `delay_from`, `on_retry`, `on_exhausted`, `fallback`), the report they
//! see, and what the body keeps: `return`, `?`, panics and fresh arguments.
use retry_runtime::{current_cid, retry, testing, Reason, Report};
use std::cell::{Cell, RefCell};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, Clone, PartialEq)]
enum E {
    /// Worth retrying.
    Transient(u32),
    /// Not worth retrying (when a `when` says so).
    Fatal(u32),
    /// Asks for a wait of this many milliseconds.
    Busy(u64),
}

impl From<std::num::ParseIntError> for E {
    fn from(_: std::num::ParseIntError) -> Self {
        E::Fatal(u32::MAX)
    }
}

fn tick(calls: &Cell<u32>) -> u32 {
    calls.set(calls.get() + 1);
    calls.get()
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

type Reports = RefCell<Vec<Report<E>>>;

// ---------------------------------------------------------------- when

#[retry(
    max = 5,
    backoff = "fixed",
    delay = "10ms",
    when = |e: &E| matches!(e, E::Transient(_)),
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn fatal_at(calls: &Cell<u32>, at: u32, reports: &Reports) -> Result<(), E> {
    let n = tick(calls);
    if n >= at {
        Err(E::Fatal(n))
    } else {
        Err(E::Transient(n))
    }
}

#[test]
fn when_rejecting_the_first_error_ends_the_call_at_once() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(fatal_at(&calls, 1, &reports), Err(E::Fatal(1)));
    assert_eq!(calls.get(), 1);
    assert!(sleeps.delays().is_empty(), "no wait after a rejected error");
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].attempts, 1);
    assert_eq!(reports[0].reason, Reason::NotRetryable);
    assert_eq!(reports[0].last_error, Some(E::Fatal(1)));
}

#[test]
fn when_rejecting_a_later_error_ends_the_call_there() {
    let sleeps = testing::instant_sleeps();
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(fatal_at(&calls, 3, &reports), Err(E::Fatal(3)));
    assert_eq!(calls.get(), 3);
    assert_eq!(sleeps.delays(), [ms(10), ms(10)]);
    let r = &reports.borrow()[0];
    assert_eq!((r.attempts, r.reason), (3, Reason::NotRetryable));
}

#[retry(max = 2, delay = "0ms", when = |e: &E| matches!(e, E::Transient(_)))]
async fn fatal_async(calls: &Cell<u32>) -> Result<(), E> {
    Err(E::Fatal(tick(calls)))
}

#[tokio::test(start_paused = true)]
async fn when_rejecting_async() {
    let calls = Cell::new(0);
    assert_eq!(fatal_async(&calls).await, Err(E::Fatal(1)));
    assert_eq!(calls.get(), 1);
}

// ---------------------------------------------------------------- delay_from

#[retry(
    max = 4,
    backoff = "fixed",
    delay = "10ms",
    max_delay = "1s",
    delay_from = |e: &E| match e {
        E::Busy(ms) => Some(Duration::from_millis(*ms)),
        _ => None,
    },
)]
fn hinted(errors: &RefCell<Vec<E>>) -> Result<(), E> {
    Err(errors.borrow_mut().remove(0))
}

#[test]
fn delay_from_replaces_the_wait_as_asked() {
    let sleeps = testing::instant_sleeps();
    let errors = RefCell::new(vec![
        E::Busy(250),
        E::Transient(2),
        E::Busy(5000),
        E::Busy(0),
        E::Transient(5),
    ]);
    assert_eq!(hinted(&errors), Err(E::Transient(5)));
    // 250 as asked; None falls back to the computed 10; 5000 as asked (`max_delay` caps only
    // computed waits); 0 as asked.
    assert_eq!(sleeps.delays(), [ms(250), ms(10), ms(5000), ms(0)]);
}

#[retry(
    max = 2,
    delay = "10ms",
    max_delay = "300ms",
    delay_from = |e: &E| if let E::Busy(ms) = e { Some(Duration::from_millis(*ms)) } else { None },
)]
async fn hinted_async(starts: &RefCell<Vec<Instant>>) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    Err(E::Busy(if starts.borrow().len() == 1 { 70 } else { 900 }))
}

#[tokio::test(start_paused = true)]
async fn delay_from_async() {
    let starts = RefCell::default();
    assert_eq!(hinted_async(&starts).await, Err(E::Busy(900)));
    let s = starts.borrow();
    // Asked-for waits are honoured as asked, above `max_delay` too.
    assert_eq!([s[1] - s[0], s[2] - s[1]], [ms(70), ms(900)]);
}

// ---------------------------------------------------------------- on_retry

#[derive(Debug, PartialEq)]
enum Ev {
    Attempt(u32),
    Retry {
        n: u32,
        err: E,
        delay: Duration,
        /// How many waits had happened when the hook ran.
        waits_before: usize,
    },
}

/// The number of sync waits recorded so far on this thread.
fn waits_so_far() -> usize {
    testing::instant_sleeps().delays().len()
}

#[retry(
    max = 3,
    backoff = "linear",
    delay = "10ms",
    on_retry = |n, e: &E, d| log.borrow_mut().push(Ev::Retry {
        n,
        err: e.clone(),
        delay: d,
        waits_before: waits_so_far(),
    }),
)]
fn logged(log: &RefCell<Vec<Ev>>, ok_at: u32) -> Result<u32, E> {
    let n = 1 + u32::try_from(
        log.borrow()
            .iter()
            .filter(|e| matches!(e, Ev::Attempt(_)))
            .count(),
    )
    .unwrap();
    log.borrow_mut().push(Ev::Attempt(n));
    if n >= ok_at {
        Ok(n)
    } else {
        Err(E::Transient(n * 10))
    }
}

fn retry_ev(n: u32, delay: u64) -> Ev {
    Ev::Retry {
        n,
        err: E::Transient(n * 10),
        delay: ms(delay),
        waits_before: usize::try_from(n).unwrap() - 1,
    }
}

#[test]
fn on_retry_runs_before_each_wait_with_attempt_error_and_delay() {
    let sleeps = testing::instant_sleeps();
    let log = RefCell::default();
    assert_eq!(logged(&log, 99), Err(E::Transient(40)));
    assert_eq!(
        log.into_inner(),
        [
            Ev::Attempt(1),
            retry_ev(1, 10),
            Ev::Attempt(2),
            retry_ev(2, 20),
            Ev::Attempt(3),
            retry_ev(3, 30),
            Ev::Attempt(4),
        ]
    );
    assert_eq!(sleeps.delays(), [10, 20, 30].map(ms));
}

#[test]
fn on_retry_not_called_after_success() {
    let _sleeps = testing::instant_sleeps();
    let log = RefCell::default();
    assert_eq!(logged(&log, 2), Ok(2));
    assert_eq!(
        log.into_inner(),
        [Ev::Attempt(1), retry_ev(1, 10), Ev::Attempt(2)]
    );
    let log = RefCell::default();
    assert_eq!(logged(&log, 1), Ok(1));
    assert_eq!(log.into_inner(), [Ev::Attempt(1)]);
}

#[retry(
    max = 2,
    delay = "5ms",
    on_retry = |n, e: &E, d| log.borrow_mut().push((n, e.clone(), d, Instant::now())),
)]
async fn logged_async(
    log: &RefCell<Vec<(u32, E, Duration, Instant)>>,
    starts: &RefCell<Vec<Instant>>,
) -> Result<(), E> {
    starts.borrow_mut().push(Instant::now());
    tokio::time::sleep(ms(1)).await;
    Err(E::Transient(u32::try_from(starts.borrow().len()).unwrap()))
}

#[tokio::test(start_paused = true)]
async fn on_retry_async_runs_after_the_attempt_and_before_the_wait() {
    let (log, starts) = (RefCell::default(), RefCell::default());
    assert_eq!(logged_async(&log, &starts).await, Err(E::Transient(3)));
    let log = log.into_inner();
    let starts = starts.into_inner();
    assert_eq!(log.len(), 2);
    for (i, (n, e, d, at)) in log.iter().enumerate() {
        let n_want = u32::try_from(i).unwrap() + 1;
        assert_eq!((*n, e), (n_want, &E::Transient(n_want)));
        assert_eq!(*d, ms(5) * 2u32.pow(n_want - 1));
        // At the end of the attempt (1 ms in), a full wait before the next attempt.
        assert_eq!(*at, starts[i] + ms(1));
        assert_eq!(starts[i + 1], *at + *d);
    }
}

// ---------------------------------------------------------------- on_exhausted, report

#[retry(
    max = 2,
    delay = "0ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn exhausts(calls: &Cell<u32>, ok_at: u32, reports: &Reports) -> Result<u32, E> {
    let n = tick(calls);
    if n >= ok_at {
        Ok(n)
    } else {
        Err(E::Transient(n))
    }
}

#[retry(
    max = 1,
    delay = "0ms",
    name = "billing::charge",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
fn renamed(reports: &Reports) -> Result<(), E> {
    Err(E::Fatal(7))
}

#[test]
fn on_exhausted_once_with_the_report() {
    let (calls, reports) = (Cell::new(0), Reports::default());
    assert_eq!(exhausts(&calls, 99, &reports), Err(E::Transient(3)));
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1, "exactly once");
    let r = &reports[0];
    assert_eq!(r.name, "hooks::exhausts");
    assert_eq!(r.attempts, 3);
    assert_eq!(r.reason, Reason::Exhausted);
    assert_eq!(r.last_error, Some(E::Transient(3)));
    assert_eq!(r.parent, None);
    assert_eq!(r.policy.max_retries, Some(2));
    assert!(!r.is_ok());
}

#[test]
fn on_exhausted_never_on_success() {
    for ok_at in 1..=3 {
        let (calls, reports) = (Cell::new(0), Reports::default());
        assert_eq!(exhausts(&calls, ok_at, &reports), Ok(ok_at));
        assert!(
            reports.borrow().is_empty(),
            "called after success at {ok_at}"
        );
    }
}

#[test]
fn report_name_override() {
    let reports = Reports::default();
    assert_eq!(renamed(&reports), Err(E::Fatal(7)));
    let r = &reports.borrow()[0];
    assert_eq!(r.name, "billing::charge");
    assert_eq!((r.attempts, r.reason), (2, Reason::Exhausted));
}

#[retry(
    max = 3,
    delay = "10ms",
    on_exhausted = |r: &Report<E>| reports.borrow_mut().push(r.clone()),
)]
async fn exhausts_async(reports: &Reports) -> Result<(), E> {
    tokio::time::sleep(ms(1)).await;
    Err(E::Busy(1))
}

#[tokio::test(start_paused = true)]
async fn on_exhausted_async() {
    let reports = Reports::default();
    assert_eq!(exhausts_async(&reports).await, Err(E::Busy(1)));
    let reports = reports.into_inner();
    assert_eq!(reports.len(), 1);
    let r = &reports[0];
    assert_eq!(r.name, "hooks::exhausts_async");
    assert_eq!((r.attempts, r.reason), (4, Reason::Exhausted));
    assert_eq!(r.last_error, Some(E::Busy(1)));
}

// ---------------------------------------------------------------- fallback

/// An error that cannot be cloned: the fallback gets it by value.
#[derive(Debug, PartialEq)]
struct Owned(String);

#[derive(Debug, PartialEq)]
enum Answer {
    Live(u32),
    Cached {
        attempts: u32,
        reason: Reason,
        error: Owned,
    },
}

#[retry(
    max = 2,
    delay = "0ms",
    fallback = |r: Report<Owned>| Ok(Answer::Cached {
        attempts: r.attempts,
        reason: r.reason,
        error: r.last_error.expect("the last error"),
    }),
)]
fn with_fallback(calls: &Cell<u32>, ok_at: u32) -> Result<Answer, Owned> {
    let n = tick(calls);
    if n >= ok_at {
        Ok(Answer::Live(n))
    } else {
        Err(Owned(format!("failure {n}")))
    }
}

#[test]
fn fallback_turns_the_failure_into_the_value_with_the_owned_error() {
    let calls = Cell::new(0);
    assert_eq!(
        with_fallback(&calls, 99),
        Ok(Answer::Cached {
            attempts: 3,
            reason: Reason::Exhausted,
            error: Owned("failure 3".into()),
        })
    );
    assert_eq!(calls.get(), 3);
}

#[test]
fn fallback_not_called_on_success() {
    let calls = Cell::new(0);
    assert_eq!(with_fallback(&calls, 2), Ok(Answer::Live(2)));
}

#[retry(
    max = 1,
    delay = "0ms",
    when = |e: &E| !matches!(e, E::Fatal(_)),
    on_exhausted = |r: &Report<E>| order.borrow_mut().push(format!("exhausted {:?}", r.reason)),
    fallback = |r: Report<E>| {
        order.borrow_mut().push("fallback".into());
        match r.last_error {
            Some(E::Fatal(n)) => Err(E::Transient(n + 1)),
            other => Err(other.unwrap()),
        }
    },
)]
fn fallback_may_fail(order: &RefCell<Vec<String>>) -> Result<u32, E> {
    Err(E::Fatal(41))
}

#[test]
fn fallback_after_on_exhausted_and_its_error_is_returned() {
    let order = RefCell::default();
    assert_eq!(fallback_may_fail(&order), Err(E::Transient(42)));
    assert_eq!(
        order.into_inner(),
        ["exhausted NotRetryable".to_string(), "fallback".into()]
    );
}

#[retry(max = 2, delay = "10ms", fallback = |r: Report<E>| Ok(r.attempts * 1000))]
async fn fallback_async(calls: &Cell<u32>) -> Result<u32, E> {
    Err(E::Transient(tick(calls)))
}

#[tokio::test(start_paused = true)]
async fn fallback_async_answers() {
    let calls = Cell::new(0);
    let t0 = Instant::now();
    assert_eq!(fallback_async(&calls).await, Ok(3000));
    assert_eq!(t0.elapsed(), ms(30));
}

// ---------------------------------------------------------------- hooks using the arguments

#[retry(
    max = 5,
    backoff = "fixed",
    delay = "1ms",
    when = |e: &E| matches!(e, E::Transient(n) if *n < limit),
    delay_from = |_: &E| Some(Duration::from_millis(step)),
    on_retry = |n, _: &E, _| seen.borrow_mut().push(format!("{label}:{n}")),
    fallback = |r: Report<E>| Ok(format!("{label} gave up after {}", r.attempts)),
)]
fn uses_args(
    label: String,
    limit: u32,
    step: u64,
    seen: &RefCell<Vec<String>>,
) -> Result<String, E> {
    let n = u32::try_from(seen.borrow().len()).unwrap() + 1;
    Err(E::Transient(n))
}

#[test]
fn closure_hooks_see_the_arguments() {
    let sleeps = testing::instant_sleeps();
    let seen = RefCell::default();
    assert_eq!(
        uses_args("db".into(), 3, 7, &seen),
        Ok("db gave up after 3".to_string())
    );
    assert_eq!(seen.into_inner(), ["db:1", "db:2"]);
    assert_eq!(sleeps.delays(), [ms(7), ms(7)]);
}

#[retry(
    max = 3,
    delay = "0ms",
    when = |e: &E| !matches!(e, E::Fatal(n) if *n == stop_on),
    on_retry = |n, _: &E, _| seen.borrow_mut().push(n + offset),
)]
async fn uses_args_async(stop_on: u32, offset: u32, seen: &RefCell<Vec<u32>>) -> Result<(), E> {
    let n = u32::try_from(seen.borrow().len()).unwrap() + 1;
    tokio::task::yield_now().await;
    Err(E::Fatal(n))
}

#[tokio::test(start_paused = true)]
async fn closure_hooks_see_the_arguments_async() {
    let seen = RefCell::default();
    assert_eq!(uses_args_async(3, 100, &seen).await, Err(E::Fatal(3)));
    assert_eq!(seen.into_inner(), [101, 102]);
}

// ---------------------------------------------------------------- hooks as paths

thread_local! {
    static PATH_LOG: RefCell<Vec<String>> = const { RefCell::new(Vec::new()) };
}

fn plog(s: String) {
    PATH_LOG.with(|l| l.borrow_mut().push(s));
}

fn is_transient(e: &E) -> bool {
    !matches!(e, E::Fatal(_))
}

fn busy_hint(e: &E) -> Option<Duration> {
    match e {
        E::Busy(ms) => Some(Duration::from_millis(*ms)),
        _ => None,
    }
}

fn log_retry(n: u32, e: &E, d: Duration) {
    plog(format!("retry {n} {e:?} {d:?}"));
}

fn log_exhausted(r: &Report<E>) {
    plog(format!(
        "exhausted {} {:?} {:?}",
        r.attempts, r.reason, r.last_error
    ));
}

#[allow(clippy::needless_pass_by_value)] // a fallback owns the report
fn recover(r: Report<E>) -> Result<u32, E> {
    plog("recover".into());
    match r.last_error {
        Some(E::Fatal(n)) => Ok(n),
        Some(e) => Err(e),
        None => Ok(0),
    }
}

#[retry(
    max = 4,
    backoff = "fixed",
    delay = "3ms",
    when = is_transient,
    delay_from = busy_hint,
    on_retry = log_retry,
    on_exhausted = log_exhausted,
    fallback = recover,
)]
fn path_hooks(errors: &RefCell<Vec<E>>) -> Result<u32, E> {
    Err(errors.borrow_mut().remove(0))
}

#[test]
fn hooks_given_as_paths() {
    let sleeps = testing::instant_sleeps();
    PATH_LOG.with(RefCell::take);
    let errors = RefCell::new(vec![E::Busy(20), E::Transient(1), E::Fatal(9), E::Busy(1)]);
    assert_eq!(path_hooks(&errors), Ok(9));
    assert_eq!(sleeps.delays(), [ms(20), ms(3)]);
    assert_eq!(
        PATH_LOG.with(RefCell::take),
        [
            "retry 1 Busy(20) 20ms",
            "retry 2 Transient(1) 3ms",
            "exhausted 3 NotRetryable Some(Fatal(9))",
            "recover",
        ]
    );
}

// ---------------------------------------------------------------- return, ?, early exits

#[retry(max = 3, delay = "0ms")]
fn early_exits(calls: &Cell<u32>, input: &str) -> Result<u32, E> {
    let n = tick(calls);
    if n == 1 {
        // Ends this attempt, not the call.
        return Err(E::Transient(1));
    }
    // `?` converts with `From` and ends this attempt.
    let v: u32 = input.parse()?;
    if v == 0 {
        return Ok(1000 + n);
    }
    // A closure's `return` and a labelled `break` stay where they are.
    #[allow(clippy::needless_return)]
    let double = |x: u32| -> u32 {
        return x * 2;
    };
    let mut found = 0;
    'outer: for i in 0..10 {
        for j in 0..10 {
            if i * j == v {
                found = i + j;
                break 'outer;
            }
        }
    }
    Ok(double(found) + n)
}

#[test]
fn return_and_question_mark_end_the_attempt() {
    let calls = Cell::new(0);
    assert_eq!(early_exits(&calls, "x"), Err(E::Fatal(u32::MAX)));
    assert_eq!(calls.get(), 4, "`return Err` and `?` are retried");
    let calls = Cell::new(0);
    assert_eq!(early_exits(&calls, "0"), Ok(1002), "early `return Ok`");
    let calls = Cell::new(0);
    assert_eq!(early_exits(&calls, "12"), Ok(2 * (2 + 6) + 2));
}

#[retry(max = 3, delay = "0ms")]
async fn early_exits_async(calls: &Cell<u32>, input: &str) -> Result<u32, E> {
    let n = tick(calls);
    tokio::task::yield_now().await;
    if n == 1 {
        return Err(E::Transient(1));
    }
    let v: u32 = input.parse()?;
    if v == 0 {
        return Ok(1000 + n);
    }
    Ok(v + n)
}

#[tokio::test(start_paused = true)]
async fn return_and_question_mark_end_the_attempt_async() {
    let calls = Cell::new(0);
    assert_eq!(
        early_exits_async(&calls, "x").await,
        Err(E::Fatal(u32::MAX))
    );
    assert_eq!(calls.get(), 4);
    let calls = Cell::new(0);
    assert_eq!(early_exits_async(&calls, "0").await, Ok(1002));
    let calls = Cell::new(0);
    assert_eq!(early_exits_async(&calls, "5").await, Ok(7));
}

// ---------------------------------------------------------------- panics

#[retry(max = 3, delay = "0ms")]
fn panics_at(calls: &Cell<u32>, at: u32) -> Result<(), E> {
    let n = tick(calls);
    assert!(n != at, "boom at {n}");
    Err(E::Transient(n))
}

#[test]
fn a_panic_is_not_retried() {
    let calls = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| panics_at(&calls, 1)));
    assert!(r.is_err(), "the panic reaches the caller");
    assert_eq!(calls.get(), 1);
    assert!(
        current_cid().is_none(),
        "the call's context is left on unwind"
    );

    let calls = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| panics_at(&calls, 2)));
    assert!(r.is_err());
    assert_eq!(calls.get(), 2, "a panic after a failure ends the call too");
}

#[retry(max = 3, delay = "10ms")]
async fn panics_async(calls: &Cell<u32>) -> Result<(), E> {
    let n = tick(calls);
    tokio::task::yield_now().await;
    assert!(n != 1, "boom");
    Err(E::Transient(n))
}

#[test]
fn a_panic_is_not_retried_async() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap();
    let calls = Cell::new(0);
    let r = catch_unwind(AssertUnwindSafe(|| rt.block_on(panics_async(&calls))));
    assert!(r.is_err());
    assert_eq!(calls.get(), 1);
    assert!(current_cid().is_none());
}

// ---------------------------------------------------------------- fresh arguments

#[derive(Clone, Debug, PartialEq)]
struct Cart {
    items: Vec<u32>,
}

#[retry(max = 3, delay = "0ms")]
fn mutates(
    mut cart: Cart,
    mut tag: String,
    n: u32,
    seen: &RefCell<Vec<(Cart, String)>>,
) -> Result<(), E> {
    seen.borrow_mut().push((cart.clone(), tag.clone()));
    cart.items.push(n);
    tag.push('!');
    Err(E::Transient(u32::try_from(cart.items.len()).unwrap()))
}

#[test]
fn by_value_arguments_are_fresh_each_attempt() {
    let seen = RefCell::default();
    let cart = Cart { items: vec![1, 2] };
    assert_eq!(
        mutates(cart.clone(), "t".into(), 9, &seen),
        Err(E::Transient(3)),
        "the last attempt also started from two items"
    );
    let seen = seen.into_inner();
    assert_eq!(seen.len(), 4);
    assert!(seen.iter().all(|(c, t)| *c == cart && t == "t"), "{seen:?}");
}

#[retry(max = 2, delay = "1ms")]
async fn mutates_async(mut items: Vec<u32>, seen: &RefCell<Vec<Vec<u32>>>) -> Result<(), E> {
    seen.borrow_mut().push(items.clone());
    items.push(0);
    tokio::task::yield_now().await;
    items.push(1);
    Err(E::Transient(u32::try_from(items.len()).unwrap()))
}

#[tokio::test(start_paused = true)]
async fn by_value_arguments_are_fresh_each_attempt_async() {
    let seen = RefCell::default();
    assert_eq!(mutates_async(vec![5], &seen).await, Err(E::Transient(3)));
    assert_eq!(seen.into_inner(), vec![vec![5]; 3]);
}
