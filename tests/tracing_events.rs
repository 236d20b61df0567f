//! What a subscriber sees: a span per attempt named after the function with `cid` and
//! `attempt`, one `INFO` event per retried failure, one `WARN` event per failed call.
use retry_runtime::{current_cid, retry};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

// ---------------------------------------------------------------- the recording layer

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

/// The fields of a span so far (recorded at creation and by `Span::record`).
struct SpanFields(Fields);

#[derive(Debug, Clone, PartialEq)]
struct SpanSeen {
    name: String,
    fields: Fields,
}

#[derive(Debug, Clone)]
enum Rec {
    Enter(SpanSeen),
    Event {
        level: Level,
        target: String,
        fields: Fields,
        span: Option<SpanSeen>,
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

fn seen<S: Subscriber + for<'a> LookupSpan<'a>>(
    span: &tracing_subscriber::registry::SpanRef<'_, S>,
) -> SpanSeen {
    SpanSeen {
        name: span.name().to_string(),
        fields: span
            .extensions()
            .get::<SpanFields>()
            .map(|f| f.0.clone())
            .unwrap_or_default(),
    }
}

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        attrs.record(&mut FieldVisitor(&mut fields));
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(SpanFields(fields));
        }
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(f) = ext.get_mut::<SpanFields>() {
                values.record(&mut FieldVisitor(&mut f.0));
            }
        }
    }

    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(span) = ctx.span(id) {
            self.push(Rec::Enter(seen(&span)));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let mut fields = Fields::new();
        event.record(&mut FieldVisitor(&mut fields));
        self.push(Rec::Event {
            level: *event.metadata().level(),
            target: event.metadata().target().to_string(),
            fields,
            span: ctx.event_span(event).map(|s| seen(&s)),
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

/// The events of a level and target.
fn events(recs: &[Rec], lvl: Level, tgt: &str) -> Vec<(Fields, Option<SpanSeen>)> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Event {
                level,
                target,
                fields,
                span,
            } if *level == lvl && target == tgt => Some((fields.clone(), span.clone())),
            _ => None,
        })
        .collect()
}

fn enters(recs: &[Rec]) -> Vec<SpanSeen> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Enter(s) => Some(s.clone()),
            Rec::Event { .. } => None,
        })
        .collect()
}

fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k)
        .unwrap_or_else(|| panic!("no field `{k}` in {f:?}"))
}

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
