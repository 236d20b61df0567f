//! Small future combinators the executors share: an attempt with a time limit, and a race.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};

pin_project_lite::pin_project! {
    /// An attempt with an optional time limit: `None` when the limit ran out first. The
    /// timer is only there with `timeout = ...`: a [`Wait`](crate::run::wait::Wait), or an
    /// inline call's own timer.
    pub(crate) struct WithDeadline<F, D> {
        #[pin]
        pub(crate) fut: F,
        pub(crate) deadline: Option<D>,
    }
}

impl<F: Future, D: Future<Output = ()> + Unpin> Future for WithDeadline<F, D> {
    type Output = Option<F::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.fut.poll(cx) {
            return Poll::Ready(Some(v));
        }
        if let Some(d) = this.deadline {
            if Pin::new(d).poll(cx).is_ready() {
                return Poll::Ready(None);
            }
        }
        Poll::Pending
    }
}

pin_project_lite::pin_project! {
    /// Polls `a` then `b`; the first to finish wins.
    pub(crate) struct Race<A, B> {
        #[pin]
        pub(crate) a: A,
        #[pin]
        pub(crate) b: B,
    }
}

/// Which of two raced futures finished.
pub(crate) enum Either<A, B> {
    Left(A),
    Right(B),
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Either<A::Output, B::Output>;
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.a.poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        this.b.poll(cx).map(Either::Right)
    }
}
