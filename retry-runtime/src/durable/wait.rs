//! Waiting for a durable call's outcome by its ID, in the process that enqueued it or any
//! other: [`Store::wait`] (the outcome, its result as JSON text) and [`Store::wait_for`] (the
//! result decoded as the function's `Ok` type).
//!
//! A waiter is woken by the store, not by a polling loop:
//!
//! - every success, burial and cancel written through a [`Store`] (or a clone of it, as the
//!   workers of the process hold) wakes this process's waiters at once;
//! - PostgreSQL: the write that finishes a call, in any process, sends `NOTIFY
//!   retry_finished, '<cid>'` (a trigger of the schema), on which the store's one `LISTEN`
//!   connection for waiters (opened by the first) wakes them. A waiter also re-reads its call
//!   every 10 seconds, in case the connection was lost and notifications with it;
//! - SQLite has no notifications between processes: a call finished by another process (or
//!   another `Store::open` of the same file) is seen by a slow poll, every 500 ms.
//!
//! A waiter subscribes before it reads the call, so a call that finishes in between is never
//! missed. Bound the wait with `tokio::time::timeout` if the call may run for long.

use core::fmt;
use std::time::{Duration, SystemTime};

use serde::de::DeserializeOwned;
use tokio::sync::broadcast::{self, error::RecvError};

use super::record::{CallRecord, CallState};
use super::store::{Store, StoreError};
use crate::CorrelationId;

/// Finished calls a local waiter may fall behind by before it re-reads its call.
pub(crate) const LOCAL_BUFFER: usize = 1024;

/// How often a waiter re-reads its call when the store sends no notifications between
/// processes (SQLite).
const SLOW_POLL: Duration = Duration::from_millis(500);

/// How often a waiter re-reads its call when the store sends notifications (PostgreSQL), in
/// case some were lost with a connection.
const SAFETY_POLL: Duration = Duration::from_secs(10);

/// How many times a waiter's failed read of its call is tried again.
const REREAD_RETRIES: u32 = 3;

/// How a durable call ended, as [`Store::wait`] returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Finished {
    /// It succeeded.
    Succeeded {
        /// The function's `Ok` value as JSON text: `None` for `()`, for a type that is not
        /// `Serialize`, and for a call that succeeded before results were kept.
        result: Option<String>,
        /// The attempts it took.
        attempts: u32,
    },
    /// It was given up: a dead letter.
    Dead {
        /// Why (`retries exhausted`, `arguments no longer decode`, ...).
        reason: String,
        /// The last attempt's error, as the function shows it.
        error: Option<String>,
        /// The attempts made.
        attempts: u32,
    },
    /// It was cancelled.
    Cancelled {
        /// The last failed attempt's error, if any.
        error: Option<String>,
        /// The attempts made (an interrupted one included).
        attempts: u32,
    },
}

impl Finished {
    /// The outcome of a finished call's record; `None` while it is not finished.
    #[must_use]
    pub fn of(record: &CallRecord) -> Option<Finished> {
        match record.state {
            CallState::Succeeded => Some(Finished::Succeeded {
                result: record.result.clone(),
                attempts: record.attempts,
            }),
            CallState::Dead => Some(Finished::Dead {
                reason: record.dead_reason.clone().unwrap_or_default(),
                error: record.last_error.clone(),
                attempts: record.attempts,
            }),
            CallState::Cancelled => Some(Finished::Cancelled {
                error: record.last_error.clone(),
                attempts: record.attempts,
            }),
            CallState::Pending | CallState::Running | CallState::Waiting => None,
        }
    }

    /// The result decoded as a `T` (a stored `NULL` decodes as JSON `null`: `()` and
    /// `Option`s decode from it), or why there is none.
    ///
    /// ```
    /// use retry_runtime::durable::{Finished, WaitError};
    /// use retry_runtime::durable::CallState;
    ///
    /// # fn main() -> Result<(), WaitError> {
    /// let done = Finished::Succeeded { result: Some("[1,2]".into()), attempts: 1 };
    /// assert_eq!(done.into_value::<Vec<u8>>()?, [1, 2]);
    /// let dead = Finished::Dead { reason: "max retries exhausted".into(), error: None, attempts: 3 };
    /// assert!(matches!(dead.into_value::<u8>(), Err(WaitError::Dead { .. })));
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WaitError::Dead`], [`WaitError::Cancelled`], or [`WaitError::Value`] when the
    /// stored result does not decode as a `T`.
    pub fn into_value<T: DeserializeOwned>(self) -> Result<T, WaitError> {
        match self {
            Finished::Succeeded { result, .. } => {
                let json = result.as_deref().unwrap_or("null");
                serde_json::from_str(json).map_err(|e| {
                    WaitError::Value(if result.is_none() {
                        format!(
                            "the call stored no result (its `Ok` type is not `Serialize`, or it \
                             succeeded before results were kept), and `null` is not a {}: {e}",
                            core::any::type_name::<T>()
                        )
                    } else {
                        format!(
                            "the stored result does not decode as a {}: {e}",
                            core::any::type_name::<T>()
                        )
                    })
                })
            }
            Finished::Dead { reason, error, .. } => Err(WaitError::Dead { reason, error }),
            Finished::Cancelled { .. } => Err(WaitError::Cancelled),
        }
    }
}

/// Why [`Store::wait_for`] has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum WaitError {
    /// The store failed, or knows no such call (never stored, or purged).
    Store(StoreError),
    /// The call was given up.
    Dead {
        /// Why.
        reason: String,
        /// The last attempt's error, as the function shows it.
        error: Option<String>,
    },
    /// The call was cancelled.
    Cancelled,
    /// It succeeded, but its stored result is not a value of the type asked for (it does not
    /// decode, or none was stored).
    Value(String),
}

impl fmt::Display for WaitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            WaitError::Store(e) => e.fmt(f),
            WaitError::Dead {
                reason,
                error: Some(error),
            } => write!(f, "the call was given up ({reason}): {error}"),
            WaitError::Dead {
                reason,
                error: None,
            } => write!(f, "the call was given up ({reason})"),
            WaitError::Cancelled => f.write_str("the call was cancelled"),
            WaitError::Value(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for WaitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            WaitError::Store(e) => Some(e),
            _ => None,
        }
    }
}

impl From<StoreError> for WaitError {
    fn from(e: StoreError) -> Self {
        WaitError::Store(e)
    }
}

impl Store {
    /// Records success with the function's `Ok` value as JSON text, in the success's own
    /// write (see [`Backend::complete_with_result`](super::Backend::complete_with_result)),
    /// and wakes this process's waiters.
    ///
    /// # Errors
    /// A database error.
    pub async fn complete_with_result(
        &self,
        cid: CorrelationId,
        fence: u64,
        attempts: u32,
        attempt_started: SystemTime,
        result: Option<String>,
    ) -> Result<bool, StoreError> {
        let completed = self
            .backend()
            .complete_with_result(
                cid,
                fence,
                attempts,
                attempt_started,
                result,
                SystemTime::now(),
            )
            .await?;
        if completed {
            self.announce_finished(cid);
        }
        Ok(completed)
    }

    /// Waits until the call `cid` has finished (succeeded, been given up or cancelled),
    /// wherever it runs, and returns how; at once if it already has. Woken by the store, not
    /// by a polling loop (see [Results and waiting](crate::durable#results-and-waiting));
    /// needs a tokio runtime.
    ///
    /// ```
    /// use retry_runtime::durable::{self, Finished, Store, Worker};
    /// use retry_runtime::retry;
    /// use std::time::Duration;
    ///
    /// #[retry(mode = "durable", max = 3)]
    /// async fn total(prices: Vec<u64>) -> Result<u64, std::io::Error> {
    ///     Ok(prices.iter().sum())
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// durable::set_default_store(store.clone());
    /// let worker = Worker::builder(store.clone()).start();
    ///
    /// let cid = total(vec![120, 80]).await?;
    /// let done = store.wait(cid).await?;
    /// assert_eq!(done, Finished::Succeeded { result: Some("200".into()), attempts: 1 });
    /// // Or decoded: the function's `Ok` type.
    /// let sum: u64 = store.wait_for(cid).await?;
    /// assert_eq!(sum, 200);
    /// worker.shutdown(Duration::from_secs(5)).await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// A database error, or [`StoreError::Invalid`] when the store has no such call (never
    /// stored, or purged).
    pub async fn wait(&self, cid: CorrelationId) -> Result<Finished, StoreError> {
        // Subscribed first, read second: a call that finishes in between is not missed.
        let mut here = self.finished_here();
        let mut there = self.backend().finishes().await?;
        let poll = if there.is_some() {
            SAFETY_POLL
        } else {
            SLOW_POLL
        };
        let key = cid.to_string();
        let mut first = true;
        loop {
            let record = if first {
                first = false;
                self.get(cid).await?
            } else {
                self.reread(cid).await?
            };
            let record = record.ok_or_else(|| {
                StoreError::Invalid(format!("no call {cid} in the store to wait for"))
            })?;
            if let Some(finished) = Finished::of(&record) {
                return Ok(finished);
            }
            tokio::select! {
                () = mentioned(Some(&mut here), &key) => {}
                () = mentioned(there.as_mut(), &key) => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// A waiter's later read of its call: a database error (a connection the server dropped,
    /// say, which also made the waiter read again) is tried again three times, 100 ms, 200 ms
    /// then 400 ms later, before it ends the wait.
    async fn reread(&self, cid: CorrelationId) -> Result<Option<CallRecord>, StoreError> {
        let mut pause = Duration::from_millis(100);
        for _ in 0..REREAD_RETRIES {
            match self.get(cid).await {
                Err(StoreError::Backend(e)) => {
                    tracing::debug!(target: "retry_runtime::durable", cid = %cid, error = %e, "a waiter's read failed; trying again");
                    tokio::time::sleep(pause).await;
                    pause *= 2;
                }
                other => return other,
            }
        }
        self.get(cid).await
    }

    /// [`wait`](Store::wait)s for the call `cid`, then decodes its result as a `T` (the
    /// durable function's `Ok` type): the value on success, else why there is none.
    ///
    /// ```
    /// use retry_runtime::durable::{self, Store, WaitError, Worker};
    /// use retry_runtime::retry;
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    /// struct Receipt { id: u64, cents: u64 }
    ///
    /// #[retry(mode = "durable", max = 1, delay = "1ms")]
    /// async fn charge(id: u64, cents: u64) -> Result<Receipt, String> {
    ///     if cents == 0 { return Err("nothing to charge".into()); }
    ///     Ok(Receipt { id, cents })
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let store = Store::open("sqlite::memory:").await?;
    /// durable::set_default_store(store.clone());
    /// let worker = Worker::builder(store.clone()).start();
    ///
    /// let paid = charge(7, 1200).await?;
    /// assert_eq!(store.wait_for::<Receipt>(paid).await?, Receipt { id: 7, cents: 1200 });
    ///
    /// let refused = charge(8, 0).await?;
    /// match store.wait_for::<Receipt>(refused).await {
    ///     Err(WaitError::Dead { error, .. }) => assert_eq!(error.as_deref(), Some("nothing to charge")),
    ///     other => panic!("{other:?}"),
    /// }
    /// worker.shutdown(Duration::from_secs(5)).await;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`WaitError::Store`] (as [`wait`](Store::wait)), [`WaitError::Dead`],
    /// [`WaitError::Cancelled`], or [`WaitError::Value`] when the result does not decode as
    /// a `T` (or none was stored, for an `Ok` type that is not `Serialize`).
    pub async fn wait_for<T: DeserializeOwned>(&self, cid: CorrelationId) -> Result<T, WaitError> {
        self.wait(cid).await?.into_value()
    }
}

/// Returns when `feed` names the call `key`, or may have (a lag, a reconnection); never
/// without a feed or once it is closed.
async fn mentioned(feed: Option<&mut broadcast::Receiver<String>>, key: &str) {
    let Some(feed) = feed else {
        return core::future::pending().await;
    };
    loop {
        match feed.recv().await {
            Ok(cid) if cid == key || cid.is_empty() => return,
            Ok(_) => {}
            Err(RecvError::Lagged(_)) => return,
            Err(RecvError::Closed) => return core::future::pending().await,
        }
    }
}
