//! The caller's end of a durable call: the default store, and storing a call ([`enqueue`],
//! or [`store_first`] after a `persist = "on_failure"` first attempt failed). A worker runs
//! it later through the durable executor (`run/durable.rs`).

use core::future::Future;
use std::sync::{Arc, PoisonError, RwLock};
use std::task::{Context, Poll, Wake, Waker};

use crate::durable::args::ArgsOut;
use crate::durable::{NewCall, Progress, Store, StoreError};
use crate::engine::Clock;
use crate::run::clock::WallClock;
use crate::run::inline::FirstFailure;
use crate::{current_cid, CorrelationId};

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
pub(crate) fn block_on<F: Future>(fut: F) -> F::Output {
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
    let state = first.progress.kept_from(now);
    // The first attempt started when the call did (or, unobserved, is placed now).
    let progress = Progress::after_attempt(state, state.started.unwrap_or(now));
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
