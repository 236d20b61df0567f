//! One durable call, both ends: the caller stores it ([`enqueue`]), and a worker runs one
//! attempt of it through the engine ([`attempt_async`], [`attempt_sync`]) and reports a
//! [`Verdict`] for the store.

use core::fmt;
use core::future::Future;
use core::time::Duration;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Wake, Waker};

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::cid::CallCtx;
use crate::durable::{BoxFuture, NewCall, Progress, Store, StoreError};
use crate::engine::{self, Attempts, Clock, Done, Engine, Step};
use crate::events::show_error;
use crate::hooks::HookSet;
use crate::result::Returns;
use crate::run::attempter::{AsyncAttempts, Attempter, Panicked, SyncAttempts};
use crate::run::background::{SpawnResult, Spec};
use crate::run::clock::WallClock;
use crate::run::inline::FirstFailure;
use crate::run::race::Limited;
use crate::run::wait::Wait;
use crate::{current_cid, CorrelationId, Reason};

// ---------------------------------------------------------------------------------------
// The caller's end.

static DEFAULT_STORE: RwLock<Option<Store>> = RwLock::new(None);

/// Makes `store` the one durable calls of this process are stored in.
///
/// ```
/// use retry_runtime::durable::{self, Store};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), durable::StoreError> {
/// let store = Store::open("sqlite::memory:").await?;
/// durable::set_default_store(store.clone());
/// assert!(durable::default_store().is_ok());
/// # Ok(())
/// # }
/// ```
pub fn set_default_store(store: Store) {
    *DEFAULT_STORE
        .write()
        .unwrap_or_else(PoisonError::into_inner) = Some(store);
}

/// The store set by [`set_default_store`].
///
/// # Errors
/// [`StoreError::NoDefaultStore`] before one is set.
pub fn default_store() -> Result<Store, StoreError> {
    DEFAULT_STORE
        .read()
        .unwrap_or_else(PoisonError::into_inner)
        .clone()
        .ok_or(StoreError::NoDefaultStore)
}

/// The arguments of a call being stored, as a JSON object keyed by the parameters' names
/// (readable in the store).
#[derive(Debug, Default)]
pub struct ArgsOut(serde_json::Map<String, serde_json::Value>);

impl ArgsOut {
    /// No arguments yet.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds the argument `name`.
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when the value does not serialize.
    pub fn put<T: DurableArg>(&mut self, name: &str, value: &T) -> Result<(), StoreError> {
        let v = value.to_json().map_err(|e| {
            StoreError::Invalid(format!("argument `{name}` does not serialize: {e}"))
        })?;
        self.0.insert(name.to_owned(), v);
        Ok(())
    }

    fn into_json(self) -> String {
        serde_json::Value::Object(self.0).to_string()
    }
}

/// Stores a call of the durable function `name` with `args` in the default store; returns
/// once it is committed.
///
/// # Errors
/// No default store, or the store's error.
pub async fn enqueue(name: &'static str, args: ArgsOut) -> Result<CorrelationId, StoreError> {
    let store = default_store()?;
    let call = new_call(name, args);
    let cid = call.cid;
    store.enqueue(vec![call]).await?;
    Ok(cid)
}

/// [`enqueue`] for a sync function: blocks this thread until the call is committed.
///
/// # Errors
/// As [`enqueue`].
pub fn enqueue_blocking(name: &'static str, args: ArgsOut) -> Result<CorrelationId, StoreError> {
    block_on(enqueue(name, args))
}

fn new_call(name: &'static str, args: ArgsOut) -> NewCall {
    let call = NewCall::new(name, args.into_json());
    match current_cid() {
        Some(parent) => call.with_parent(parent),
        None => call,
    }
}

/// Polls a future to completion on this thread (the store answers from its own thread, so
/// nothing here needs a runtime).
fn block_on<F: Future>(fut: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut fut = core::pin::pin!(fut);
    loop {
        if let Poll::Ready(v) = fut.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::park();
    }
}

/// An argument of a durable function: stored as JSON, read back by a worker.
#[diagnostic::on_unimplemented(
    message = "durable calls store their arguments as JSON, so each argument must implement serde's `Serialize` and `DeserializeOwned`; `{Self}` does not",
    label = "not `Serialize + DeserializeOwned`",
    note = "derive them: `#[derive(serde::Serialize, serde::Deserialize)]`, or use `mode = \"background\"`"
)]
pub trait DurableArg: Sized {
    /// The value as JSON.
    ///
    /// # Errors
    /// When it does not serialize.
    fn to_json(&self) -> serde_json::Result<serde_json::Value>;
    /// The value from JSON.
    ///
    /// # Errors
    /// When the JSON does not decode as this type.
    fn from_json(v: serde_json::Value) -> serde_json::Result<Self>;
}

impl<T: Serialize + DeserializeOwned> DurableArg for T {
    fn to_json(&self) -> serde_json::Result<serde_json::Value> {
        serde_json::to_value(self)
    }
    fn from_json(v: serde_json::Value) -> serde_json::Result<Self> {
        serde_json::from_value(v)
    }
}

/// What a `persist = "on_failure"` durable function returns: the outcome of its first
/// attempt, made in the caller, or the ID of the call stored for a worker to retry.
///
/// ```
/// use retry_runtime::durable::Outcome;
///
/// let done: Outcome<u32, String> = Outcome::Done(Ok(7));
/// assert_eq!(done.stored(), None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[must_use]
pub enum Outcome<T, E> {
    /// The first attempt succeeded, or failed with an error not worth retrying: nothing was
    /// written.
    Done(Result<T, E>),
    /// The first attempt failed and the call was committed to the store; a worker retries it.
    Stored(CorrelationId),
}

impl<T, E> Outcome<T, E> {
    /// The stored call's ID, if the call was stored.
    #[must_use]
    pub fn stored(&self) -> Option<CorrelationId> {
        match self {
            Self::Stored(cid) => Some(*cid),
            Self::Done(_) => None,
        }
    }
}

/// The type a `persist = "on_failure"` function with return type `R` returns.
pub type OutcomeFor<R> =
    Result<Outcome<<R as crate::RetryResult>::Ok, <R as crate::RetryResult>::Err>, StoreError>;

/// Stores a `persist = "on_failure"` call whose first attempt, made in the caller by the
/// inline executor, failed and is worth retrying: committed (waiting, with that attempt's
/// progress and error) before it returns.
///
/// # Errors
/// No default store, or the store's error.
pub async fn store_first<T, E, P>(
    name: &'static str,
    first: FirstFailure,
    args: P,
) -> Result<Outcome<T, E>, StoreError>
where
    P: FnOnce() -> Result<ArgsOut, StoreError>,
{
    let now = WallClock.now();
    let mut state = first.progress;
    let started = *state.started.get_or_insert(now);
    let progress = Progress {
        attempts: state.made,
        started_at: Some(started),
        last_wait_ns: state.last_wait_ns,
        attempt_started: started,
    };
    let mut call = NewCall::new(name, args()?.into_json())
        .with_cid(first.cid)
        .due_at(now + first.wait)
        .tried(progress, first.error);
    call.parent = first.parent;
    default_store()?.enqueue(vec![call]).await?;
    Ok(Outcome::Stored(first.cid))
}

/// [`store_first`] for a sync function: blocks until the call is committed.
///
/// # Errors
/// As [`store_first`].
pub fn store_first_blocking<T, E, P>(
    name: &'static str,
    first: FirstFailure,
    args: P,
) -> Result<Outcome<T, E>, StoreError>
where
    P: FnOnce() -> Result<ArgsOut, StoreError>,
{
    block_on(store_first(name, first, args))
}

// ---------------------------------------------------------------------------------------
// The worker's end.

/// A stored call, as a worker hands it to its function for one attempt.
#[derive(Debug, Clone)]
pub struct Job {
    /// The call's ID.
    pub cid: CorrelationId,
    /// The enqueuing call's ID.
    pub parent: Option<CorrelationId>,
    /// The arguments, JSON text.
    pub args: String,
    /// The progress so far.
    pub progress: Attempts,
}

/// What follows an attempt of a stored call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt succeeded.
    Succeeded {
        /// The progress, this attempt included.
        progress: Attempts,
    },
    /// Retry after `wait`.
    Retry {
        /// The progress, this attempt included.
        progress: Attempts,
        /// The wait before the next attempt.
        wait: Duration,
        /// The attempt's error, as text.
        error: String,
    },
    /// Given up: a dead letter.
    Dead {
        /// The progress, this attempt included.
        progress: Attempts,
        /// Why.
        reason: Reason,
        /// The last error, as text.
        error: Option<String>,
    },
    /// The stored arguments no longer decode (the function's signature changed): a dead
    /// letter, no attempt made.
    Undecodable(String),
}

/// The stored arguments of a call, read back by name.
#[derive(Debug)]
pub struct ArgsIn(serde_json::Map<String, serde_json::Value>);

/// Stored arguments that do not fit the function any more.
#[derive(Debug)]
pub struct ArgsError(String);

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ArgsIn {
    fn parse(json: &str) -> Result<Self, ArgsError> {
        match serde_json::from_str(json) {
            Ok(serde_json::Value::Object(m)) => Ok(Self(m)),
            Ok(_) => Err(ArgsError(
                "the stored arguments are not a JSON object".into(),
            )),
            Err(e) => Err(ArgsError(format!("the stored arguments are not JSON: {e}"))),
        }
    }

    /// Takes the argument `name`.
    ///
    /// # Errors
    /// When it is missing or does not decode as a `T`.
    pub fn take<T: DurableArg>(&mut self, name: &str) -> Result<T, ArgsError> {
        let v = self
            .0
            .remove(name)
            .ok_or_else(|| ArgsError(format!("the stored arguments have no `{name}`")))?;
        T::from_json(v)
            .map_err(|e| ArgsError(format!("the stored argument `{name}` does not decode: {e}")))
    }
}

/// Runs one attempt of a stored call of an async durable function: `make` decodes the
/// arguments and returns the attempt's future.
pub fn attempt_async<R, H, M, F>(
    _: Returns<R>,
    spec: Spec<R::Err, H>,
    job: Job,
    make: M,
) -> BoxFuture<'static, Verdict>
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    M: FnOnce(&mut ArgsIn) -> Result<F, ArgsError>,
    F: Future<Output = R> + Send + 'static,
{
    decode_then_run(spec, job, make, |fut| AsyncAttempts(once(fut)))
}

/// Runs one attempt of a stored call of a sync durable function (on tokio's blocking pool):
/// `make` decodes the arguments and returns the attempt's body.
pub fn attempt_sync<R, H, M, B>(
    _: Returns<R>,
    spec: Spec<R::Err, H>,
    job: Job,
    make: M,
) -> BoxFuture<'static, Verdict>
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    M: FnOnce(&mut ArgsIn) -> Result<B, ArgsError>,
    B: FnOnce() -> R + Send + 'static,
{
    decode_then_run(spec, job, make, |body| SyncAttempts(once(body)))
}

/// Decodes the arguments, then runs the one attempt `attempter` makes of them; arguments that
/// do not decode are the verdict.
fn decode_then_run<R, H, M, X, A>(
    spec: Spec<R::Err, H>,
    job: Job,
    make: M,
    attempter: impl FnOnce(X) -> A,
) -> BoxFuture<'static, Verdict>
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    M: FnOnce(&mut ArgsIn) -> Result<X, ArgsError>,
    A: Attempter<R>,
{
    match ArgsIn::parse(&job.args).and_then(|mut a| make(&mut a)) {
        Ok(x) => Box::pin(run(spec, job, attempter(x))),
        Err(e) => Box::pin(core::future::ready(Verdict::Undecodable(e.0))),
    }
}

/// The maker of a job's one attempt.
fn once<X>(x: X) -> impl FnMut() -> X {
    let mut x = Some(x);
    move || x.take().expect("a durable job makes one attempt")
}

/// One attempt, then the engine's decision, as a verdict for the store.
async fn run<R, H, A>(spec: Spec<R::Err, H>, job: Job, mut attempter: A) -> Verdict
where
    R: SpawnResult,
    H: HookSet<R> + Send + Sync + 'static,
    A: Attempter<R>,
{
    // `retry_in_flight` counts the durable attempts running in this process (the calls
    // waiting between attempts are in the store: `Store::stats`).
    #[cfg(feature = "metrics")]
    let _gauge = spec.site.metrics(spec.engine::<R>().name()).in_flight();
    let ctx = CallCtx::with_ids(job.cid, job.parent);
    let mut state = job.progress;
    if state.started.is_none() {
        state.started = Some(WallClock.now());
    }
    state.start_attempt();
    let span = spec.site.span(
        spec.hooks.type_name(),
        &ctx,
        state.made,
        state.started.is_some(),
    );
    let attempt = Limited {
        fut: attempter.attempt(CallCtx::with_ids(job.cid, job.parent), span),
        deadline: spec.policy.timeout.map(Wait::new),
    };
    let outcome = match attempt.await {
        None => engine::Outcome::TimedOut(spec.timed_out()),
        Some(Err(Panicked(msg))) => engine::Outcome::Panicked(msg),
        Some(Ok(r)) => engine::Outcome::Returned(r),
    };
    let engine: Engine<'_, R, H> = spec.engine();
    match engine.settle(&ctx, &mut state, outcome, None, &WallClock) {
        Step::Retry { wait, error } => Verdict::Retry {
            progress: state,
            wait,
            error: show_error::<R, H>(&spec.hooks, &error),
        },
        Step::Done(Done::Ok(_)) => Verdict::Succeeded { progress: state },
        Step::Done(Done::Failed(report)) => Verdict::Dead {
            progress: state,
            reason: report.reason,
            error: report
                .last_error
                .as_ref()
                .map(|e| show_error::<R, H>(&spec.hooks, e)),
        },
    }
}
