//! The wait between two attempts: [`Wait`] for an async call, under any executor, and
//! [`blocking`] for a sync one.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::testing;

/// The wait between two async attempts, under any executor: tokio's timer when a tokio
/// runtime is current (so its paused clock drives the wait), a timer thread otherwise
/// (`futures::executor::block_on`, smol, async-std). A zero wait registers no timer; a
/// non-zero one is boxed, so the call's future does not carry the timer's bytes through
/// every attempt (one allocation per real wait, next to a timer registration).
#[derive(Debug)]
#[must_use = "a wait does nothing unless awaited"]
pub struct Wait(Option<Pin<Box<Timer>>>);

pin_project_lite::pin_project! {
    #[project = TimerProj]
    #[derive(Debug)]
    enum Timer {
        Tokio { #[pin] sleep: tokio::time::Sleep },
        Thread { delay: futures_timer::Delay },
    }
}

impl Wait {
    /// A wait of `d`.
    pub fn new(d: Duration) -> Self {
        if d.is_zero() {
            return Self(None);
        }
        let timer = if tokio::runtime::Handle::try_current().is_ok() {
            Timer::Tokio {
                sleep: tokio::time::sleep(d),
            }
        } else {
            Timer::Thread {
                delay: futures_timer::Delay::new(d),
            }
        };
        Self(Some(Box::pin(timer)))
    }
}

impl Future for Wait {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let Some(timer) = &mut self.0 else {
            return Poll::Ready(());
        };
        match timer.as_mut().project() {
            TimerProj::Tokio { sleep } => sleep.poll(cx),
            TimerProj::Thread { delay } => Pin::new(delay).poll(cx),
        }
    }
}

/// The wait between two sync attempts: `std::thread::sleep`, unless the virtual clock of
/// [`testing::instant_sleeps`] takes it.
#[inline]
pub(crate) fn blocking(d: Duration) {
    if !testing::took_wait(d) && !d.is_zero() {
        std::thread::sleep(d);
    }
}
