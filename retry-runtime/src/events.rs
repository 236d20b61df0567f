//! What a call tells `tracing`: a span per attempt, an event per retried failure and one at
//! a failed end, under the caller's module path as their target.
//!
//! The expansion declares one small `static` per function, a [`Site`]; its span and event
//! call sites are built here on first use (and leaked, once per function), so their target
//! can be the caller's module and their name can include the type of a method, while each
//! expansion stays small.

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

use crate::cid::CallCtx;
use crate::engine::Attempts;
use crate::hooks::HookSet;
use crate::report::{Reason, Report};
use crate::{CorrelationId, RetryResult};

/// The static facts of one `#[retry]` function: its name, mode and where it is; and what its
/// calls share: their retry throttle's window and, with the feature `metrics`, their metric
/// handles.
#[derive(Debug)]
pub struct Site {
    name: &'static str,
    /// A method whose default name gets its type (`module::Type::method`) from the hooks.
    typed: bool,
    /// `"inline"`, `"background"` or `"handoff"`: the `mode` label of its metrics.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    mode: &'static str,
    module: &'static str,
    file: &'static str,
    line: u32,
    full_name: OnceLock<&'static str>,
    callsites: OnceLock<&'static Callsites>,
    /// The calls and retries its throttle counts (untouched without `throttle`).
    pub(crate) throttle: crate::ops::throttle::Window,
    #[cfg(feature = "metrics")]
    metrics: OnceLock<crate::ops::metrics::Handles>,
}

impl Site {
    /// A site named `name`, in `module` (the target of its events), at `file:line`. With
    /// `typed`, `name` is the default `module::method` of a method, and the name used is
    /// `module::Type::method` once the type is known. `mode` is the attribute's.
    #[must_use]
    pub const fn new(
        name: &'static str,
        typed: bool,
        mode: &'static str,
        module: &'static str,
        file: &'static str,
        line: u32,
    ) -> Self {
        Self {
            name,
            typed,
            mode,
            module,
            file,
            line,
            full_name: OnceLock::new(),
            callsites: OnceLock::new(),
            throttle: crate::ops::throttle::Window::new(),
            #[cfg(feature = "metrics")]
            metrics: OnceLock::new(),
        }
    }

    /// The function's metric handles, registered on first use; `name` is its full name.
    #[cfg(feature = "metrics")]
    #[inline]
    pub(crate) fn metrics(&self, name: &'static str) -> &crate::ops::metrics::Handles {
        self.metrics
            .get_or_init(|| crate::ops::metrics::Handles::new(name, self.mode))
    }

    /// The function's name; `ty` is the `Self` type of a method, if known.
    pub fn name(&self, ty: Option<&'static str>) -> &'static str {
        match ty {
            Some(ty) if self.typed => self.full_name.get_or_init(|| {
                let method = self.name.rsplit("::").next().unwrap_or(self.name);
                let ty = short_type_name(ty);
                Box::leak(format!("{}::{ty}::{method}", self.module).into_boxed_str())
            }),
            _ => self.name,
        }
    }

    fn callsites(&self, ty: Option<&'static str>) -> &'static Callsites {
        self.callsites
            .get_or_init(|| Callsites::build(self.name(ty), self.module, self.file, self.line))
    }

    /// The span of the attempt `state.made`, or `None` when no subscriber wants it. A call
    /// that nothing observed when it started (it read no clock: no subscriber then, no
    /// budget, no hook that reads the report) makes no spans, which on the common path is a
    /// check of the call's own state, not of the subscriber's level. Not generic, so that it
    /// is compiled once, not once per function.
    #[inline]
    pub(crate) fn span(
        &self,
        ty: Option<&'static str>,
        ctx: &CallCtx,
        state: &Attempts,
    ) -> Option<tracing::Span> {
        if state.started.is_none() || !tracing::level_enabled!(Level::INFO) {
            return None;
        }
        self.enabled_span(ty, ctx.cid(), state.made)
    }

    fn enabled_span(
        &self,
        ty: Option<&'static str>,
        cid: CorrelationId,
        attempt: u32,
    ) -> Option<tracing::Span> {
        let cs = &self.callsites(ty).span;
        let meta = cs.enabled()?;
        let [f_cid, f_attempt] = fields(meta);
        let cid = display(cid);
        Some(tracing::Span::new(
            meta,
            &meta.fields().value_set(&[
                (&f_cid, Some(&cid as &dyn Value)),
                (&f_attempt, Some(&attempt)),
            ]),
        ))
    }

    /// The INFO event of a failed attempt that will be retried.
    pub(crate) fn retrying<R: RetryResult, H: HookSet<R>>(
        &self,
        hooks: &H,
        cid: impl FnOnce() -> CorrelationId,
        attempt: u32,
        error: &R::Err,
        next_delay: Duration,
    ) {
        if !tracing::level_enabled!(Level::INFO) {
            return;
        }
        let Some(meta) = self.callsites(hooks.type_name()).retry.enabled() else {
            return;
        };
        let [f_msg, f_name, f_cid, f_attempt, f_error, f_delay] = fields(meta);
        let msg = format_args!("attempt failed; retrying");
        let cid = display(cid());
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

    /// The event of a call that ends without success: WARN when it failed after retrying
    /// (exhausted, budget spent, timed out, throttled), INFO for an expected end (an error `when`
    /// rejected, a cancel, a shutdown).
    pub(crate) fn ended<R: RetryResult, H: HookSet<R>>(&self, hooks: &H, report: &Report<R::Err>) {
        let warn = matches!(
            report.reason,
            Reason::Exhausted | Reason::BudgetSpent | Reason::TimedOut | Reason::Throttled
        );
        let level = if warn { Level::WARN } else { Level::INFO };
        if !tracing::level_enabled!(Level::INFO) || (warn && !tracing::level_enabled!(Level::WARN))
        {
            return;
        }
        let cs = self.callsites(hooks.type_name());
        let (cs, msg) = if level == Level::WARN {
            (&cs.failed, "call failed")
        } else {
            (&cs.ended, "call ended")
        };
        let error = report
            .last_error
            .as_ref()
            .map(|e| display(Shown::<R, H>(hooks, e, PhantomData)));
        end_event(cs, msg, report, error.as_ref().map(|e| e as &dyn Value));
    }

    /// The INFO event of a call that the fallback recovered.
    pub(crate) fn recovered(&self, ty: Option<&'static str>, report: &Report<()>) {
        if !tracing::level_enabled!(Level::INFO) {
            return;
        }
        let cs = &self.callsites(ty).ended;
        end_event(cs, "call recovered by its fallback", report, None);
    }

    /// The ERROR event of an attempt that panicked.
    pub(crate) fn panicked<R: RetryResult, H: HookSet<R>>(
        &self,
        hooks: &H,
        report: &Report<R::Err>,
        panic: &str,
    ) {
        if !tracing::level_enabled!(Level::ERROR) {
            return;
        }
        let cs = &self.callsites(hooks.type_name()).panicked;
        end_event(
            cs,
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

/// `Type` from `path::to::Type<Params>`.
fn short_type_name(full: &str) -> &str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

const SPAN_FIELDS: &[&str] = &["cid", "attempt"];
const RETRY_FIELDS: &[&str] = &["message", "name", "cid", "attempt", "error", "next_delay"];
const END_FIELDS: &[&str] = &[
    "message", "name", "cid", "parent", "attempts", "elapsed", "reason", "error",
];

/// The span and event call sites of one function.
struct Callsites {
    span: DynCallsite,
    retry: DynCallsite,
    failed: DynCallsite,
    ended: DynCallsite,
    panicked: DynCallsite,
}

impl fmt::Debug for Callsites {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Callsites")
    }
}

impl Callsites {
    fn build(
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

#[cfg(test)]
mod tests {
    use super::{short_type_name, Site};
    use crate::cid::CallCtx;
    use crate::engine::Attempts;

    /// A call that nothing observed as it started (its `started` is unset: no clock read)
    /// makes no spans, even with a subscriber that wants them by the time its attempt runs;
    /// a call whose start was observed gets its span.
    #[test]
    fn a_call_started_unobserved_makes_no_spans() {
        static SITE: Site = Site::new("spans", false, "inline", module_path!(), file!(), 1);
        let ctx = CallCtx::new();
        let mut unobserved = Attempts::new();
        unobserved.start_attempt();
        let mut observed = Attempts::started_at(std::time::SystemTime::now());
        observed.start_attempt();
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            assert!(SITE.span(None, &ctx, &unobserved).is_none());
            assert!(SITE.span(None, &ctx, &observed).is_some());
        });
    }

    #[test]
    fn type_names_shorten_to_the_type() {
        assert_eq!(short_type_name("app::billing::Orders"), "Orders");
        assert_eq!(
            short_type_name("app::Cache<alloc::string::String>"),
            "Cache"
        );
        assert_eq!(short_type_name("Plain"), "Plain");
    }
}
