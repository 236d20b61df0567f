//! Cancelling a spawned call through its handle: a flag, and the waker of the task waiting
//! for it (a plain slot, not a `Notify` waiter, so that the task does not carry one).

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::{AtomicBool, Ordering};
use core::task::{Context, Poll, Waker};
use std::sync::{Mutex, PoisonError};

/// A call's cancel flag.
#[derive(Debug, Default)]
pub(crate) struct Cancel {
    cancelled: AtomicBool,
    waker: Mutex<Option<Waker>>,
}

impl Cancel {
    /// Cancels, and wakes the task if it waits for it.
    pub(crate) fn cancel(&self) {
        self.cancelled.store(true, Ordering::SeqCst);
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(w) = waker {
            w.wake();
        }
    }

    /// Whether the call was cancelled.
    pub(crate) fn is_cancelled(&self) -> bool {
        self.cancelled.load(Ordering::SeqCst)
    }

    /// Completes once the call is cancelled.
    pub(crate) fn signal(&self) -> CancelSignal<'_> {
        CancelSignal(self)
    }
}

/// Completes once the call is cancelled.
pub(crate) struct CancelSignal<'a>(&'a Cancel);

impl Future for CancelSignal<'_> {
    type Output = ();
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // Register first, then check: a `cancel()` after the check finds the waker.
        *self.0.waker.lock().unwrap_or_else(PoisonError::into_inner) = Some(cx.waker().clone());
        if self.0.is_cancelled() {
            Poll::Ready(())
        } else {
            Poll::Pending
        }
    }
}
