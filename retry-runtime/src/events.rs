//! What a call tells `tracing`: a span per attempt, an event per retried failure and one at
//! a failed end, under the caller's module path as their target.
//!
//! The expansion declares one small `static` per function, a [`Site`](crate::site::Site);
//! its span and event call sites ([`Events`]) are built here on first use (and leaked, once
//! per function), so their target can be the caller's module and their name can include the
//! type of a method, while each expansion stays small. The site checks the level first; what
//! is here builds and sends.

use core::fmt;
use core::marker::PhantomData;
use core::sync::atomic::{AtomicU8, Ordering};
use core::time::Duration;
use std::sync::OnceLock;

use tracing::callsite::{Callsite, Identifier};
use tracing::field::{display, Field, FieldSet, Value};
use tracing::metadata::Kind;
use tracing::subscriber::Interest;
use tracing::{Level, Metadata};

use crate::hooks::HookSet;
use crate::report::Report;
use crate::{CorrelationId, RetryResult};

impl Events {
    /// The span of the attempt `attempt`, if the subscriber wants it; `parent` (the call
    /// that started this one) is a field only when there is one.
    pub(crate) fn span(
        &'static self,
        cid: CorrelationId,
        parent: Option<CorrelationId>,
        attempt: u32,
    ) -> Option<tracing::Span> {
        let meta = self.span.enabled()?;
        let [f_cid, f_attempt, f_parent] = fields(meta);
        let cid = display(cid);
        let parent = parent.map(display);
        Some(tracing::Span::new(
            meta,
            &meta.fields().value_set(&[
                (&f_cid, Some(&cid as &dyn Value)),
                (&f_attempt, Some(&attempt)),
                (&f_parent, parent.as_ref().map(|p| p as &dyn Value)),
            ]),
        ))
    }

    /// The INFO event of a failed attempt that will be retried.
    pub(crate) fn retrying<R: RetryResult, H: HookSet<R>>(
        &'static self,
        hooks: &H,
        cid: CorrelationId,
        attempt: u32,
        error: &R::Err,
        next_delay: Duration,
    ) {
        let Some(meta) = self.retry.enabled() else {
            return;
        };
        let [f_msg, f_name, f_cid, f_attempt, f_error, f_delay] = fields(meta);
        let msg = format_args!("attempt failed; retrying");
        let cid = display(cid);
        let error = display(Shown::<R, H>(hooks, error, PhantomData));
        let delay = tracing::field::debug(next_delay);
        let name = meta.name();
        tracing::Event::dispatch(
            meta,
            &meta.fields().value_set(&[
                (&f_msg, Some(&msg as &dyn Value)),
                (&f_name, Some(&name)),
                (&f_cid, Some(&cid)),
                (&f_attempt, Some(&attempt)),
                (&f_error, Some(&error)),
                (&f_delay, Some(&delay)),
            ]),
        );
    }

    /// The event of a call that ends without success: WARN (`warn`) when it failed after
    /// retrying, INFO for an expected end.
    pub(crate) fn ended<R: RetryResult, H: HookSet<R>>(
        &'static self,
        hooks: &H,
        report: &Report<R::Err>,
        warn: bool,
    ) {
        let (cs, msg) = if warn {
            (&self.failed, "call failed")
        } else {
            (&self.ended, "call ended")
        };
        let error = report
            .last_error
            .as_ref()
            .map(|e| display(Shown::<R, H>(hooks, e, PhantomData)));
        end_event(cs, msg, report, error.as_ref().map(|e| e as &dyn Value));
    }

    /// The INFO event of a call that the fallback recovered.
    pub(crate) fn recovered(&'static self, report: &Report<()>) {
        end_event(&self.ended, "call recovered by its fallback", report, None);
    }

    /// The ERROR event of an attempt that panicked.
    pub(crate) fn panicked<E>(&'static self, report: &Report<E>, panic: &str) {
        end_event(
            &self.panicked,
            "attempt panicked; the call ends",
            report,
            Some(&display(panic)),
        );
    }
}

fn end_event<E>(
    cs: &'static DynCallsite,
    msg: &str,
    report: &Report<E>,
    error: Option<&dyn Value>,
) {
    let Some(meta) = cs.enabled() else { return };
    let [f_msg, f_name, f_cid, f_parent, f_attempts, f_elapsed, f_reason, f_error] = fields(meta);
    let msg = format_args!("{msg}");
    let cid = display(report.cid);
    let parent = report.parent.map(display);
    let elapsed = tracing::field::debug(report.elapsed);
    let reason = display(report.reason);
    tracing::Event::dispatch(
        meta,
        &meta.fields().value_set(&[
            (&f_msg, Some(&msg as &dyn Value)),
            (&f_name, Some(&report.name)),
            (&f_cid, Some(&cid)),
            (&f_parent, parent.as_ref().map(|p| p as &dyn Value)),
            (&f_attempts, Some(&report.attempts)),
            (&f_elapsed, Some(&elapsed)),
            (&f_reason, Some(&reason)),
            (&f_error, error),
        ]),
    );
}

/// An error as the function's hooks show it, as text (what a durable call stores).
#[cfg(feature = "sqlite")]
pub(crate) fn show_error<R: RetryResult, H: HookSet<R>>(hooks: &H, e: &R::Err) -> String {
    Shown::<R, H>(hooks, e, PhantomData).to_string()
}

/// An error shown as the function's hooks format it: `Display` for a
/// `std::error::Error`, `Debug` otherwise.
struct Shown<'a, R: RetryResult, H>(&'a H, &'a R::Err, PhantomData<fn() -> R>);

impl<R: RetryResult, H: HookSet<R>> fmt::Display for Shown<'_, R, H> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt_error(self.1, f)
    }
}

/// The fields of `meta`, in order.
fn fields<const N: usize>(meta: &'static Metadata<'static>) -> [Field; N] {
    let mut it = meta.fields().iter();
    core::array::from_fn(|_| {
        it.next()
            .expect("a retry call site has the fields its events use")
    })
}

const SPAN_FIELDS: &[&str] = &["cid", "attempt", "parent"];
const RETRY_FIELDS: &[&str] = &["message", "name", "cid", "attempt", "error", "next_delay"];
const END_FIELDS: &[&str] = &[
    "message", "name", "cid", "parent", "attempts", "elapsed", "reason", "error",
];

/// The span and event call sites of one function.
pub(crate) struct Events {
    span: DynCallsite,
    retry: DynCallsite,
    failed: DynCallsite,
    ended: DynCallsite,
    panicked: DynCallsite,
}

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Events")
    }
}

impl Events {
    pub(crate) fn build(
        name: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> &'static Self {
        let cs: &'static Self = Box::leak(Box::new(Self {
            span: DynCallsite::new(),
            retry: DynCallsite::new(),
            failed: DynCallsite::new(),
            ended: DynCallsite::new(),
            panicked: DynCallsite::new(),
        }));
        let all: [(&'static DynCallsite, Level, Kind, &'static [&'static str]); 5] = [
            (&cs.span, Level::INFO, Kind::SPAN, SPAN_FIELDS),
            (&cs.retry, Level::INFO, Kind::EVENT, RETRY_FIELDS),
            (&cs.failed, Level::WARN, Kind::EVENT, END_FIELDS),
            (&cs.ended, Level::INFO, Kind::EVENT, END_FIELDS),
            (&cs.panicked, Level::ERROR, Kind::EVENT, END_FIELDS),
        ];
        for (site, level, kind, names) in all {
            let meta = Metadata::new(
                name,
                module,
                level,
                Some(file),
                Some(line),
                Some(module),
                FieldSet::new(names, Identifier(site)),
                kind,
            );
            if site.meta.set(meta).is_ok() {
                tracing::callsite::register(site);
            }
        }
        cs
    }
}

const UNKNOWN: u8 = 0;
const NEVER: u8 = 1;
const SOMETIMES: u8 = 2;
const ALWAYS: u8 = 3;

/// A call site made at run time (tracing's own `DefaultCallsite` needs its metadata in a
/// `static`).
struct DynCallsite {
    meta: OnceLock<Metadata<'static>>,
    interest: AtomicU8,
}

impl DynCallsite {
    const fn new() -> Self {
        Self {
            meta: OnceLock::new(),
            interest: AtomicU8::new(UNKNOWN),
        }
    }

    /// The metadata, if the current subscriber wants this span or event.
    fn enabled(&'static self) -> Option<&'static Metadata<'static>> {
        let meta = self.meta.get()?;
        match self.interest.load(Ordering::Relaxed) {
            NEVER => None,
            ALWAYS => Some(meta),
            _ => tracing::dispatcher::get_default(|d| d.enabled(meta)).then_some(meta),
        }
    }
}

impl Callsite for DynCallsite {
    fn set_interest(&self, interest: Interest) {
        let v = if interest.is_never() {
            NEVER
        } else if interest.is_always() {
            ALWAYS
        } else {
            SOMETIMES
        };
        self.interest.store(v, Ordering::Relaxed);
    }

    fn metadata(&self) -> &Metadata<'_> {
        self.meta
            .get()
            .expect("a retry call site is registered only after its metadata is set")
    }
}
