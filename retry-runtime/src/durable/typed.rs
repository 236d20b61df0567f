//! The typed call of a durable function: [`DurableCall`], made by the companion the attribute
//! writes beside each durable function (`push_invoice::call(invoice)`), so that its name and
//! its arguments' types are checked by the compiler wherever it is enqueued: in the default
//! store, in a store of the caller's choice, or inside the caller's own transaction
//! (tokio-postgres, `sqlx` with the `sqlx` feature, or rusqlite), now, at a time, or after a
//! delay.
//!
//! Why a companion type of the function's own name: `push_invoice` already names the
//! function (a value); a struct with braces lives in the other namespace (types), so both
//! coexist, `use billing::push_invoice;` brings both, and the call site reads as what it does:
//! `push_invoice::call(invoice).after(hour).enqueue_in(&tx)`. A macro
//! (`enqueue_in!(&tx, push_invoice(invoice))`) would hide the same check behind a second
//! syntax, and a trait on the function item cannot be written (a function item's type has no
//! name).

use core::fmt;
use core::marker::PhantomData;
use std::time::{Duration, SystemTime};

use crate::durable::args::ArgsOut;
use crate::durable::{NewCall, Store, StoreError};
use crate::{current_cid, CorrelationId};

/// A durable function, as the type the attribute writes beside it (its companion): the name
/// it is registered under. Implemented by `#[retry(mode = "durable")]` only.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a durable function",
    label = "not a `#[retry(mode = \"durable\")]` function",
    note = "only `#[retry(mode = \"durable\")]` writes the companion that makes its typed calls"
)]
pub trait DurableFn: 'static {
    /// The name the function is registered and stored under.
    const NAME: &'static str;
}

/// When a call's first attempt is due.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Schedule {
    /// At once: the enqueue's time.
    #[default]
    Now,
    /// At this time (a past time is due at once).
    At(SystemTime),
    /// This long after the enqueue.
    After(Duration),
}

impl Schedule {
    /// The due time of a call enqueued at `now`.
    ///
    /// ```
    /// use retry_runtime::durable::Schedule;
    /// use std::time::{Duration, UNIX_EPOCH};
    ///
    /// let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    /// let hour = Duration::from_secs(3600);
    /// assert_eq!(Schedule::Now.due(now), now);
    /// assert_eq!(Schedule::After(hour).due(now), now + hour);
    /// assert_eq!(Schedule::At(now + hour).due(now), now + hour);
    /// ```
    #[must_use]
    pub fn due(self, now: SystemTime) -> SystemTime {
        match self {
            Schedule::Now => now,
            Schedule::At(t) => t,
            // A delay past what a clock can show is as good as never.
            Schedule::After(d) => now.checked_add(d).unwrap_or_else(|| {
                SystemTime::UNIX_EPOCH + Duration::from_millis(i64::MAX.unsigned_abs())
            }),
        }
    }
}

/// One call of the durable function `F`, checked by the compiler and not yet stored: what
/// `F::call(args)` returns (the companion the attribute writes beside a durable function).
/// It has its ID already, so the caller can keep it in its own row before committing.
///
/// ```
/// use retry_runtime::durable::{self, CallState, DurableFn, Store};
/// use retry_runtime::retry;
/// use std::time::Duration;
///
/// #[retry(mode = "durable")]
/// async fn send_reminder(user: u64, text: String) -> Result<(), std::io::Error> {
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), durable::StoreError> {
/// let store = Store::open("sqlite::memory:").await?;
/// durable::set_default_store(store.clone());
/// // Due in an hour; `send_reminder::call(7, 8)` would not compile (`text` is a `String`).
/// let cid = send_reminder::call(7, "your trial ends tomorrow".into())
///     .after(Duration::from_secs(3600))
///     .enqueue()
///     .await?;
/// let rec = store.get(cid).await?.expect("stored");
/// assert_eq!((rec.function.as_str(), rec.state), (send_reminder::NAME, CallState::Pending));
/// assert!(rec.next_due_at.expect("due") > std::time::SystemTime::now() + Duration::from_secs(3500));
/// # Ok(())
/// # }
/// ```
#[must_use = "a durable call does nothing until it is enqueued"]
pub struct DurableCall<F> {
    cid: CorrelationId,
    parent: Option<CorrelationId>,
    /// The arguments as JSON text, or why they do not serialize (reported by the enqueue).
    args: Result<String, StoreError>,
    when: Schedule,
    function: PhantomData<fn() -> F>,
}

impl<F> fmt::Debug for DurableCall<F>
where
    F: DurableFn,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DurableCall")
            .field("function", &F::NAME)
            .field("cid", &self.cid)
            .field("parent", &self.parent)
            .field("args", &self.args)
            .field("when", &self.when)
            .finish()
    }
}

impl<F: DurableFn> DurableCall<F> {
    /// The call with the arguments `put` writes (the companion's; a fresh ID, the current
    /// call as the parent, due at once).
    #[doc(hidden)]
    pub fn __build(put: impl FnOnce(&mut ArgsOut) -> Result<(), StoreError>) -> Self {
        let mut out = ArgsOut::new();
        Self {
            cid: CorrelationId::new(),
            parent: current_cid(),
            args: put(&mut out).map(|()| out.into_json()),
            when: Schedule::Now,
            function: PhantomData,
        }
    }

    /// The ID the call will be stored under.
    #[must_use]
    pub fn cid(&self) -> CorrelationId {
        self.cid
    }

    /// The registered name of the function.
    #[must_use]
    pub fn function(&self) -> &'static str {
        F::NAME
    }

    /// When the call's first attempt is due.
    #[must_use]
    pub fn schedule(&self) -> Schedule {
        self.when
    }

    /// Makes the first attempt due at `time` (Sidekiq's `perform_at`); a worker claims it
    /// once its clock passes `time`.
    pub fn at(mut self, time: SystemTime) -> Self {
        self.when = Schedule::At(time);
        self
    }

    /// Makes the first attempt due `delay` after the enqueue (Sidekiq's `perform_in`, Oban's
    /// `schedule_in`).
    pub fn after(mut self, delay: Duration) -> Self {
        self.when = Schedule::After(delay);
        self
    }

    /// The call as the store's [`NewCall`], enqueued at `now` (for
    /// [`Backend::enqueue`](crate::durable::Backend::enqueue) and the other untyped forms).
    ///
    /// # Errors
    /// [`StoreError::Invalid`] when an argument did not serialize.
    pub fn into_new_call(self, now: SystemTime) -> Result<NewCall, StoreError> {
        let mut call = NewCall::new(F::NAME, self.args?)
            .with_cid(self.cid)
            .due_at(self.when.due(now));
        call.parent = self.parent;
        Ok(call)
    }

    /// Stores the call in the default store ([`set_default_store`](crate::durable::set_default_store)),
    /// as calling the function does, but with its schedule; returns once it is committed.
    ///
    /// # Errors
    /// No default store, an argument that does not serialize, or the store's error.
    pub async fn enqueue(self) -> Result<CorrelationId, StoreError> {
        let store = crate::durable::default_store()?;
        self.enqueue_on(&store).await
    }

    /// Stores the call in `store`; returns once it is committed, and wakes this process's
    /// workers of `store` (and, through `NOTIFY`, PostgreSQL's others).
    ///
    /// # Errors
    /// An argument that does not serialize, or the store's error.
    pub async fn enqueue_on(self, store: &Store) -> Result<CorrelationId, StoreError> {
        let cid = self.cid;
        let now = SystemTime::now();
        store.enqueue(vec![self.into_new_call(now)?]).await?;
        Ok(cid)
    }

    /// [`enqueue`](Self::enqueue) for sync code: blocks this thread until the call is
    /// committed.
    ///
    /// # Errors
    /// As [`enqueue`](Self::enqueue).
    pub fn enqueue_blocking(self) -> Result<CorrelationId, StoreError> {
        crate::durable::enqueue::block_on(self.enqueue())
    }

    /// Stores the call inside the caller's rusqlite connection or transaction, in a SQLite
    /// file that is also the store (the program's data and its calls in one file): the row
    /// the store writes, committed with the caller's transaction or not at all. See
    /// [`SqliteBackend::enqueue_in`](crate::durable::SqliteBackend::enqueue_in), which it
    /// calls, for how workers learn of it.
    ///
    /// # Errors
    /// As [`SqliteBackend::enqueue_in`](crate::durable::SqliteBackend::enqueue_in), and an
    /// argument that does not serialize.
    pub fn enqueue_in_sqlite(
        self,
        conn: &rusqlite::Connection,
    ) -> Result<CorrelationId, StoreError> {
        let cid = self.cid;
        let now = SystemTime::now();
        let call = self.into_new_call(now)?;
        crate::durable::SqliteBackend::enqueue_in(conn, &[call], now)?;
        Ok(cid)
    }

    /// Stores the call inside the caller's tokio-postgres transaction (the outbox pattern):
    /// stored, and workers woken by `NOTIFY`, if and only if the caller commits. See
    /// [`PostgresBackend::enqueue_in`](crate::durable::PostgresBackend::enqueue_in), which it
    /// calls.
    ///
    /// # Errors
    /// As [`PostgresBackend::enqueue_in`](crate::durable::PostgresBackend::enqueue_in), and an
    /// argument that does not serialize.
    #[cfg(feature = "postgres")]
    pub async fn enqueue_in(
        self,
        tx: &tokio_postgres::Transaction<'_>,
    ) -> Result<CorrelationId, StoreError> {
        let cid = self.cid;
        let now = SystemTime::now();
        let call = self.into_new_call(now)?;
        crate::durable::PostgresBackend::enqueue_in(tx, &[call], now).await?;
        Ok(cid)
    }

    /// Stores the call inside the caller's sqlx PostgreSQL transaction (pass it as
    /// `&mut *tx`): stored, and workers woken by `NOTIFY`, if and only if the caller commits.
    /// Needs the `sqlx` feature. See
    /// [`PostgresBackend::enqueue_in_sqlx`](crate::durable::PostgresBackend::enqueue_in_sqlx),
    /// which it calls.
    ///
    /// # Errors
    /// As [`PostgresBackend::enqueue_in`](crate::durable::PostgresBackend::enqueue_in), and an
    /// argument that does not serialize.
    #[cfg(feature = "sqlx")]
    pub async fn enqueue_in_sqlx(
        self,
        conn: &mut sqlx::PgConnection,
    ) -> Result<CorrelationId, StoreError> {
        let cid = self.cid;
        let now = SystemTime::now();
        let call = self.into_new_call(now)?;
        crate::durable::PostgresBackend::enqueue_in_sqlx(conn, &[call], now).await?;
        Ok(cid)
    }
}
