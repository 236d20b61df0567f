//! How one attempt of a spawned call runs: an async body polled in the task, a sync body on
//! tokio's blocking pool, each with its panics caught.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::any::Any;
use std::panic::AssertUnwindSafe;

use crate::cid::CallCtx;
use crate::result::Returns;
use crate::run::inline::InCall;

/// A panic in an attempt, with its message when it had one.
#[derive(Debug)]
pub struct Panicked(pub(crate) String);

impl Panicked {
    fn from_payload(p: &(dyn Any + Send)) -> Self {
        let msg = p
            .downcast_ref::<&str>()
            .map(ToString::to_string)
            .or_else(|| p.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic without a message".to_string());
        Self(msg)
    }
}

/// Runs one attempt of a background call.
///
/// That the return type can move to the task (`R: Send`) is asked by each method, not by the
/// impls, so that a return type that cannot is reported once, by the executor's
/// `R: SpawnResult`, at the return type.
pub trait Attempter<R>: Send + 'static {
    /// Whether a running attempt can be aborted (async bodies) or must be let finish (sync).
    const ABORTABLE: bool;
    /// Starts one attempt in the given context and span.
    fn attempt(
        &mut self,
        ctx: CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = Result<R, Panicked>> + Send + 'static
    where
        R: Send + 'static;
    /// Runs one attempt in the caller (the first attempt of a hand-off call).
    fn attempt_here(
        &mut self,
        ctx: &CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = R> + Send
    where
        R: Send + 'static;
}

/// An async body: a maker of one future per attempt.
#[derive(Debug)]
pub struct AsyncAttempts<M>(pub M);

/// A sync body: a maker of one closure per attempt, run on tokio's blocking pool.
#[derive(Debug)]
pub struct SyncAttempts<M>(pub M);

/// Checks an async body's maker against the function's return type.
pub fn async_attempts<R, M, F>(_: Returns<R>, m: M) -> AsyncAttempts<M>
where
    M: FnMut() -> F,
    F: Future<Output = R>,
{
    AsyncAttempts(m)
}

/// Checks a sync body's maker against the function's return type.
pub fn sync_attempts<R, M, A>(_: Returns<R>, m: M) -> SyncAttempts<M>
where
    M: FnMut() -> A,
    A: FnOnce() -> R,
{
    SyncAttempts(m)
}

impl<R, M, F> Attempter<R> for AsyncAttempts<M>
where
    M: FnMut() -> F + Send + 'static,
    F: Future<Output = R> + Send + 'static,
{
    const ABORTABLE: bool = true;

    fn attempt(
        &mut self,
        ctx: CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = Result<R, Panicked>> + Send + 'static
    where
        R: Send + 'static,
    {
        CatchUnwind(InCall::new(ctx, span, (self.0)()))
    }

    fn attempt_here(
        &mut self,
        ctx: &CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = R> + Send
    where
        R: Send + 'static,
    {
        // The first attempt of a hand-off call runs like an inline one: a panic unwinds to
        // the caller.
        let fut = (self.0)();
        InCall::new(copy_ctx(ctx), span, fut)
    }
}

impl<R, M, A> Attempter<R> for SyncAttempts<M>
where
    M: FnMut() -> A + Send + 'static,
    A: FnOnce() -> R + Send + 'static,
{
    const ABORTABLE: bool = false;

    fn attempt(
        &mut self,
        ctx: CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = Result<R, Panicked>> + Send + 'static
    where
        R: Send + 'static,
    {
        let body = (self.0)();
        let task = tokio::task::spawn_blocking(move || {
            let _span = span.as_ref().map(tracing::Span::enter);
            let _ctx = ctx.enter();
            std::panic::catch_unwind(AssertUnwindSafe(body))
                .map_err(|p| Panicked::from_payload(&*p))
        });
        async move {
            match task.await {
                Ok(r) => r,
                Err(e) => Err(Panicked(e.to_string())),
            }
        }
    }

    fn attempt_here(
        &mut self,
        ctx: &CallCtx,
        span: Option<tracing::Span>,
    ) -> impl Future<Output = R> + Send
    where
        R: Send + 'static,
    {
        let body = (self.0)();
        let r = {
            let _span = span.as_ref().map(tracing::Span::enter);
            let _ctx = ctx.enter();
            body()
        };
        core::future::ready(r)
    }
}

/// A copy of a context's IDs, owned (so a future holding it is `Send`).
fn copy_ctx(ctx: &CallCtx) -> CallCtx {
    CallCtx::with_ids(ctx.cid(), ctx.parent())
}

pin_project_lite::pin_project! {
    /// Turns a panic while polling into `Err(Panicked)`.
    struct CatchUnwind<F> {
        #[pin]
        fut: F,
    }
}

#[allow(non_snake_case)]
fn CatchUnwind<F>(fut: F) -> CatchUnwind<F> {
    CatchUnwind { fut }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, Panicked>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let fut = self.project().fut;
        match std::panic::catch_unwind(AssertUnwindSafe(|| fut.poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(v)) => Poll::Ready(Ok(v)),
            Err(p) => Poll::Ready(Err(Panicked::from_payload(&*p))),
        }
    }
}
