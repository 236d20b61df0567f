//! Traces across processes: the enqueuer's W3C trace context, stored with a durable call
//! (`trace_context` of the calls table), and the parent it gives the worker's attempt spans.
//!
//! The stored text is what a W3C `TraceContextPropagator` injects: the `traceparent` header
//! (`00-<trace id>-<span id>-<flags>`), then the `tracestate` header after a newline when it
//! is not empty. It is written here rather than by the SDK's propagator so that the library
//! depends on the OpenTelemetry API alone (the application picks its SDK); the tests check it
//! against the SDK's propagator both ways.
//!
//! Without the `opentelemetry` feature nothing is read or written: the column stays NULL and
//! attempt spans have no remote parent. A stored context that does not parse is ignored: it
//! never fails a call, its attempts simply start a trace of their own.

/// The current trace context to store with a call enqueued now, if a trace is being recorded.
#[cfg(feature = "opentelemetry")]
pub(crate) fn current() -> Option<String> {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    let span = tracing::Span::current();
    if !span.is_none() {
        // The current `tracing` span, as the OpenTelemetry layer sees it (an invalid context
        // when no layer is installed).
        let cx = span.context();
        if let Some(text) = encode(cx.span().span_context()) {
            return Some(text);
        }
    }
    // An OpenTelemetry span entered without `tracing`.
    encode(opentelemetry::Context::current().span().span_context())
}

/// Without the `opentelemetry` feature: nothing to store.
#[cfg(not(feature = "opentelemetry"))]
#[inline]
pub(crate) fn current() -> Option<String> {
    None
}

/// Makes the attempt span `span` a child of the stored trace context `stored`, if it parses
/// (and an OpenTelemetry layer records the span). Called before the span is entered.
#[cfg(feature = "opentelemetry")]
pub(crate) fn adopt(span: &tracing::Span, stored: Option<&str>) {
    use opentelemetry::trace::TraceContextExt;
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    if let Some(parent) = stored.and_then(decode) {
        // Fails only when no OpenTelemetry layer records the span: then there is no trace
        // for it to join.
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(parent));
    }
}

/// Without the `opentelemetry` feature: attempt spans keep their local parent.
#[cfg(not(feature = "opentelemetry"))]
#[inline]
pub(crate) fn adopt(_span: &tracing::Span, _stored: Option<&str>) {}

#[cfg(feature = "opentelemetry")]
mod w3c {
    use core::str::FromStr;

    use opentelemetry::trace::{SpanContext, TraceState};
    use opentelemetry::{SpanId, TraceFlags, TraceId};

    use crate::durable::NewCall;

    /// The only `traceparent` version this writes.
    const VERSION: u8 = 0;
    /// The highest version a reader may meet (`ff` is invalid).
    const MAX_VERSION: u8 = 254;

    /// `span`'s context as stored text: `traceparent`, then `tracestate` after a newline if
    /// it has entries. `None` for an invalid context (no trace is being recorded).
    pub(crate) fn encode(span: &SpanContext) -> Option<String> {
        if !span.is_valid() {
            return None;
        }
        let mut text = format!(
            "{VERSION:02x}-{}-{}-{:02x}",
            span.trace_id(),
            span.span_id(),
            span.trace_flags() & TraceFlags::SAMPLED
        );
        let state = span.trace_state().header();
        if !state.is_empty() {
            text.push('\n');
            text.push_str(&state);
        }
        Some(text)
    }

    /// The remote span context of stored text, as W3C's rules read the two headers: `None`
    /// when the `traceparent` is malformed; a malformed `tracestate` is dropped.
    pub(crate) fn decode(text: &str) -> Option<SpanContext> {
        let (parent, state) = match text.split_once('\n') {
            Some((parent, state)) => (parent, Some(state)),
            None => (text, None),
        };
        let parts: Vec<&str> = parent.trim().split_terminator('-').collect();
        if parts.len() < 4
            || parts
                .iter()
                .any(|p| p.chars().any(|c| c.is_ascii_uppercase()))
        {
            return None;
        }
        if parts[0].len() != 2 {
            return None;
        }
        let version = u8::from_str_radix(parts[0], 16).ok()?;
        if version > MAX_VERSION || (version == VERSION && parts.len() != 4) {
            return None;
        }
        if parts[1].len() != 32 || parts[2].len() != 16 || parts[3].len() != 2 {
            return None;
        }
        let trace_id = TraceId::from_hex(parts[1]).ok()?;
        let span_id = SpanId::from_hex(parts[2]).ok()?;
        let flags = TraceFlags::new(u8::from_str_radix(parts[3], 16).ok()?) & TraceFlags::SAMPLED;
        let state = state
            .and_then(|s| TraceState::from_str(s.trim()).ok())
            .unwrap_or_default();
        let span = SpanContext::new(trace_id, span_id, flags, true, state);
        span.is_valid().then_some(span)
    }

    impl NewCall {
        /// Stores the current trace context with the call (feature `opentelemetry`), so the
        /// worker's attempt spans join the enqueuer's trace. A durable function's call does
        /// this itself; this is for calls built by hand (`Store::enqueue`,
        /// `PostgresBackend::enqueue_in`). Outside any recorded trace it leaves the call
        /// without one.
        ///
        /// ```
        /// use retry_runtime::durable::NewCall;
        ///
        /// // No OpenTelemetry layer is installed here: there is no trace to join.
        /// let call = NewCall::new("mail::send", "[]").traced();
        /// assert_eq!(call.trace_context, None);
        /// ```
        #[must_use]
        pub fn traced(mut self) -> Self {
            self.trace_context = super::current();
            self
        }
    }
}

#[cfg(feature = "opentelemetry")]
pub(crate) use w3c::{decode, encode};

#[cfg(all(test, feature = "opentelemetry"))]
mod tests {
    use std::collections::HashMap;
    use std::str::FromStr;

    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{SpanContext, TraceContextExt, TraceState};
    use opentelemetry::{Context, SpanId, TraceFlags, TraceId};
    use opentelemetry_sdk::propagation::TraceContextPropagator;

    use super::{decode, encode};

    fn span(state: &str) -> SpanContext {
        SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            false,
            TraceState::from_str(state).unwrap(),
        )
    }

    /// What the SDK's W3C propagator injects for `span`, as stored text.
    fn injected(span: &SpanContext) -> String {
        let mut headers = HashMap::new();
        let cx = Context::new().with_remote_span_context(span.clone());
        TraceContextPropagator::new().inject_context(&cx, &mut headers);
        match headers.get("tracestate").filter(|s| !s.is_empty()) {
            Some(state) => format!("{}\n{state}", headers["traceparent"]),
            None => headers["traceparent"].clone(),
        }
    }

    /// What the SDK's W3C propagator extracts from stored text.
    fn extracted(text: &str) -> SpanContext {
        let mut headers = HashMap::new();
        let (parent, state) = text.split_once('\n').unwrap_or((text, ""));
        headers.insert("traceparent".to_owned(), parent.to_owned());
        headers.insert("tracestate".to_owned(), state.to_owned());
        let cx = TraceContextPropagator::new().extract(&headers);
        cx.span().span_context().clone()
    }

    #[test]
    fn the_stored_text_is_what_the_w3c_propagator_injects() {
        for state in ["", "vendor=a,other=b"] {
            let span = span(state);
            let text = encode(&span).unwrap();
            assert_eq!(text, injected(&span));
            assert_eq!(decode(&text).unwrap(), extracted(&text));
        }
        assert_eq!(
            encode(&span("")).unwrap(),
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        assert_eq!(encode(&SpanContext::empty_context()), None);
    }

    #[test]
    fn malformed_stored_contexts_are_ignored() {
        for text in [
            "",
            "garbage",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "{\"traceparent\": 1}",
        ] {
            assert_eq!(decode(text), None, "{text:?}");
            assert_eq!(extracted(text), SpanContext::empty_context(), "{text:?}");
        }
        // Stricter than the SDK: W3C's IDs have exactly 32 and 16 hex digits.
        assert_eq!(
            decode("00-4bf92f3577b34da6a3ce929d0e0e47-00f067aa0ba902b7-01"),
            None
        );
        // A malformed `tracestate` is dropped, the parent kept.
        let kept = decode("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01\nno list here")
            .unwrap();
        assert_eq!(kept.trace_state().header(), "");
        assert_eq!(kept.span_id(), span("").span_id());
        assert!(kept.is_remote());
    }
}
