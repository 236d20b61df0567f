//! The wait between two attempts: [`Wait`] and `Timers` for an async call, under any
//! executor, and [`blocking`] for a sync one.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use core::time::Duration;

use crate::testing;

/// The wait between two async attempts, under any executor: tokio's timer when a tokio
/// runtime is current (so its paused clock drives the wait), a timer thread otherwise
/// (`futures::executor::block_on`, smol, async-std). A zero wait registers no timer; a
/// non-zero one is boxed, so the future that holds it does not carry the timer's bytes (one
/// allocation per wait: the time limits of background, hand-off and durable attempts; an
/// inline call reuses one timer, `Timers`).
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

impl Timer {
    /// A timer of `d` (not zero), on tokio's clock when a tokio runtime is current.
    fn new(d: Duration) -> Self {
        if tokio::runtime::Handle::try_current().is_ok() {
            Self::Tokio {
                sleep: tokio::time::sleep(d),
            }
        } else {
            Self::Thread {
                delay: futures_timer::Delay::new(d),
            }
        }
    }

    /// Sets the timer again for `d` from now, in place: a tokio timer is made anew (it takes
    /// the current runtime, as a new wait would; no allocation), a thread timer is reset
    /// (which keeps its shared node), and a timer of the other kind is replaced.
    fn rearm(mut self: Pin<&mut Self>, d: Duration) {
        if tokio::runtime::Handle::try_current().is_err() {
            if let TimerProj::Thread { delay } = self.as_mut().project() {
                delay.reset(d);
                return;
            }
        }
        self.set(Self::new(d));
    }

    fn poll_timer(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match self.project() {
            TimerProj::Tokio { sleep } => sleep.poll(cx),
            TimerProj::Thread { delay } => Pin::new(delay).poll(cx),
        }
    }
}

impl Wait {
    /// A wait of `d`.
    pub fn new(d: Duration) -> Self {
        if d.is_zero() {
            return Self(None);
        }
        Self(Some(Box::pin(Timer::new(d))))
    }
}

impl Future for Wait {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(timer) => timer.as_mut().poll_timer(cx),
            None => Poll::Ready(()),
        }
    }
}

/// The one timer of an inline async call, for its waits and its attempts' time limits (which
/// never run at the same time): made, boxed, at the call's first non-zero wait or limit, and
/// re-armed in place for every later one. So the call's future carries 8 bytes for it, not
/// the timer's (tokio's `Sleep` is over 100), and a call allocates once however many times
/// it waits; a call that never waits allocates nothing.
#[derive(Debug, Default)]
pub struct Timers(Option<Pin<Box<Timer>>>);

impl Timers {
    /// The timer armed for `d`, or `None` for a zero wait.
    pub(crate) fn arm(&mut self, d: Duration) -> Armed<'_> {
        if d.is_zero() {
            return Armed(None);
        }
        match &mut self.0 {
            Some(timer) => timer.as_mut().rearm(d),
            None => self.0 = Some(Box::pin(Timer::new(d))),
        }
        Armed(self.0.as_mut().map(Pin::as_mut))
    }
}

/// A wait on a call's `Timers`: ready when the timer fires, at once for a zero wait.
#[derive(Debug)]
#[must_use = "a wait does nothing unless awaited"]
pub struct Armed<'t>(Option<Pin<&'t mut Timer>>);

impl Future for Armed<'_> {
    type Output = ();

    #[inline]
    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        match &mut self.0 {
            Some(timer) => timer.as_mut().poll_timer(cx),
            None => Poll::Ready(()),
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
