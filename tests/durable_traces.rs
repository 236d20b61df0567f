//! Traces across processes (feature `opentelemetry` of retry-runtime, which this package's
//! dev-dependency enables): a request in this process enqueues a durable call inside its
//! trace; a worker in another process (this test binary run again, told so by an environment
//! variable) runs its attempts, and their spans join the request's trace as children of the
//! span that enqueued the call, with the call's parent cid among their fields.
//!
//! Both processes export their spans with the OpenTelemetry SDK's in-memory exporter; the
//! worker writes its spans as JSON lines to a file the parent reads.

use std::collections::HashMap;
use std::io::Write;
use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use retry_runtime::durable::{self, Store, StoreError, Worker};
use retry_runtime::{retry, CorrelationId};
use tracing_subscriber::layer::SubscriberExt;

/// Set in the worker process: the store's URL.
const WORKER_STORE: &str = "RETRY_TRACES_WORKER_STORE";
/// Set in the worker process: the call to wait for.
const WORKER_CID: &str = "RETRY_TRACES_WORKER_CID";
/// Set in the worker process: where it writes its spans.
const WORKER_SPANS: &str = "RETRY_TRACES_WORKER_SPANS";

static ATTEMPTS: AtomicU32 = AtomicU32::new(0);

/// The durable function: its first attempt fails, its second succeeds (run in the worker).
#[retry(mode = "durable", max = 3, delay = "1ms")]
async fn send_receipt(order: u32) -> std::io::Result<u32> {
    if ATTEMPTS.fetch_add(1, Ordering::SeqCst) == 0 {
        return Err(std::io::Error::other("mail server busy"));
    }
    Ok(order)
}

/// The request that enqueues it, itself a (inline) retried call: its cid is the stored
/// call's parent, and its attempt span is the current span when the call is enqueued.
#[retry(max = 1)]
async fn place_order(order: u32) -> Result<CorrelationId, StoreError> {
    send_receipt(order).await
}

/// A subscriber that records spans into OpenTelemetry with an in-memory exporter.
fn recorded() -> (
    SdkTracerProvider,
    InMemorySpanExporter,
    impl tracing::Subscriber + Send + Sync,
) {
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("durable_traces"));
    let subscriber = tracing_subscriber::registry().with(layer);
    (provider, exporter, subscriber)
}

/// An exported span, as the worker writes it and the parent reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exported {
    name: String,
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    parent_is_remote: bool,
    fields: HashMap<String, String>,
}

impl From<&SpanData> for Exported {
    fn from(s: &SpanData) -> Self {
        Exported {
            name: s.name.to_string(),
            trace_id: s.span_context.trace_id().to_string(),
            span_id: s.span_context.span_id().to_string(),
            parent_span_id: s.parent_span_id.to_string(),
            parent_is_remote: s.parent_span_is_remote,
            fields: s
                .attributes
                .iter()
                .map(|kv| (kv.key.to_string(), kv.value.as_str().into_owned()))
                .collect(),
        }
    }
}

impl Exported {
    fn to_json(&self) -> String {
        serde_json::json!({
            "name": self.name,
            "trace_id": self.trace_id,
            "span_id": self.span_id,
            "parent_span_id": self.parent_span_id,
            "parent_is_remote": self.parent_is_remote,
            "fields": self.fields,
        })
        .to_string()
    }

    fn from_json(line: &str) -> Self {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        let s = |k: &str| v[k].as_str().unwrap().to_owned();
        Exported {
            name: s("name"),
            trace_id: s("trace_id"),
            span_id: s("span_id"),
            parent_span_id: s("parent_span_id"),
            parent_is_remote: v["parent_is_remote"].as_bool().unwrap(),
            fields: v["fields"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_owned()))
                .collect(),
        }
    }

    fn field(&self, name: &str) -> &str {
        self.fields
            .get(name)
            .unwrap_or_else(|| panic!("{} has no field {name}: {self:?}", self.name))
    }
}

/// The worker process: runs the stored call to its end, then writes the spans it exported.
fn worker_process(url: &str, cid: &str, out: &str) {
    let (provider, exporter, subscriber) = recorded();
    tracing::subscriber::set_global_default(subscriber).unwrap();
    let cid: CorrelationId = cid.parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let store = Store::open(url).await.unwrap();
        let worker = Worker::builder(store.clone())
            .poll_interval(Duration::from_millis(20))
            .start();
        let mut finished = false;
        for _ in 0..2000 {
            let record = store.get(cid).await.unwrap().expect("the call is stored");
            if record.state.is_finished() {
                finished = true;
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(finished, "the worker did not finish {cid}");
        worker.shutdown(Duration::from_secs(5)).await;
    });
    provider.force_flush().unwrap();
    let mut file = std::fs::File::create(out).unwrap();
    for span in exporter.get_finished_spans().unwrap() {
        writeln!(file, "{}", Exported::from(&span).to_json()).unwrap();
    }
}

#[test]
fn one_trace_across_processes() {
    if let (Ok(url), Ok(cid), Ok(out)) = (
        std::env::var(WORKER_STORE),
        std::env::var(WORKER_CID),
        std::env::var(WORKER_SPANS),
    ) {
        worker_process(&url, &cid, &out);
        return;
    }

    // This process: a request, traced, enqueues the call.
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let (provider, exporter, subscriber) = recorded();
    let _default = tracing::subscriber::set_default(subscriber);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let store = runtime.block_on(Store::open(&url)).unwrap();
    durable::set_default_store(store.clone());
    let request = tracing::info_span!("http_request");
    let cid = runtime
        .block_on(async {
            let _entered = request.enter();
            place_order(42).await
        })
        .unwrap();
    drop(request);
    provider.force_flush().unwrap();
    let here: Vec<Exported> = exporter
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(Exported::from)
        .collect();
    let root = here.iter().find(|s| s.name == "http_request").unwrap();
    let enqueuer = here
        .iter()
        .find(|s| s.name == "durable_traces::place_order")
        .unwrap_or_else(|| panic!("no span of the enqueuing call: {here:?}"));
    assert_eq!(enqueuer.trace_id, root.trace_id);
    assert_eq!(enqueuer.parent_span_id, root.span_id);

    // The stored call carries the request's cid as its parent and the enqueuing span's
    // context as W3C text.
    let record = runtime.block_on(store.get(cid)).unwrap().unwrap();
    let request_cid = enqueuer.field("cid").to_owned();
    assert_eq!(
        record.parent.map(|p| p.to_string()),
        Some(request_cid.clone())
    );
    assert_eq!(
        record.trace_context.as_deref(),
        Some(format!("00-{}-{}-01", root.trace_id, enqueuer.span_id).as_str())
    );
    assert_eq!(record.state, durable::CallState::Pending);

    // Another process runs it.
    let out = dir.path().join("worker-spans.jsonl");
    let status = Command::new(std::env::current_exe().unwrap())
        .args(["one_trace_across_processes", "--exact", "--nocapture"])
        .env(WORKER_STORE, &url)
        .env(WORKER_CID, cid.to_string())
        .env(WORKER_SPANS, &out)
        .status()
        .unwrap();
    assert!(status.success(), "the worker process failed: {status}");
    let record = runtime.block_on(store.get(cid)).unwrap().unwrap();
    assert_eq!(record.state, durable::CallState::Succeeded);
    assert_eq!(record.attempts, 2);

    // Its two attempt spans are in the request's trace, children of the enqueuing span.
    let there: Vec<Exported> = std::fs::read_to_string(&out)
        .unwrap()
        .lines()
        .map(Exported::from_json)
        .collect();
    let mut attempts: Vec<&Exported> = there
        .iter()
        .filter(|s| s.name == "durable_traces::send_receipt")
        .collect();
    attempts.sort_by_key(|s| s.field("attempt").to_owned());
    assert_eq!(attempts.len(), 2, "{there:?}");
    for (n, span) in attempts.iter().enumerate() {
        assert_eq!(span.trace_id, root.trace_id, "{span:?}");
        assert_eq!(span.parent_span_id, enqueuer.span_id, "{span:?}");
        assert!(span.parent_is_remote, "{span:?}");
        assert_eq!(span.field("cid"), cid.to_string());
        assert_eq!(span.field("attempt"), (n + 1).to_string());
        assert_eq!(span.field("parent"), request_cid);
    }
    assert_ne!(attempts[0].span_id, attempts[1].span_id);
}

/// A durable function that always succeeds.
#[retry(mode = "durable", max = 1)]
async fn tolerant(n: u32) -> std::io::Result<u32> {
    Ok(n)
}

#[test]
fn a_malformed_stored_trace_context_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite:{}", dir.path().join("calls.db").display());
    let (provider, exporter, subscriber) = recorded();
    let _default = tracing::subscriber::set_default(subscriber);
    // One thread: the worker's tasks see this thread's subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let store = Store::open(&url).await.unwrap();
        let mut calls = Vec::new();
        for garbage in [
            "garbage",
            "00-zz-yy-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-",
        ] {
            let mut call = durable::NewCall::new("durable_traces::tolerant", r#"{"n":7}"#);
            call.trace_context = Some(garbage.to_owned());
            calls.push(call.cid);
            store.enqueue(vec![call]).await.unwrap();
        }
        let worker = Worker::builder(store.clone())
            .poll_interval(Duration::from_millis(20))
            .start();
        for cid in &calls {
            let mut state = None;
            for _ in 0..1000 {
                state = store.get(*cid).await.unwrap().map(|r| r.state);
                if state.is_some_and(durable::CallState::is_finished) {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            assert_eq!(state, Some(durable::CallState::Succeeded), "{cid}");
        }
        worker.shutdown(Duration::from_secs(5)).await;
    });
    provider.force_flush().unwrap();
    let spans: Vec<Exported> = exporter
        .get_finished_spans()
        .unwrap()
        .iter()
        .map(Exported::from)
        .filter(|s| s.name == "durable_traces::tolerant")
        .collect();
    assert_eq!(spans.len(), 3, "{spans:?}");
    for span in spans {
        // Each attempt starts a trace of its own.
        assert_eq!(span.parent_span_id, "0000000000000000", "{span:?}");
        assert!(!span.parent_is_remote);
    }
}
