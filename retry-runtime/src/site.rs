//! [`Site`]: the per-function state the expansion declares as a `static`: the function's
//! name and place, its tracing call sites (built on first use), the window of its retry
//! throttle and, with the feature `metrics`, its metric handles.
//!
//! A site says *whether* a call's span or event is wanted (one level check, before anything
//! is built); [`events`](crate::events) says what they hold.

use core::time::Duration;
use std::sync::OnceLock;

use tracing::Level;

use crate::cid::CallCtx;
use crate::events::Events;
use crate::hooks::HookSet;
use crate::report::Report;
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
    events: OnceLock<&'static Events>,
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
            events: OnceLock::new(),
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

    fn events(&self, ty: Option<&'static str>) -> &'static Events {
        self.events
            .get_or_init(|| Events::build(self.name(ty), self.module, self.file, self.line))
    }

    /// The span of the attempt `attempt`, or `None` when no subscriber wants it. A call that
    /// nothing observed when it started (`observed` unset: it read no clock, so there was no
    /// subscriber then, no budget, no hook that reads the report) makes no spans, which on
    /// the common path is a check of the call's own state, not of the subscriber's level.
    /// Not generic, so that it is compiled once, not once per function.
    #[inline]
    pub(crate) fn span(
        &self,
        ty: Option<&'static str>,
        ctx: &CallCtx,
        attempt: u32,
        observed: bool,
    ) -> Option<tracing::Span> {
        if !observed || !tracing::level_enabled!(Level::INFO) {
            return None;
        }
        self.events(ty).span(ctx.cid(), ctx.parent(), attempt)
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
        if tracing::level_enabled!(Level::INFO) {
            self.events(hooks.type_name()).retrying::<R, H>(
                hooks,
                cid(),
                attempt,
                error,
                next_delay,
            );
        }
    }

    /// The event of a call that ends without success: WARN when it failed after retrying
    /// ([`Reason::warns`](crate::Reason::warns)), INFO for an expected end.
    pub(crate) fn ended<R: RetryResult, H: HookSet<R>>(&self, hooks: &H, report: &Report<R::Err>) {
        let warn = report.reason.warns();
        let wanted = if warn {
            tracing::level_enabled!(Level::WARN)
        } else {
            tracing::level_enabled!(Level::INFO)
        };
        if wanted {
            self.events(hooks.type_name())
                .ended::<R, H>(hooks, report, warn);
        }
    }

    /// The INFO event of a call that the fallback recovered.
    pub(crate) fn recovered(&self, ty: Option<&'static str>, report: &Report<()>) {
        if tracing::level_enabled!(Level::INFO) {
            self.events(ty).recovered(report);
        }
    }

    /// The ERROR event of an attempt that panicked.
    pub(crate) fn panicked<R: RetryResult, H: HookSet<R>>(
        &self,
        hooks: &H,
        report: &Report<R::Err>,
        panic: &str,
    ) {
        if tracing::level_enabled!(Level::ERROR) {
            self.events(hooks.type_name()).panicked(report, panic);
        }
    }
}

/// `Type` from `path::to::Type<Params>`.
fn short_type_name(full: &str) -> &str {
    let base = full.split('<').next().unwrap_or(full);
    base.rsplit("::").next().unwrap_or(base)
}

#[cfg(test)]
mod tests {
    use super::{short_type_name, Site};
    use crate::cid::CallCtx;

    /// A call that nothing observed as it started (no clock read) makes no spans, even with
    /// a subscriber that wants them by the time its attempt runs; a call whose start was
    /// observed gets its span.
    #[test]
    fn a_call_started_unobserved_makes_no_spans() {
        static SITE: Site = Site::new("spans", false, "inline", module_path!(), file!(), 1);
        let ctx = CallCtx::new();
        tracing::subscriber::with_default(tracing_subscriber::registry(), || {
            assert!(SITE.span(None, &ctx, 1, false).is_none());
            assert!(SITE.span(None, &ctx, 1, true).is_some());
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
