//! Retries as an attribute.
//!
//! Put `#[retry(...)]` on a function that returns a `Result`, sync or async, and each call
//! tries again on failure, waiting between attempts as the policy says:
//!
//! ```
//! use retry_runtime::retry;
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! static CALLS: AtomicU32 = AtomicU32::new(0);
//!
//! #[retry(max = 5, backoff = "exp", delay = "1ms")]
//! fn flaky() -> Result<u32, String> {
//!     match CALLS.fetch_add(1, Ordering::Relaxed) {
//!         0 | 1 => Err("not yet".into()),
//!         n => Ok(n),
//!     }
//! }
//!
//! assert_eq!(flaky(), Ok(2));
//! ```
//!
//! # The attribute
//!
//! Every key is optional; keys may come in any order, each at most once. Mistakes are compile
//! errors on the offending token.
//!
//! | key | value | default | meaning |
//! |---|---|---|---|
//! | `max` | integer ≥ 1, a constant (`max = RETRIES`), or `"forever"` | 3 | retries after the first attempt (`max = 5`: at most 6 attempts) |
//! | `attempts` | integer ≥ 1 or a constant | – | total attempts, instead of `max` (`attempts = 6` is `max = 5`) |
//! | `backoff` | `"fixed"`, `"linear"`, `"exp"` | `"exp"` | how the wait grows: d, d, …; d, 2d, 3d, …; d, d·f, d·f², … |
//! | `delay` | duration string or `Duration` expression | `"100ms"` | the first wait |
//! | `factor` | number > 1 | 2 | the multiplier of `"exp"` |
//! | `max_delay` | duration | 1 minute ([`DEFAULT_MAX_DELAY`]), or the first wait if longer | cap on any single computed wait |
//! | `jitter` | `"none"`, `"full"`, `"equal"`, `"decorrelated"` | `"none"` | randomisation of each wait ([`Jitter`]) |
//! | `budget` | duration | none | no attempt starts after this much time since the call began; the last wait is shortened to fit |
//! | `timeout` | duration, or `"none"` in `mode = "durable"` | none (durable attempts: the runtime's default limit) | per-attempt limit, async functions only; the error type must implement `From<`[`TimedOut`]`>`. `"none"` (durable only, sync or async) opts out of the durable attempts' default limit: the policy's `timeout` is `Some(Duration::MAX)`, which the runtime reads as no limit |
//! | `throttle` | percentage string, `"1%"` to `"100%"` | none | retries of all the function's calls may add at most this share to its calls ([`Throttle`]); a refused retry ends the call with [`Reason::Throttled`] |
//! | `when` | path or closure, `Fn(&E) -> bool` | every `Err` | which errors are worth retrying; a rejected error ends the call at once |
//! | `delay_from` | path or closure, `Fn(&E) -> Option<Duration>` | none | a wait the error asks for (a `Retry-After`), replacing the computed one; honoured as asked (not capped by `max_delay`), and a wait that would end past the `budget` ends the call with [`Reason::BudgetSpent`] |
//! | `on_retry` | path or closure, `Fn(u32, &E, Duration)` | none | before each wait: attempt number, error, coming wait |
//! | `on_exhausted` | path or closure, `Fn(&Report<E>)` | none | once, when the call ends in failure |
//! | `fallback` | path or closure, `Fn(Report<E>) -> R` | none | turns the final failure into the return value; the report owns the last error |
//! | `on_done` | path or closure, `Fn(&Report<E>)` | none | background and hand-off modes: once, when the call ends, whatever the outcome |
//! | `error_format` | path or closure that captures nothing, `fn(&E, &mut fmt::Formatter<'_>) -> fmt::Result` | `Display`, else `Debug` | the one place that shapes how an error is shown: in events, in a [`Report`]'s one-line form, in the durable store's `last_error` (to keep a token in an error message out of the logs) |
//! | `mode` | `"inline"`, `"handoff"`, `"background"`, `"durable"` | `"inline"` | where the attempts run (below) |
//! | `persist` | `"always"`, `"on_failure"` | `"always"` | durable calls: stored before the first attempt, or only after a first attempt in the caller failed and is worth retrying |
//! | `max_running` | integer ≥ 1 or a constant, `mode = "durable"` only | none | the most attempts of the function running at once across every worker of the store (`max_running = 4`), enforced by the store's claim; an operator's limit (`retry-store limit`) wins. See the `durable` module, *Limits across workers* |
//! | `name` | string | `module::function`, `module::Type::method` | the stable name in reports, spans and events |
//! | `unique` | `"args"`, an argument's name (`unique = id`), or a list of them (`unique = (id, region)`) | none | durable calls (`persist = "always"`): what makes two calls the same. Calling the function while an equal call is unfinished returns that call's ID and stores nothing; see "Unique calls" in the `durable` docs |
//! | `unique_key` | expression of the arguments whose value is `Display` (`unique_key = format!("{region}/{id}")`) | none | instead of `unique`: the key itself |
//! | `unique_for` | duration | none | with `unique` or `unique_key`: how long after an equal call *succeeded* it still counts as the same |
//! | `crate` | string path | `"::retry_runtime"` | where this crate is, if the dependency is renamed |
//!
//! Durations are written `"250ms"`, `"1.5s"`, `"2m"`, `"1m30s"` (units `ns`, `us`, `ms`, `s`, `m`,
//! `h`, `d`, `w`: the one list of `retry-duration`, which the attribute, the override file and
//! `retry-store` share), checked at compile time, or given as any expression of type
//! [`std::time::Duration`].
//!
//! Every key at once:
//!
//! ```
//! use retry_runtime::{retry, Report};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! enum ApiError { Busy { retry_after_ms: u64 }, Timeout, Invalid }
//!
//! impl From<retry_runtime::TimedOut> for ApiError {
//!     fn from(_: retry_runtime::TimedOut) -> Self { ApiError::Timeout }
//! }
//!
//! #[retry(
//!     max = 4,
//!     backoff = "exp",
//!     delay = "10ms",
//!     factor = 3,
//!     max_delay = "1s",
//!     jitter = "equal",
//!     budget = "5s",
//!     timeout = "2s",
//!     when = |e: &ApiError| !matches!(e, ApiError::Invalid),
//!     delay_from = |e: &ApiError| match e {
//!         ApiError::Busy { retry_after_ms } => Some(Duration::from_millis(*retry_after_ms)),
//!         _ => None,
//!     },
//!     on_retry = |n, e, d| eprintln!("attempt {n} of {id} failed ({e:?}); next in {d:?}"),
//!     on_exhausted = |r: &Report<ApiError>| eprintln!("{r}"),
//!     fallback = |_r| Ok(0),
//!     mode = "inline",
//!     name = "billing::fetch_balance",
//!     crate = "::retry_runtime",
//! )]
//! async fn fetch_balance(id: u64) -> Result<u64, ApiError> {
//!     if id == 0 { Err(ApiError::Invalid) } else { Ok(id * 100) }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! assert_eq!(fetch_balance(7).await.unwrap(), 700);
//! assert_eq!(fetch_balance(0).await.unwrap(), 0); // not retryable, so the fallback answers
//! # }
//! ```
//!
//! # Modes
//!
//! - `"inline"`: every attempt runs in the caller; the function keeps its signature.
//! - `"background"`: the function returns a [`RetryHandle`] at once (it stops being `async`;
//!   its return type becomes [`HandleFor<R>`](HandleFor), that is `RetryHandle<T, E>`) and every
//!   attempt runs in a spawned tokio task; a sync body runs on tokio's blocking pool and the
//!   waits hold no thread. Dropping the handle does not cancel the call. Outside any tokio
//!   runtime (a plain `fn main`), the first background call starts one small shared executor
//!   (one worker thread) that serves all later ones.
//! - `"handoff"`: the first attempt runs in the caller; its success, or an error not worth
//!   retrying, comes back directly as [`Handoff::Done`]; a retryable failure moves the rest to
//!   the background and returns [`Handoff::Retrying`] with the handle. The return type becomes
//!   [`HandoffFor<R>`](HandoffFor); an `async fn` stays `async`.
//!
//! - `"durable"` (feature `sqlite`): the call is committed to a store before the function
//!   returns its [`CorrelationId`] (the return type becomes
//!   `Result<CorrelationId, durable::StoreError>`), and a `durable::Worker` (in this process or
//!   another, now or after a restart) runs the attempts under a lease, by the same rules; a
//!   call given up becomes a dead letter that the `retry-store` tool can show and requeue.
//!   With `persist = "on_failure"` the first attempt runs in the caller and only a retryable
//!   failure is stored. The arguments must be serde `Serialize + DeserializeOwned`.
//!   `max_running = N` caps its attempts running at once across all workers
//!   (`#[retry(mode = "durable", max_running = 4)]`). With `unique = ...` an equal call still
//!   unfinished is not stored twice: the function returns the ID of the one stored. See the
//!   `durable` module.
//!
//! In both spawned modes the arguments must be owned, `Send + 'static` and `Clone` (a borrowed
//! argument is a compile error that suggests the owned type), hooks must be `Send + Sync +
//! 'static`, and a closure hook gets its own copies of the arguments it uses. A panic in a
//! background attempt ends the call with [`Reason::Panicked`]. [`shutdown`] stops them
//! gracefully and returns the reports of the calls that did not finish; [`in_flight`] counts
//! them. Both act on the process's default [`Tracker`]; a library or a test that wants its own
//! shutdown enters its own tracker around the calls it starts.
//!
//! ```
//! use retry_runtime::{retry, Handoff};
//!
//! #[retry(max = 3, delay = "10ms", mode = "background", on_done = |r| println!("{r}"))]
//! fn save(record: String) -> Result<usize, std::io::Error> {
//!     Ok(record.len())
//! }
//!
//! #[retry(max = 3, delay = "10ms", mode = "handoff")]
//! async fn notify(order: u64) -> Result<u64, std::io::Error> {
//!     Ok(order)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let handle = save("hello".to_string()); // returns at once
//! assert_eq!(handle.await.unwrap(), 5);
//! assert!(matches!(notify(7).await, Handoff::Done(Ok(7))));
//! # }
//! ```
//!
//! # What it accepts
//!
//! Free functions, methods (`&self`, `&mut self`, `self`, and in the spawned modes any owned
//! receiver: `self`, `self: Arc<Self>`, `self: Box<Self>`), generics, `where` clauses,
//! lifetimes, `impl Trait` arguments, pattern arguments, `async fn` and `unsafe fn`, with any
//! other attributes. The return type is any spelling of `Result<T, E>` (`std::io::Result<T>`,
//! `anyhow::Result<T>`); `E` must implement `Debug`, since failed attempts are logged.
//!
//! The default name of a method includes its type (`billing::Orders::get`), so methods of
//! different types stay apart; it is taken from `Self` when the method takes `self` or names
//! `Self` in its signature. An associated function that does neither reads like a free
//! function (`billing::get`): give it a `name`.
//!
//! Each attempt gets fresh arguments: by-value arguments are cloned for every attempt (so they
//! must be `Clone`), references are reborrowed. `return`, `?` and early exits inside the body
//! end the attempt, as they would end the function. Panics are not retried.
//!
//! # Observability
//!
//! Every call has a [`CorrelationId`], available in the body and in every hook through
//! [`current_cid`] and in every [`Report`]; it is minted only when asked for. A call started
//! inside another records the outer call's ID as its parent. Inside an attempt of a durable
//! call that was cancelled, [`is_cancelled`] is true.
//!
//! Spans and events use the caller's module path as their target (as `tracing::instrument`
//! does), so `RUST_LOG=my_crate::billing=info` reaches them:
//!
//! - each attempt runs in a span named after the function, with the fields `cid` and
//!   `attempt` (a subscriber installed in the middle of a call may get that call's events
//!   without its spans: the spans of a call nothing observed as it started are skipped with
//!   one check of the call's own state);
//! - a failed attempt that will be retried logs one `INFO` event with the attempt number,
//!   the error and the next wait;
//! - a call that fails after retrying (retries exhausted, budget spent, timed out, retries
//!   throttled) logs one `WARN` event with its report; an expected end (an error `when`
//!   rejects, retries disabled by an operator, a cancel, a shutdown) and a call the
//!   `fallback` recovered log at `INFO`; a panic in a spawned
//!   attempt logs at `ERROR`.
//!
//! Errors are shown the same way in events, in a [`Report`]'s one-line form (`{report}`) and
//! in a durable call's stored `last_error`: with the function's `error_format` when it gives
//! one, else with their `Display` when they have one (every `std::error::Error`, and
//! `anyhow::Error`, whose `Debug` would drag its backtrace into the line), with `Debug`
//! otherwise. A failed attempt that will be retried is logged at `INFO` with its error, so an
//! error whose message may hold a secret (a token, a password in a URL) gets an
//! `error_format` that leaves it out:
//!
//! ```
//! use retry_runtime::retry;
//! use std::fmt;
//!
//! fn without_token(e: &String, f: &mut fmt::Formatter<'_>) -> fmt::Result {
//!     f.write_str(e.split("token=").next().unwrap_or_default())
//! }
//!
//! #[retry(max = 1, delay = "0ms", error_format = without_token, fallback = |r| Err(r.to_string()))]
//! fn call() -> Result<(), String> {
//!     Err("refused; token=s3cr3t".to_string())
//! }
//!
//! let line = call().unwrap_err();
//! assert!(line.ends_with(": refused; "), "{line}");
//! ```
//!
//! # Cost
//!
//! A call whose first attempt succeeds allocates nothing, mints no ID, draws no random number
//! and enters no span unless a subscriber wants it. It reads the clock once, at its start, only
//! when something will see the elapsed time (a `budget`, a hook that reads the report, a
//! subscriber that wants the `WARN` event), so a report's `elapsed` includes the first
//! attempt. Async waits use tokio's timer when a tokio runtime is current (so its paused clock
//! drives them) and a shared timer thread under any other executor
//! (`futures::executor::block_on`, smol, async-std); a zero wait registers no timer.
//!
//! With the feature `metrics`, a call also reads the clock at its start (for its duration)
//! and a first-attempt success increments one cached counter, still without allocating.
//! Overrides are looked at only after a failed attempt. A function with a `throttle` takes a
//! short lock when a call starts and when it would retry.
//!
//! # For operators
//!
//! ## Metrics
//!
//! With the feature `metrics`, every `#[retry]` function reports through the
//! [`metrics`](https://docs.rs/metrics/0.24) facade to whatever recorder the application
//! installs (a Prometheus exporter, a `StatsD` one, ...). Install it before the first call: each
//! function registers its series on its first call and keeps the handles. Every series has
//! the labels `function` (the reported name) and `mode` (`inline`, `background`,
//! `handoff`, `durable`).
//!
//! | name | type | more labels | what |
//! |---|---|---|---|
//! | `retry_calls_total` | counter | `outcome`, and `reason` when `outcome="failed"` | calls that ended |
//! | `retry_retries_total` | counter | | retries decided: attempts after the first |
//! | `retry_call_attempts` | histogram | | attempts per finished call that failed at least once |
//! | `retry_call_duration_seconds` | histogram | | seconds from the first attempt to the outcome, same calls |
//! | `retry_in_flight` | gauge | | background and hand-off calls in progress, and durable attempts running in this process (the durable calls waiting between attempts are counted by `durable::Store::stats`) |
//!
//! `outcome` is `succeeded`, `failed`, `recovered` (the `fallback` answered with a success)
//! or `cancelled`. `reason`, on failed calls, is `exhausted`, `budget`, `not_retryable`,
//! `timed_out`, `panicked`, `throttled`, `disabled` (the kill switch) or `shut_down` (the
//! runtime shut down before the call finished: [`shutdown`]).
//!
//! A call whose first attempt succeeds only increments `retry_calls_total`, so that the
//! common case costs one atomic add: the histograms describe the calls that failed at least
//! once (their `_count` is the number of such calls; `retry_calls_total` minus it is the
//! number of first-attempt successes). A retry is counted when the engine decides it, before
//! its wait. What a Prometheus exporter shows after a call that succeeded at its second
//! attempt:
//!
//! ```text
//! retry_calls_total{function="billing::push_invoice",mode="inline",outcome="succeeded"} 1
//! retry_retries_total{function="billing::push_invoice",mode="inline"} 1
//! retry_call_attempts_count{function="billing::push_invoice",mode="inline"} 1
//! ```
//!
//! `examples/grafana.md` in the repository has the queries (`PromQL`) of a dashboard: retry rate,
//! failure rate by reason, attempts p95, calls in flight.
//!
//! ## Overrides: policies tuned at run time
//!
//! [`overrides::set`] replaces the policy of a function, named as it reports itself, for
//! every decision made after it, in calls already under way too; [`overrides::clear`]
//! gives it its own policy back. An override covers `max`, `backoff`, `delay`, `factor`,
//! `max_delay`, `jitter` and `budget`; `timeout` and `throttle` stay the attribute's.
//! Overrides are read only after a failed attempt.
//!
//! ```
//! use retry_runtime::{overrides, retry, Policy};
//! use std::time::Duration;
//!
//! #[retry(max = 3, delay = "0ms", name = "billing::push_invoice")]
//! fn push_invoice() -> Result<(), String> {
//!     Err("the ledger is down".into())
//! }
//!
//! // The ledger is down for a while: retry longer, and less often.
//! overrides::set(
//!     "billing::push_invoice",
//!     Policy::new().max_retries(Some(10)).delay(Duration::from_secs(30)),
//! );
//! assert_eq!(overrides::get("billing::push_invoice").unwrap().max_retries, Some(Some(10)));
//! overrides::clear("billing::push_invoice");
//! ```
//!
//! With the feature `overrides-file`, `overrides::load_file` reads them from a TOML file
//! the application names, one section per function; a key left out keeps the attribute's
//! value. Loading a file replaces every override set before; a bad file is an error that
//! names its line, and changes nothing. Every `#[retry]` function of the program registers
//! its name when the program starts, so a section that names none of them (a typo:
//! `["billing::push_invoce"]`) is such an error too, with the closest name as a hint, rather
//! than a kill switch that silently does nothing. Its docs have a reload-on-SIGHUP recipe.
//!
//! ```toml
//! ["billing::push_invoice"]
//! max = 10            # or "forever"; 0 = kill switch
//! backoff = "exp"     # fixed | linear | exp
//! delay = "200ms"
//! factor = 2.0
//! max_delay = "30s"   # or "none": the default cap
//! jitter = "full"     # none | full | equal | decorrelated
//! budget = "5m"       # or "none"
//! ```
//!
//! ## The kill switch
//!
//! An override with `max = 0` (`Policy::new().max_retries(Some(0))`, or `max = 0` in the
//! file) makes the next failure of every call of the function final, with
//! [`Reason::Disabled`] ("retries disabled"; metrics reason `disabled`). A call that is
//! waiting when it is set runs the attempt it waits for; that attempt's failure ends it.
//!
//! ```
//! use retry_runtime::{overrides, retry, Policy};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
//!
//! #[retry(max = 5, delay = "0ms", name = "mail::send")]
//! fn send() -> Result<(), String> {
//!     ATTEMPTS.fetch_add(1, Ordering::Relaxed);
//!     Err("the mail server is down".into())
//! }
//!
//! overrides::set("mail::send", Policy::new().max_retries(Some(0)));
//! assert!(send().is_err());
//! assert_eq!(ATTEMPTS.load(Ordering::Relaxed), 1);
//! overrides::clear("mail::send");
//! ```
//!
//! ## Retry throttling
//!
//! `throttle = "20%"` bounds the retries of all of a function's calls together: over a
//! sliding window of 10 seconds ([`Throttle::WINDOW`]) they may add at most 20% to its
//! calls, plus [`Throttle::FLOOR`] retries so that a function with little traffic can still
//! retry. A retry refused ends the call with [`Reason::Throttled`] ("retries throttled";
//! metrics reason `throttled`), which `on_exhausted` and `fallback` see. This is Finagle's
//! retry budget and gRPC's retry throttling: when a dependency is down, retries no longer
//! multiply the load on it; when it recovers, its successes earn retries again.
//!
//! ```
//! use retry_runtime::{retry, Reason, Throttle};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
//!
//! #[retry(max = 3, delay = "0ms", throttle = "20%", fallback = |r| Err(r.reason))]
//! fn fetch() -> Result<(), Reason> {
//!     ATTEMPTS.fetch_add(1, Ordering::Relaxed);
//!     Err(Reason::Exhausted)
//! }
//!
//! let throttled = (0..100).filter(|_| fetch() == Err(Reason::Throttled)).count();
//! let retries = ATTEMPTS.load(Ordering::Relaxed) - 100;
//! assert!(retries <= 100 * 20 / 100 + Throttle::FLOOR);
//! assert!(throttled > 0);
//! ```
//!
//! # How it is built
//!
//! The rules of a call live in one place, the [`engine`]: the outcome of an attempt in, the
//! next step out, with no I/O. Each mode is a thin executor around it that runs attempts and
//! sleeps or spawns as told.
//!
//! # Testing
//!
//! Async waits follow tokio's paused clock (`#[tokio::test(start_paused = true)]`); sync waits
//! can be made instant and recorded with [`testing::instant_sleeps`].

#![warn(missing_docs)]

mod cid;
pub mod engine;
mod events;
// Durable calls kept in a database (feature `sqlite`); documented in durable/mod.rs.
#[cfg(feature = "sqlite")]
pub mod durable;
mod hooks;
mod ops;
mod policy;
mod report;
mod result;
mod run;
mod site;
pub mod testing;

/// Not public API: what the expansion of `#[retry]` calls.
#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;

pub use cid::{current_cid, is_cancelled, CorrelationId, ParseCidError};
pub use engine::{Attempts, Decision};
pub use ops::overrides;
pub use policy::{Backoff, Jitter, Policy, Throttle, DEFAULT_MAX_DELAY};
pub use report::{ErrorFormatter, Reason, Report, TimedOut};
pub use result::RetryResult;
pub use run::handle::{Failure, HandleFor, Handoff, HandoffError, HandoffFor, RetryHandle, Status};
pub use run::shutdown::{in_flight, restart, shutdown, Tracker, TrackerGuard};

/// Makes a function retry on failure; see the [crate docs](crate) for every key.
///
/// ```
/// #[retry_runtime::retry(max = 2, delay = "0ms")]
/// fn connect(addr: &str) -> std::io::Result<()> {
///     let _ = addr;
///     Ok(())
/// }
/// assert!(connect("localhost:80").is_ok());
/// ```
pub use retry_macros::retry;
