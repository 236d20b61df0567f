//! A recording `tracing` layer: the spans created and entered and the events emitted, with
//! their targets and fields, for tests that assert on what the runtime logs. Each test binary
//! that needs it includes it with `#[path = "common/recorder.rs"] mod recorder;`.
#![allow(dead_code)] // each binary uses what it needs

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::{LookupSpan, SpanRef};
use tracing_subscriber::Layer;

/// Field names and their values (`Display` for strings, `Debug` for the rest).
pub type Fields = BTreeMap<String, String>;

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

/// A span as it was when it was seen.
#[derive(Debug, Clone, PartialEq)]
pub struct SpanSeen {
    pub name: String,
    pub target: String,
    pub fields: Fields,
}

/// What the recorder saw, in order.
#[derive(Debug, Clone)]
pub enum Rec {
    /// A span was created.
    New(SpanSeen),
    /// A span was entered.
    Enter(SpanSeen),
    Event {
        level: Level,
        target: String,
        fields: Fields,
        /// The span the event was emitted in.
        span: Option<SpanSeen>,
    },
}

#[derive(Clone, Default)]
pub struct Recorder(Arc<Mutex<Vec<Rec>>>);

impl Recorder {
    fn push(&self, r: Rec) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(r);
    }
    pub fn take(&self) -> Vec<Rec> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

fn seen<S: Subscriber + for<'a> LookupSpan<'a>>(span: &SpanRef<'_, S>) -> SpanSeen {
    SpanSeen {
        name: span.name().to_string(),
        target: span.metadata().target().to_string(),
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
        self.push(Rec::New(SpanSeen {
            name: attrs.metadata().name().to_string(),
            target: attrs.metadata().target().to_string(),
            fields: fields.clone(),
        }));
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
pub fn capture<T>(f: impl FnOnce() -> T) -> (T, Vec<Rec>) {
    let rec = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(rec.clone());
    let out = tracing::subscriber::with_default(subscriber, f);
    (out, rec.take())
}

/// Runs a future on a paused current-thread runtime, with the recorder.
pub fn capture_async<F: std::future::Future>(fut: F) -> (F::Output, Vec<Rec>) {
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
pub fn events_at(recs: &[Rec], lvl: Level) -> Vec<(String, Fields)> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Event {
                level,
                target,
                fields,
                ..
            } if *level == lvl => Some((target.clone(), fields.clone())),
            _ => None,
        })
        .collect()
}

/// The events of a level and target: (fields, the span they were emitted in).
pub fn events(recs: &[Rec], lvl: Level, tgt: &str) -> Vec<(Fields, Option<SpanSeen>)> {
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

/// The events of a level whose message is `msg`: (target, fields).
pub fn events_with_message(recs: &[Rec], lvl: Level, msg: &str) -> Vec<(String, Fields)> {
    events_at(recs, lvl)
        .into_iter()
        .filter(|(_, f)| f.get("message").is_some_and(|m| m == msg))
        .collect()
}

/// The runtime's event for a failed attempt that will be retried.
pub fn retry_events(recs: &[Rec]) -> Vec<(String, Fields)> {
    events_with_message(recs, Level::INFO, "attempt failed; retrying")
}

/// The runtime's event for a failed call.
pub fn failure_events(recs: &[Rec]) -> Vec<(String, Fields)> {
    events_with_message(recs, Level::WARN, "call failed")
}

/// The spans created, in order.
pub fn spans(recs: &[Rec]) -> Vec<SpanSeen> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::New(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The spans entered, in order.
pub fn enters(recs: &[Rec]) -> Vec<SpanSeen> {
    recs.iter()
        .filter_map(|r| match r {
            Rec::Enter(s) => Some(s.clone()),
            _ => None,
        })
        .collect()
}

/// The value of field `k`; panics naming the fields when there is none.
pub fn field<'a>(f: &'a Fields, k: &str) -> &'a str {
    f.get(k)
        .unwrap_or_else(|| panic!("no field `{k}` in {f:?}"))
}
