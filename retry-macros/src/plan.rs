//! The checked plan of one `#[retry]`: what to generate, resolved once from the attribute by
//! `valid::plan`, so the expansion reads decisions instead of raw keys.

use proc_macro2::Span;
use syn::{Expr, LitStr};

use crate::attr::{Count, DurationArg, JitterKind, Persist};

/// What the expansion generates. It exists only for an attribute and a function that passed
/// every check.
pub struct Plan {
    /// Where the attempts run.
    pub mode: Mode,
    /// Whether the function is an `async fn`.
    pub is_async: bool,
    /// The keys that make the policy, resolved.
    pub policy: Policy,
    /// The hooks the user wrote.
    pub hooks: Hooks,
    /// `name = "..."`, or the default `module::function`.
    pub name: Option<LitStr>,
    /// `unique = ...` or `unique_key = ...` (durable calls): what makes two calls the same.
    pub unique: Option<crate::unique::Unique>,
    /// The runtime crate's path (`crate = "..."`, or `::retry_runtime`).
    pub krate: syn::Path,
    /// `max_running = N` (durable only): written into the function's registration.
    pub max_running: Option<Count>,
}

/// Where the attempts run, with what only that mode has.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// In the caller, a loop.
    Inline,
    /// On the blocking pool or a task, awaited by the caller.
    Handoff,
    /// On a task; the caller gets a handle.
    Background,
    /// Stored, and run by a worker.
    Durable {
        /// When the call is written to the store.
        persist: Persist,
    },
}

impl Mode {
    /// The mode's name in the site (events, metrics).
    pub fn name(self) -> &'static str {
        match self {
            Mode::Inline => "inline",
            Mode::Handoff => "handoff",
            Mode::Background => "background",
            Mode::Durable { .. } => "durable",
        }
    }

    /// Whether every attempt runs after the function returned, on its own copies of all the
    /// arguments (the first attempt of `persist = "on_failure"` runs in the caller, as an
    /// inline one).
    pub fn attempts_outlive_call(self) -> bool {
        !matches!(
            self,
            Mode::Inline
                | Mode::Durable {
                    persist: Persist::OnFailure
                }
        )
    }

    /// Whether the function's return type becomes a type around the user's (`HandleFor<..>`,
    /// `HandoffFor<..>`, `OutcomeFor<..>`).
    pub fn wraps_return(self) -> bool {
        !matches!(
            self,
            Mode::Inline
                | Mode::Durable {
                    persist: Persist::Always
                }
        )
    }
}

/// The policy's keys, each resolved to the builder call it makes (the defaults live in the
/// runtime).
pub struct Policy {
    pub retries: Option<Retries>,
    pub backoff: Option<Backoff>,
    pub jitter: Option<JitterKind>,
    pub delay: Option<DurationArg>,
    pub max_delay: Option<DurationArg>,
    pub budget: Option<DurationArg>,
    /// With the span of the `timeout` key, where a missing `From<TimedOut>` is reported.
    pub timeout: Option<(DurationArg, Span)>,
    /// `timeout = "none"` (durable only): `Policy.timeout` is `Some(Duration::MAX)`, which the
    /// runtime reads as no limit, in place of the durable attempts' default limit.
    pub unlimited: bool,
    /// `throttle = "20%"`: the percentage.
    pub throttle: Option<u32>,
}

/// How many attempts: `max` and `attempts` resolved (validation keeps only one).
pub enum Retries {
    /// `max = N`: retries after the first attempt.
    Max(Count),
    /// `attempts = N`: every attempt, the first included.
    Attempts(Count),
    /// `max = "forever"`.
    Forever,
}

/// `backoff` and `factor` resolved.
#[derive(Clone, Copy, PartialEq)]
pub enum Backoff {
    Fixed,
    Linear,
    Exponential { factor: f64 },
}

/// The hooks the user wrote, as expressions.
#[derive(Default)]
pub struct Hooks {
    pub when: Option<Expr>,
    pub delay_from: Option<Expr>,
    pub on_retry: Option<Expr>,
    pub on_exhausted: Option<Expr>,
    pub fallback: Option<Expr>,
    pub on_done: Option<Expr>,
    /// `error_format = path`: how errors are shown in events, reports and the store.
    pub error_format: Option<Expr>,
}

impl Hooks {
    /// Each hook with its key, in the order the runtime's builder takes them.
    pub fn each(&self) -> [(&'static str, Option<&Expr>); 6] {
        [
            ("when", self.when.as_ref()),
            ("delay_from", self.delay_from.as_ref()),
            ("on_retry", self.on_retry.as_ref()),
            ("on_exhausted", self.on_exhausted.as_ref()),
            ("fallback", self.fallback.as_ref()),
            ("on_done", self.on_done.as_ref()),
        ]
    }
}
