//! What an error looks like in a report's one-line form, in events and in a kept report: the
//! function's error format (`error_format = path`, else `Display`, else `Debug`).
#[path = "common/recorder.rs"]
mod recorder;

use recorder::{capture, Rec};
use retry_runtime::{retry, Report};
use std::fmt;
use std::sync::Mutex;

/// An error with a `Display` that differs from its `Debug`.
#[derive(Debug)]
#[allow(dead_code)] // read through `Debug`, which the report must not use
enum ApiError {
    Unavailable { retry_after_ms: Option<u64> },
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Unavailable { .. } => f.write_str("service unavailable"),
        }
    }
}

impl std::error::Error for ApiError {}

static LINES: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn keep(r: &Report<ApiError>) {
    LINES.lock().unwrap().push(r.to_string());
}

#[retry(max = 1, delay = "0ms", on_exhausted = keep)]
fn unavailable() -> Result<(), ApiError> {
    Err(ApiError::Unavailable {
        retry_after_ms: None,
    })
}

#[test]
fn the_one_line_form_shows_the_errors_display() {
    assert!(unavailable().is_err());
    let line = LINES.lock().unwrap().pop().unwrap();
    assert!(line.ends_with(": service unavailable"), "{line}");
    assert!(!line.contains("retry_after_ms"), "{line}");
}

/// An error with no `Display`: `Debug` it is.
#[derive(Debug, Clone, PartialEq)]
struct Opaque(u32);

static OPAQUE: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[retry(max = 1, delay = "0ms", on_exhausted = |r: &Report<Opaque>| OPAQUE.lock().unwrap().push(r.to_string()))]
fn opaque() -> Result<(), Opaque> {
    Err(Opaque(7))
}

#[test]
fn an_error_without_display_shows_its_debug() {
    assert_eq!(opaque(), Err(Opaque(7)));
    let line = OPAQUE.lock().unwrap().pop().unwrap();
    assert!(line.ends_with(": Opaque(7)"), "{line}");
}

// ---------------------------------------------------------------- error_format

#[allow(clippy::ptr_arg)] // `error_format` takes `fn(&E, ...)`, and `E` is `String`
fn redacted(e: &String, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match e.split_once("token=") {
        Some((before, _)) => write!(f, "{before}token=<redacted>"),
        None => f.write_str(e),
    }
}

static REDACTED: Mutex<Vec<String>> = Mutex::new(Vec::new());

#[retry(max = 1, delay = "0ms", error_format = redacted,
    on_exhausted = |r: &Report<String>| REDACTED.lock().unwrap().push(r.to_string()))]
fn leaks() -> Result<(), String> {
    Err("refused: token=s3cr3t".to_string())
}

#[test]
fn error_format_shapes_the_error_in_events_and_reports() {
    let (out, recs) = capture(leaks);
    assert_eq!(
        out,
        Err("refused: token=s3cr3t".to_string()),
        "the caller gets the error"
    );
    let mut errors = Vec::new();
    for r in &recs {
        if let Rec::Event { fields, .. } = r {
            if let Some(e) = fields.get("error") {
                errors.push(e.clone());
            }
        }
    }
    assert_eq!(errors.len(), 2, "the retry and the end: {recs:?}");
    for e in &errors {
        assert_eq!(e, "refused: token=<redacted>");
    }
    let line = REDACTED.lock().unwrap().pop().unwrap();
    assert!(line.ends_with(": refused: token=<redacted>"), "{line}");
}

#[retry(max = 1, delay = "0ms", error_format = |e: &String, f: &mut fmt::Formatter<'_>| f.write_str(&e.to_uppercase()),
    fallback = |r| Err(r.to_string()))]
fn closure_format() -> Result<(), String> {
    Err("down".to_string())
}

#[test]
fn error_format_takes_a_closure_that_captures_nothing() {
    let Err(line) = closure_format() else {
        panic!()
    };
    assert!(line.ends_with(": DOWN"), "{line}");
}
