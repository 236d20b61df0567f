//! The metrics of `retry-runtime/metrics`, read from `metrics-util`'s debugging recorder:
//! every counter, histogram and gauge, with its labels, for inline sync, inline async,
//! background and hand-off calls. Async tests run on tokio's paused clock, so durations are
//! exact.
//!
//! The recorder is installed once, before any call (each function registers its handles on
//! its first call). A snapshot drains the recorder, so every read goes through `read`, which
//! adds each snapshot to one running total; each test reads only its own functions' series.
use metrics_util::debugging::{DebugValue, DebuggingRecorder, Snapshotter};
use retry_runtime::{overrides, retry, Handoff, Policy, Reason, Tracker};
use std::collections::BTreeMap;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

// ---------------------------------------------------------------- reading the recorder

#[derive(Default)]
struct Totals {
    counters: BTreeMap<String, u64>,
    gauges: BTreeMap<String, f64>,
    histograms: BTreeMap<String, Vec<f64>>,
}

static TOTALS: Mutex<Option<Totals>> = Mutex::new(None);

fn snapshotter() -> &'static Snapshotter {
    static SNAPSHOTTER: OnceLock<Snapshotter> = OnceLock::new();
    SNAPSHOTTER.get_or_init(|| {
        let recorder = DebuggingRecorder::new();
        let snapshotter = recorder.snapshotter();
        recorder
            .install()
            .expect("the only recorder of this binary");
        snapshotter
    })
}

/// `name{k=v,...}` with the labels sorted.
fn series(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    labels.sort();
    format!("{name}{{{}}}", labels.join(","))
}

fn read<T>(f: impl FnOnce(&Totals) -> T) -> T {
    let mut totals = TOTALS.lock().unwrap();
    let totals = totals.get_or_insert_with(Totals::default);
    for (key, _, _, value) in snapshotter().snapshot().into_vec() {
        let labels: Vec<(&str, &str)> = key.key().labels().map(|l| (l.key(), l.value())).collect();
        let s = series(key.key().name(), &labels);
        match value {
            DebugValue::Counter(n) => *totals.counters.entry(s).or_default() += n,
            DebugValue::Gauge(g) => *totals.gauges.entry(s).or_default() += g.into_inner(),
            DebugValue::Histogram(v) => totals
                .histograms
                .entry(s)
                .or_default()
                .extend(v.into_iter().map(|x| x.0)),
        }
    }
    f(totals)
}

fn labels<'a>(function: &'a str, mode: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![("function", function), ("mode", mode)]
}

fn calls(function: &str, mode: &str, outcome: &str, reason: Option<&str>) -> u64 {
    let mut l = labels(function, mode);
    l.push(("outcome", outcome));
    if let Some(r) = reason {
        l.push(("reason", r));
    }
    read(|t| {
        t.counters
            .get(&series("retry_calls_total", &l))
            .copied()
            .unwrap_or(0)
    })
}

fn retries(function: &str, mode: &str) -> u64 {
    read(|t| {
        t.counters
            .get(&series("retry_retries_total", &labels(function, mode)))
            .copied()
            .unwrap_or(0)
    })
}

fn histogram(name: &str, function: &str, mode: &str) -> Vec<f64> {
    read(|t| {
        t.histograms
            .get(&series(name, &labels(function, mode)))
            .cloned()
            .unwrap_or_default()
    })
}

fn in_flight(function: &str, mode: &str) -> f64 {
    read(|t| {
        t.gauges
            .get(&series("retry_in_flight", &labels(function, mode)))
            .copied()
            .unwrap_or(0.0)
    })
}

/// Every `retry_calls_total` series of a function, as (outcome, reason) -> count.
fn all_calls(function: &str) -> BTreeMap<String, u64> {
    let prefix = "retry_calls_total{";
    let needle = format!("function={function},");
    read(|t| {
        t.counters
            .iter()
            .filter(|(k, n)| k.starts_with(prefix) && k.contains(&needle) && **n > 0)
            .map(|(k, n)| (k.clone(), *n))
            .collect()
    })
}

// ---------------------------------------------------------------- inline, sync

/// Fails its first `fail` attempts (`fatal` ones are not retryable), then succeeds.
#[retry(max = 2, delay = "1s", name = "metrics::inline_sync", when = |e: &String| e != "fatal")]
fn inline_sync(
    fail: u32,
    fatal: bool,
    tries: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<u32, String> {
    let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if n > fail {
        Ok(n)
    } else if fatal {
        Err("fatal".into())
    } else {
        Err("busy".into())
    }
}

#[test]
fn inline_sync_calls() {
    snapshotter();
    let f = "metrics::inline_sync";
    let _sleeps = retry_runtime::testing::instant_sleeps();
    let call = |fail, fatal| inline_sync(fail, fatal, std::sync::Arc::default());

    assert_eq!(call(0, false), Ok(1));
    assert_eq!(calls(f, "inline", "succeeded", None), 1);
    assert_eq!(retries(f, "inline"), 0);
    // A first-attempt success is only counted: no histogram.
    assert!(histogram("retry_call_attempts", f, "inline").is_empty());

    assert_eq!(call(1, false), Ok(2));
    assert_eq!(calls(f, "inline", "succeeded", None), 2);
    assert_eq!(retries(f, "inline"), 1);
    assert_eq!(histogram("retry_call_attempts", f, "inline"), [2.0]);
    let durations = histogram("retry_call_duration_seconds", f, "inline");
    assert_eq!(durations.len(), 1);
    assert!(durations[0] >= 1.0, "the 1 s wait is in it: {durations:?}");

    assert!(call(5, false).is_err());
    assert_eq!(calls(f, "inline", "failed", Some("exhausted")), 1);
    assert_eq!(retries(f, "inline"), 3);

    assert!(call(5, true).is_err());
    assert_eq!(calls(f, "inline", "failed", Some("not_retryable")), 1);
    assert_eq!(
        histogram("retry_call_attempts", f, "inline"),
        [2.0, 3.0, 1.0]
    );
    assert_eq!(all_calls(f).len(), 3, "{:?}", all_calls(f));
}

// ---------------------------------------------------------------- inline, async

#[retry(
    max = 3,
    delay = "100ms",
    timeout = "1s",
    name = "metrics::inline_async"
)]
async fn inline_async(
    fail: u32,
    hang: bool,
    tries: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<u32, std::io::Error> {
    let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if hang {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    if n > fail {
        Ok(n)
    } else {
        Err(std::io::Error::other("busy"))
    }
}

#[retry(max = 5, delay = "100ms", budget = "150ms", fallback = |_r| Ok(0), name = "metrics::recovering")]
async fn recovering() -> Result<u32, String> {
    Err("down".into())
}

#[retry(max = 5, delay = "100ms", budget = "150ms", name = "metrics::budget")]
async fn over_budget() -> Result<u32, String> {
    Err("down".into())
}

#[tokio::test(start_paused = true)]
async fn inline_async_calls() {
    snapshotter();
    let f = "metrics::inline_async";
    let call = |fail, hang| inline_async(fail, hang, std::sync::Arc::default());

    assert_eq!(call(0, false).await.unwrap(), 1);
    assert_eq!(call(2, false).await.unwrap(), 3);
    assert_eq!(calls(f, "inline", "succeeded", None), 2);
    assert_eq!(retries(f, "inline"), 2);
    assert_eq!(histogram("retry_call_attempts", f, "inline"), [3.0]);
    // 100 ms then 200 ms of waits, on the paused clock.
    assert_eq!(histogram("retry_call_duration_seconds", f, "inline"), [0.3]);

    assert!(call(0, true).await.is_err());
    assert_eq!(calls(f, "inline", "failed", Some("timed_out")), 1);
    assert_eq!(retries(f, "inline"), 5);

    // Waits of 100 ms, then 50 ms (shortened to the budget), then the budget is spent.
    assert_eq!(recovering().await, Ok(0));
    let r = "metrics::recovering";
    assert_eq!(calls(r, "inline", "recovered", None), 1);
    assert_eq!(calls(r, "inline", "failed", Some("budget")), 0);
    assert_eq!(histogram("retry_call_attempts", r, "inline"), [3.0]);
    assert_eq!(
        histogram("retry_call_duration_seconds", r, "inline"),
        [0.15]
    );
    assert!(over_budget().await.is_err());
    assert_eq!(
        calls("metrics::budget", "inline", "failed", Some("budget")),
        1
    );
}

// ---------------------------------------------------------------- background

#[retry(
    max = 3,
    delay = "10s",
    mode = "background",
    name = "metrics::background"
)]
async fn background(
    fail: u32,
    tries: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<u32, String> {
    let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if n > fail {
        Ok(n)
    } else {
        Err("busy".into())
    }
}

#[retry(max = 3, delay = "0ms", mode = "background", name = "metrics::panics")]
fn panics() -> Result<u32, String> {
    panic!("boom")
}

#[tokio::test(start_paused = true)]
async fn background_calls() {
    snapshotter();
    let f = "metrics::background";

    let handle = background(1, std::sync::Arc::default());
    tokio::time::sleep(Duration::from_secs(1)).await;
    // Waiting for its second attempt.
    assert!((in_flight(f, "background") - 1.0).abs() < f64::EPSILON);
    assert_eq!(handle.await.unwrap(), 2);
    assert!(in_flight(f, "background").abs() < f64::EPSILON);
    assert_eq!(calls(f, "background", "succeeded", None), 1);
    assert_eq!(retries(f, "background"), 1);
    assert_eq!(histogram("retry_call_attempts", f, "background"), [2.0]);
    assert_eq!(
        histogram("retry_call_duration_seconds", f, "background"),
        [10.0]
    );

    let handle = background(9, std::sync::Arc::default());
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!((in_flight(f, "background") - 1.0).abs() < f64::EPSILON);
    handle.cancel();
    let failure = handle.await.unwrap_err();
    assert_eq!(failure.reason(), Reason::Cancelled);
    assert_eq!(calls(f, "background", "cancelled", None), 1);
    assert!(in_flight(f, "background").abs() < f64::EPSILON);

    let failure = panics().await.unwrap_err();
    assert_eq!(failure.reason(), Reason::Panicked);
    assert_eq!(
        calls("metrics::panics", "background", "failed", Some("panicked")),
        1
    );
}

#[tokio::test(start_paused = true)]
async fn background_calls_shut_down() {
    static TRACKER: Tracker = Tracker::new();
    snapshotter();
    let f = "metrics::shut_down";
    #[retry(
        max = 3,
        delay = "10s",
        mode = "background",
        name = "metrics::shut_down"
    )]
    async fn waits() -> Result<u32, String> {
        Err("busy".into())
    }
    let handle = {
        let _t = TRACKER.enter();
        waits()
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(TRACKER.shutdown(Duration::from_secs(1)).await.len(), 1);
    assert_eq!(handle.await.unwrap_err().reason(), Reason::ShutDown);
    assert_eq!(calls(f, "background", "failed", Some("shut_down")), 1);
    assert!(in_flight(f, "background").abs() < f64::EPSILON);
}

// ---------------------------------------------------------------- hand-off

#[retry(max = 3, delay = "10s", mode = "handoff", name = "metrics::handoff")]
async fn handoff(
    fail: u32,
    tries: std::sync::Arc<std::sync::atomic::AtomicU32>,
) -> Result<u32, String> {
    let n = tries.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
    if n > fail {
        Ok(n)
    } else {
        Err("busy".into())
    }
}

#[tokio::test(start_paused = true)]
async fn handoff_calls() {
    snapshotter();
    let f = "metrics::handoff";
    assert!(matches!(
        handoff(0, std::sync::Arc::default()).await,
        Handoff::Done(Ok(1))
    ));
    assert_eq!(calls(f, "handoff", "succeeded", None), 1);
    assert!(in_flight(f, "handoff").abs() < f64::EPSILON);

    let Handoff::Retrying(handle) = handoff(1, std::sync::Arc::default()).await else {
        panic!("the first attempt failed, so the call moves to the background");
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!((in_flight(f, "handoff") - 1.0).abs() < f64::EPSILON);
    assert_eq!(handle.await.unwrap(), 2);
    assert!(in_flight(f, "handoff").abs() < f64::EPSILON);
    assert_eq!(calls(f, "handoff", "succeeded", None), 2);
    assert_eq!(retries(f, "handoff"), 1);
    assert_eq!(histogram("retry_call_attempts", f, "handoff"), [2.0]);
    assert_eq!(
        histogram("retry_call_duration_seconds", f, "handoff"),
        [10.0]
    );
}

// ---------------------------------------------------------------- operators' reasons

#[retry(
    max = "forever",
    delay = "0ms",
    throttle = "1%",
    name = "metrics::throttled"
)]
fn throttled() -> Result<(), String> {
    Err("down".into())
}

#[retry(max = 5, delay = "0ms", name = "metrics::disabled")]
fn disabled() -> Result<(), String> {
    Err("down".into())
}

#[test]
fn throttled_and_disabled_calls() {
    snapshotter();
    assert!(throttled().is_err());
    let t = "metrics::throttled";
    assert_eq!(calls(t, "inline", "failed", Some("throttled")), 1);
    assert_eq!(
        retries(t, "inline"),
        u64::from(retry_runtime::Throttle::FLOOR)
    );

    overrides::set("metrics::disabled", Policy::new().max_retries(Some(0)));
    assert!(disabled().is_err());
    overrides::clear("metrics::disabled");
    let d = "metrics::disabled";
    assert_eq!(calls(d, "inline", "failed", Some("disabled")), 1);
    assert_eq!(retries(d, "inline"), 0);
    assert_eq!(histogram("retry_call_attempts", d, "inline"), [1.0]);
}

// ---------------------------------------------------------------- durable

#[retry(mode = "durable", max = 3, backoff = "fixed", delay = "5ms")]
async fn durable_flaky(fail: u32) -> Result<u32, String> {
    static TRIES: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = TRIES.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    if n < fail {
        Err(format!("try {n}"))
    } else {
        Ok(n)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn durable_calls() {
    use retry_runtime::durable::{self, CallState, Store, Worker};
    snapshotter();
    let store = Store::open("sqlite::memory:").await.unwrap();
    durable::set_default_store(store.clone());
    let cid = durable_flaky(2).await.unwrap();
    let worker = Worker::builder(store.clone())
        .poll_interval(Duration::from_millis(10))
        .start();
    for _ in 0..500 {
        if store.get(cid).await.unwrap().unwrap().state == CallState::Succeeded {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    worker.shutdown(Duration::from_secs(1)).await;
    let f = "metrics::durable_flaky";
    assert_eq!(store.get(cid).await.unwrap().unwrap().attempts, 3);
    // The call is counted once, when it ends, in the worker that ran its last attempt.
    assert_eq!(calls(f, "durable", "succeeded", None), 1);
    assert_eq!(retries(f, "durable"), 2);
    assert_eq!(histogram("retry_call_attempts", f, "durable"), [3.0]);
    assert!(
        in_flight(f, "durable").abs() < f64::EPSILON,
        "no attempt left running"
    );
}
