//! Correlation IDs: one per retried call, minted only when something asks for it.

use core::cell::{Cell, RefCell};
use core::fmt;
use core::num::NonZeroU64;
use core::ptr;
use core::str::FromStr;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// The ID of one retried call: 128 bits, time-sortable (48 bits of Unix milliseconds, then 80
/// random bits, as in ULID), printed as 26 characters of Crockford base32.
///
/// Every call of a `#[retry]` function has one; it is minted the first time something asks
/// for it (the body through [`current_cid`], a subscriber that records the span, a report),
/// so a call that succeeds at once and never asks pays nothing for it.
///
/// ```
/// use retry_runtime::CorrelationId;
///
/// let cid = CorrelationId::new();
/// let text = cid.to_string();
/// assert_eq!(text.len(), 26);
/// assert_eq!(text.parse::<CorrelationId>().unwrap(), cid);
/// assert!(CorrelationId::new() > cid || CorrelationId::new().timestamp_ms() >= cid.timestamp_ms());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CorrelationId {
    // Two halves rather than a `u128` keep the alignment at 8, so a future holding one stays
    // small; the high half is never zero (it holds the timestamp), which gives `Option` a niche.
    hi: NonZeroU64,
    lo: u64,
}

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

impl CorrelationId {
    /// Mints a new ID from the current time and a random number.
    #[must_use]
    pub fn new() -> Self {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Self::from_parts(ms, fastrand::u128(..))
    }

    /// Builds an ID from a millisecond timestamp and random bits (only the low 80 are used).
    #[must_use]
    pub fn from_parts(timestamp_ms: u64, random: u128) -> Self {
        let v =
            (u128::from(timestamp_ms & 0xFFFF_FFFF_FFFF) << 80) | (random & ((1u128 << 80) - 1));
        Self::from_u128(v)
    }

    /// The ID as one number; the zero ID maps to 1 in the low bits of the high half.
    #[must_use]
    pub fn from_u128(v: u128) -> Self {
        #[allow(clippy::cast_possible_truncation)]
        let (hi, lo) = ((v >> 64) as u64, v as u64);
        Self {
            hi: NonZeroU64::new(hi).unwrap_or(NonZeroU64::MIN),
            lo,
        }
    }

    /// The ID as one 128-bit number.
    #[must_use]
    pub fn as_u128(self) -> u128 {
        (u128::from(self.hi.get()) << 64) | u128::from(self.lo)
    }

    /// The Unix time in milliseconds at which the ID was minted.
    #[must_use]
    pub fn timestamp_ms(self) -> u64 {
        self.hi.get() >> 16
    }
}

impl Default for CorrelationId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = self.as_u128();
        let mut out = [0u8; 26];
        for (i, c) in out.iter_mut().enumerate() {
            let shift = 125 - 5 * i32::try_from(i).unwrap_or(0);
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let idx = ((v >> shift) & 0x1F) as usize;
            *c = ALPHABET[idx];
        }
        f.write_str(core::str::from_utf8(&out).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for CorrelationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CorrelationId({self})")
    }
}

/// The text was not 26 characters of Crockford base32 with a first character of 0 to 7.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseCidError;

impl fmt::Display for ParseCidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a correlation ID is 26 characters of Crockford base32, the first 0-7")
    }
}

impl std::error::Error for ParseCidError {}

impl FromStr for CorrelationId {
    type Err = ParseCidError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() != 26 {
            return Err(ParseCidError);
        }
        let mut v: u128 = 0;
        for (i, b) in s.bytes().enumerate() {
            let d = match b.to_ascii_uppercase() {
                c @ b'0'..=b'9' => c - b'0',
                b'O' => 0,
                b'I' | b'L' => 1,
                c => u8::try_from(ALPHABET.iter().position(|&a| a == c).ok_or(ParseCidError)?)
                    .map_err(|_| ParseCidError)?,
            };
            if i == 0 && d > 7 {
                return Err(ParseCidError);
            }
            v = (v << 5) | u128::from(d);
        }
        if v >> 64 == 0 {
            return Err(ParseCidError);
        }
        Ok(Self::from_u128(v))
    }
}

/// The per-call identity: the call's own ID (minted lazily) and its parent's.
#[doc(hidden)]
#[derive(Debug)]
pub struct CallCtx {
    // The lazily minted ID, high half first; 0 in the high half means "not minted yet" (a
    // minted ID's high half holds its timestamp and is never 0). Atomics rather than a `Cell`
    // keep the context `Sync`, so an async call's future stays `Send`. Only the task polling
    // the call mints, so relaxed loads and stores suffice.
    hi: AtomicU64,
    lo: AtomicU64,
    parent: Option<CorrelationId>,
}

thread_local! {
    static CURRENT: Cell<*const CallCtx> = const { Cell::new(ptr::null()) };
}

impl CallCtx {
    /// A context for a call starting now: its parent is the call whose attempt is running on
    /// this thread, if any (that call's ID is minted here, since the child may outlive it).
    #[inline]
    pub(crate) fn new() -> Self {
        Self::starting()
    }

    /// The same, for the expansion: an inline call keeps its context in a local of its own,
    /// apart from the rest of the call's state, so that the one address the thread-local
    /// takes does not keep the policy and the attempt count in memory.
    #[must_use]
    #[inline]
    pub fn starting() -> Self {
        Self {
            hi: AtomicU64::new(0),
            lo: AtomicU64::new(0),
            parent: current_cid(),
        }
    }

    /// A context whose ID is already known (background calls mint it before the spawn).
    pub(crate) fn with_ids(cid: CorrelationId, parent: Option<CorrelationId>) -> Self {
        Self {
            hi: AtomicU64::new(cid.hi.get()),
            lo: AtomicU64::new(cid.lo),
            parent,
        }
    }

    #[inline]
    pub(crate) fn cid(&self) -> CorrelationId {
        if let Some(hi) = NonZeroU64::new(self.hi.load(Ordering::Relaxed)) {
            return CorrelationId {
                hi,
                lo: self.lo.load(Ordering::Relaxed),
            };
        }
        self.mint()
    }

    #[cold]
    #[inline(never)]
    fn mint(&self) -> CorrelationId {
        let c = CorrelationId::new();
        self.lo.store(c.lo, Ordering::Relaxed);
        self.hi.store(c.hi.get(), Ordering::Relaxed);
        c
    }

    pub(crate) fn parent(&self) -> Option<CorrelationId> {
        self.parent
    }

    /// Makes this the current call on this thread until the guard drops.
    #[inline]
    pub(crate) fn enter(&self) -> CtxGuard {
        CtxGuard(CURRENT.with(|c| c.replace(ptr::from_ref(self))))
    }
}

/// Restores the previous current call when dropped (also on unwind).
pub(crate) struct CtxGuard(*const CallCtx);

impl Drop for CtxGuard {
    #[inline]
    fn drop(&mut self) {
        CURRENT.with(|c| c.set(self.0));
    }
}

/// The correlation ID of the retried call whose attempt is running here, or `None` outside
/// any `#[retry]` function.
///
/// Inside the body of a `#[retry]` function it is the same for every attempt of one call and
/// different for every call. Asking for it mints it.
///
/// ```
/// use retry_runtime::{current_cid, retry};
///
/// #[retry(max = 2, delay = "0ms")]
/// fn who_am_i() -> Result<String, std::io::Error> {
///     Ok(current_cid().expect("inside a retried call").to_string())
/// }
///
/// assert_eq!(who_am_i().unwrap().len(), 26);
/// assert!(current_cid().is_none());
/// ```
#[must_use]
#[inline]
pub fn current_cid() -> Option<CorrelationId> {
    let p = CURRENT.with(Cell::get);
    // SAFETY: `CURRENT` only ever holds null or the address of a `CallCtx` that is entered
    // by a live `CtxGuard` on this thread; the guard is dropped (restoring the previous value)
    // before that context can move or be dropped, because both live in the same attempt.
    unsafe { p.as_ref() }.map(CallCtx::cid)
}

thread_local! {
    /// The cancellation flag of the durable call whose attempt runs on this thread (set while
    /// an async attempt is polled, and for the whole of a sync attempt on its thread).
    static CANCEL: RefCell<Option<Arc<AtomicBool>>> = const { RefCell::new(None) };
}

/// Whether the durable call whose attempt is running here was cancelled (or its worker lost
/// the call's lease, so another worker may run it): the attempt should stop as soon as it
/// safely can. `false` outside an attempt of a durable call.
///
/// A cancelled async attempt is dropped at its next `.await` and never needs to ask; a sync
/// attempt cannot be stopped from outside (its thread cannot be killed), so a long sync body
/// checks this between steps and returns early. Its outcome is not recorded either way: the
/// call is already `cancelled` in the store.
///
/// ```
/// use retry_runtime::is_cancelled;
///
/// // A long sync body of a `mode = "durable"` function would check between steps:
/// fn copy_rows(rows: &[u32]) -> Result<usize, std::io::Error> {
///     let mut done = 0;
///     for _row in rows {
///         if is_cancelled() {
///             return Err(std::io::Error::other("cancelled"));
///         }
///         done += 1; // one step of the work
///     }
///     Ok(done)
/// }
///
/// // Outside a durable attempt nothing is ever cancelled.
/// assert!(!is_cancelled());
/// assert_eq!(copy_rows(&[1, 2, 3]).unwrap(), 3);
/// ```
#[must_use]
pub fn is_cancelled() -> bool {
    CANCEL.with(|c| {
        c.borrow()
            .as_ref()
            .is_some_and(|f| f.load(Ordering::Acquire))
    })
}

/// Makes `flag` the answer of [`is_cancelled`] on this thread until the guard drops (the
/// durable executor's attempts).
#[cfg(feature = "sqlite")]
pub(crate) fn enter_cancel(flag: &Arc<AtomicBool>) -> CancelGuard {
    CancelGuard(CANCEL.with(|c| c.replace(Some(Arc::clone(flag)))))
}

/// Restores the previous cancellation flag when dropped (also on unwind).
#[cfg(feature = "sqlite")]
pub(crate) struct CancelGuard(Option<Arc<AtomicBool>>);

#[cfg(feature = "sqlite")]
impl Drop for CancelGuard {
    fn drop(&mut self) {
        let previous = self.0.take();
        CANCEL.with(|c| *c.borrow_mut() = previous);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trip_and_order() {
        let a = CorrelationId::from_parts(1_700_000_000_000, 5);
        let b = CorrelationId::from_parts(1_700_000_000_001, 0);
        assert!(a < b);
        assert!(a.to_string() < b.to_string());
        assert_eq!(a.to_string().parse::<CorrelationId>(), Ok(a));
        assert_eq!(a.timestamp_ms(), 1_700_000_000_000);
        assert_eq!("too short".parse::<CorrelationId>(), Err(ParseCidError));
        assert_eq!(
            "8ZZZZZZZZZZZZZZZZZZZZZZZZZ".parse::<CorrelationId>(),
            Err(ParseCidError)
        );
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn the_cancel_flag_is_scoped() {
        assert!(!is_cancelled());
        let flag = Arc::new(AtomicBool::new(false));
        {
            let _g = enter_cancel(&flag);
            assert!(!is_cancelled());
            flag.store(true, Ordering::Release);
            assert!(is_cancelled());
        }
        assert!(!is_cancelled(), "restored outside the attempt");
    }

    #[test]
    fn nested_contexts_restore() {
        assert!(current_cid().is_none());
        let outer = CallCtx::new();
        let g = outer.enter();
        let oc = current_cid().unwrap();
        let inner = CallCtx::new();
        assert_eq!(inner.parent(), Some(oc));
        {
            let _g = inner.enter();
            assert_eq!(current_cid(), Some(inner.cid()));
        }
        assert_eq!(current_cid(), Some(oc));
        drop(g);
        assert!(current_cid().is_none());
    }
}
