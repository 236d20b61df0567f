//! Uniqueness: a call that holds a key of its function ([`Unique`]), so that enqueuing an
//! equal call while the first is unfinished returns the first one's ID ([`Enqueued::Existing`])
//! instead of storing a second.
//!
//! The store enforces it, not a look-up before the insert: the partial unique index
//! `(function, unique_key) WHERE unique_key IS NOT NULL` admits one holder per key, and the
//! enqueue is `INSERT ... ON CONFLICT DO NOTHING`, then, if nothing was inserted, a read of
//! the holder. Two enqueuers at once cannot both insert: on PostgreSQL the second one's insert
//! waits for the first one's transaction and then does nothing; SQLite has one writer. A
//! call lets go of its key when it finishes (a trigger of the schema, so every statement that
//! finishes a call does it): at once when it is dead or cancelled, or, when it succeeded and
//! its key has a [`Unique::keep_for`], once that time is over, which the next enqueue of the
//! key checks (`FREE_EXPIRED`) before it inserts.
//!
//! The statements are written once for both dialects, as in `statements.rs`; the SQL
//! function `retry_enqueue` of the PostgreSQL schema does the same steps.

use std::fmt;
use std::time::{Duration, SystemTime};

use super::millis::{saturating_i32, saturating_i64, to_millis};
use super::record::NewCall;
use super::statements::{Param, Sql};
use super::StoreError;
use crate::CorrelationId;

/// What makes two calls of a function the same: their key, and how long the key still holds
/// after the call succeeded.
///
/// ```
/// use retry_runtime::durable::{NewCall, Unique};
/// use std::time::Duration;
///
/// let call = NewCall::new("billing::charge", r#"{"invoice":7}"#)
///     .unique(Unique::new("invoice-7").keep_for(Duration::from_secs(3600)));
/// assert_eq!(call.unique.unwrap().key, "invoice-7");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unique {
    /// The key; equal keys of the same function are the same call.
    pub key: String,
    /// After the call succeeded, how long an equal call still counts as the same (and gets
    /// this call's ID). `None`: the key is free as soon as the call finishes. A dead or
    /// cancelled call frees its key at once either way.
    pub keep_for: Option<Duration>,
}

impl Unique {
    /// A key that holds while the call is unfinished (pending, waiting or running).
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            keep_for: None,
        }
    }

    /// Keeps the key for `d` after the call succeeded.
    #[must_use]
    pub fn keep_for(mut self, d: Duration) -> Self {
        self.keep_for = Some(d);
        self
    }
}

/// What an enqueue of a call with a [`Unique`] key did.
///
/// ```
/// use retry_runtime::durable::{Enqueued, NewCall, Store, Unique};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let store = Store::open("sqlite::memory:").await?;
/// let first = NewCall::new("mail::send", r#"{"to":"a@example.com"}"#).unique(Unique::new("a"));
/// let again = NewCall::new("mail::send", r#"{"to":"a@example.com"}"#).unique(Unique::new("a"));
/// let stored = store.enqueue_unique(first.clone()).await?;
/// assert_eq!(stored, Enqueued::Stored(first.cid));
/// assert_eq!(store.enqueue_unique(again).await?, Enqueued::Existing(first.cid));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Enqueued {
    /// The call was stored under its own ID.
    Stored(CorrelationId),
    /// An equal call holds the key: nothing was stored, this is that call's ID.
    Existing(CorrelationId),
}

impl Enqueued {
    /// The ID of the call that will run: the new one, or the existing one.
    #[must_use]
    pub fn cid(self) -> CorrelationId {
        match self {
            Self::Stored(cid) | Self::Existing(cid) => cid,
        }
    }

    /// Whether a new call was stored.
    #[must_use]
    pub fn is_stored(self) -> bool {
        matches!(self, Self::Stored(_))
    }
}

impl fmt::Display for Enqueued {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Stored(cid) => write!(f, "stored {cid}"),
            Self::Existing(cid) => write!(f, "already stored as {cid}"),
        }
    }
}

/// How many times an enqueue tries again when the key's holder let go of it between the
/// insert that found it taken and the read of who holds it.
const ROUNDS: usize = 5;

/// Frees the key when the call holding it succeeded and its time is over.
static FREE_EXPIRED: Sql = Sql::new(
    "UPDATE {calls} SET unique_key = NULL, unique_until = NULL \
     WHERE function = $1 AND unique_key = $2 AND unique_until <= $3",
);

/// `-> pending` (or `waiting`, with the caller's attempts), holding the key; nothing if the
/// key is held. Another call with the same ID is still an error.
static INSERT: Sql = Sql::new(
    "INSERT INTO {calls} (cid, parent, function, args, state, attempts, created_at, \
     next_due_at, fence, last_wait_ns, updated_at, started_at, first_attempt_at, \
     last_attempt_at, last_error, unique_key, unique_for, trace_context) \
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, $9, $7, $10, $11, $11, $12, $13, $14, $15) \
     ON CONFLICT (function, unique_key) WHERE unique_key IS NOT NULL DO NOTHING \
     RETURNING cid",
);

/// The call holding the key.
static HOLDER: Sql = Sql::new("SELECT cid FROM {calls} WHERE function = $1 AND unique_key = $2");

/// The checks made before writing: the arguments are JSON and the call has a key.
pub(crate) fn check(call: &NewCall) -> Result<&Unique, StoreError> {
    if let Err(e) = serde_json::from_str::<serde::de::IgnoredAny>(&call.args) {
        return Err(StoreError::Invalid(format!(
            "the arguments of call {} are not JSON: {e}",
            call.cid
        )));
    }
    let unique = call.unique.as_ref().ok_or_else(|| {
        StoreError::Invalid(format!(
            "call {} has no unique key: use `enqueue` for calls without one",
            call.cid
        ))
    })?;
    if unique.key.is_empty() {
        return Err(StoreError::Invalid(format!(
            "the unique key of call {} is empty",
            call.cid
        )));
    }
    Ok(unique)
}

/// The check of a batch [`enqueue`](super::Backend::enqueue): it stores no unique keys.
pub(crate) fn check_batch(calls: &[NewCall]) -> Result<(), StoreError> {
    match calls.iter().find(|c| c.unique.is_some()) {
        Some(c) => Err(StoreError::Invalid(format!(
            "call {} has a unique key: enqueue it with `enqueue_unique`, which returns the \
             ID of an equal call already stored",
            c.cid
        ))),
        None => Ok(()),
    }
}

fn free_expired(call: &NewCall, unique: &Unique, now: SystemTime) -> Vec<Param> {
    vec![
        Param::Text(call.function.clone()),
        Param::Text(unique.key.clone()),
        Param::BigInt(to_millis(now)),
    ]
}

fn insert(call: &NewCall, unique: &Unique, now: SystemTime) -> Vec<Param> {
    let tried = call.tried.as_ref();
    vec![
        Param::Text(call.cid.to_string()),
        Param::MaybeText(call.parent.map(|p| p.to_string())),
        Param::Text(call.function.clone()),
        Param::Text(call.args.clone()),
        Param::Text(
            if tried.is_some() {
                "waiting"
            } else {
                "pending"
            }
            .to_owned(),
        ),
        Param::Int(tried.map_or(0, |t| saturating_i32(t.progress.attempts))),
        Param::BigInt(to_millis(now)),
        Param::BigInt(to_millis(call.due.unwrap_or(now))),
        Param::BigInt(tried.map_or(0, |t| saturating_i64(t.progress.last_wait_ns))),
        Param::MaybeBigInt(tried.and_then(|t| t.progress.started_at).map(to_millis)),
        Param::MaybeBigInt(tried.map(|t| to_millis(t.progress.attempt_started))),
        Param::MaybeText(tried.map(|t| t.error.clone())),
        Param::Text(unique.key.clone()),
        Param::MaybeBigInt(
            unique
                .keep_for
                .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX)),
        ),
        Param::MaybeText(call.trace_context.clone()),
    ]
}

fn holder(call: &NewCall, unique: &Unique) -> Vec<Param> {
    vec![
        Param::Text(call.function.clone()),
        Param::Text(unique.key.clone()),
    ]
}

fn parse_cid(text: &str) -> Result<CorrelationId, StoreError> {
    text.parse()
        .map_err(|_| StoreError::Backend(format!("the store holds a malformed call ID {text:?}")))
}

fn kept_changing(call: &NewCall, unique: &Unique) -> StoreError {
    StoreError::Backend(format!(
        "the unique key {:?} of {} kept changing hands; try again",
        unique.key, call.function
    ))
}

/// SQLite: runs in the writer's transaction (one writer, so no enqueuer runs in between).
pub(crate) fn sqlite(
    conn: &rusqlite::Connection,
    call: &NewCall,
    now: SystemTime,
) -> Result<Enqueued, StoreError> {
    use super::statements::Dialect;
    use rusqlite::{params_from_iter, ErrorCode, OptionalExtension};
    let unique = check(call)?;
    let sql = |e: rusqlite::Error| super::sqlite::db_error(&e);
    let d = Dialect::Sqlite;
    for _ in 0..ROUNDS {
        conn.prepare_cached(FREE_EXPIRED.text(d))
            .and_then(|mut s| s.execute(params_from_iter(free_expired(call, unique, now))))
            .map_err(sql)?;
        let inserted = conn.prepare_cached(INSERT.text(d)).and_then(|mut s| {
            s.query_row(params_from_iter(insert(call, unique, now)), |r| {
                r.get::<_, String>(0)
            })
            .optional()
        });
        match inserted {
            Ok(Some(_)) => return Ok(Enqueued::Stored(call.cid)),
            Ok(None) => {}
            Err(e) if e.sqlite_error_code() == Some(ErrorCode::ConstraintViolation) => {
                return Err(StoreError::Duplicate(call.cid));
            }
            Err(e) => return Err(sql(e)),
        }
        let held = conn
            .prepare_cached(HOLDER.text(d))
            .and_then(|mut s| {
                s.query_row(params_from_iter(holder(call, unique)), |r| {
                    r.get::<_, String>(0)
                })
                .optional()
            })
            .map_err(sql)?;
        if let Some(cid) = held {
            return Ok(Enqueued::Existing(parse_cid(&cid)?));
        }
    }
    Err(kept_changing(call, unique))
}

/// PostgreSQL: runs in the caller's transaction; wakes the workers (at commit) if it stored
/// the call. Under `READ COMMITTED` each statement sees what committed before it started, so
/// the read of the holder after a conflict sees the call that won.
#[cfg(feature = "postgres")]
pub(crate) async fn postgres(
    tx: &tokio_postgres::Transaction<'_>,
    call: &NewCall,
    now: SystemTime,
) -> Result<Enqueued, StoreError> {
    use super::postgres::{pg, NOTIFY_CHANNEL};
    use super::statements::Dialect;
    fn bind(params: &[Param]) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        params.iter().map(Param::as_postgres).collect()
    }
    let unique = check(call)?;
    let d = Dialect::Postgres;
    for _ in 0..ROUNDS {
        let params = free_expired(call, unique, now);
        tx.execute(FREE_EXPIRED.text(d), &bind(&params))
            .await
            .map_err(pg)?;
        let params = insert(call, unique, now);
        let inserted = tx.query_opt(INSERT.text(d), &bind(&params)).await;
        match inserted {
            Ok(Some(_)) => {
                tx.execute(
                    "SELECT pg_notify($1, $2)",
                    &[&NOTIFY_CHANNEL, &call.function],
                )
                .await
                .map_err(pg)?;
                return Ok(Enqueued::Stored(call.cid));
            }
            Ok(None) => {}
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION) => {
                return Err(StoreError::Duplicate(call.cid));
            }
            Err(e) => return Err(pg(e)),
        }
        let params = holder(call, unique);
        let held = tx
            .query_opt(HOLDER.text(d), &bind(&params))
            .await
            .map_err(pg)?;
        if let Some(row) = held {
            let cid: String = row.try_get(0).map_err(pg)?;
            return Ok(Enqueued::Existing(parse_cid(&cid)?));
        }
    }
    Err(kept_changing(call, unique))
}

/// The key of a JSON value (the arguments, or the ones named): the value written with its
/// objects' keys sorted, so equal values give equal keys whatever the order of a map's
/// entries; longer than 128 bytes, its SHA-256 (`sha256:<hex>`), so keys stay small in the
/// index.
pub(crate) fn key_of_json(value: &serde_json::Value) -> String {
    use sha2::Digest;
    let mut text = String::new();
    canonical(value, &mut text);
    if text.len() <= 128 {
        return text;
    }
    let digest = sha2::Sha256::digest(text.as_bytes());
    let mut key = String::with_capacity(7 + 64);
    key.push_str("sha256:");
    for b in digest {
        use std::fmt::Write as _;
        let _ = write!(key, "{b:02x}");
    }
    key
}

fn canonical(value: &serde_json::Value, out: &mut String) {
    match value {
        serde_json::Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        serde_json::Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// What the expansion of `unique = ...` and `unique_key = ...` calls.
pub mod expand {
    use core::fmt;
    use std::time::Duration;

    use super::{key_of_json, Unique};
    use crate::durable::args::ArgsOut;
    use crate::durable::enqueue::{block_on, default_store, new_call};
    use crate::durable::StoreError;
    use crate::CorrelationId;

    /// The key of `unique = "args"` or `unique = (a, b)`: the arguments named (all of them
    /// for `"args"`), as a JSON object with sorted keys, hashed if long.
    #[must_use]
    pub fn key_of_args(args: &ArgsOut) -> String {
        key_of_json(&serde_json::Value::Object(args.as_map().clone()))
    }

    /// The key of `unique_key = expr`: the value as `Display` shows it.
    pub fn key_of_value<K: UniqueKeyValue + ?Sized>(key: &K) -> String {
        key.unique_key()
    }

    /// A value `unique_key = ...` can take: anything shown with `Display`.
    #[diagnostic::on_unimplemented(
        message = "`unique_key` of a durable function must be a value shown with `Display` (a string, a number, an ID); `{Self}` is not",
        label = "not `Display`",
        note = "key the call by a string made from it (`unique_key = id.to_string()`), or by arguments (`unique = (a, b)`)"
    )]
    pub trait UniqueKeyValue {
        /// The key as text.
        fn unique_key(&self) -> String;
    }

    impl<T: fmt::Display + ?Sized> UniqueKeyValue for T {
        fn unique_key(&self) -> String {
            self.to_string()
        }
    }

    /// Stores a call of the durable function `name` with `args` in the default store, unless
    /// an equal call (same `key`) is unfinished, or succeeded less than `keep_for` ago; returns
    /// the ID of the call that will run.
    ///
    /// # Errors
    /// No default store, or the store's error.
    pub async fn enqueue_unique(
        name: &'static str,
        args: ArgsOut,
        key: String,
        keep_for: Option<Duration>,
    ) -> Result<CorrelationId, StoreError> {
        let store = default_store()?;
        let unique = Unique { key, keep_for };
        let call = new_call(name, args).unique(unique);
        Ok(store.enqueue_unique(call).await?.cid())
    }

    /// [`enqueue_unique`] for a sync function: blocks this thread until it is committed.
    ///
    /// # Errors
    /// As [`enqueue_unique`].
    pub fn enqueue_unique_blocking(
        name: &'static str,
        args: ArgsOut,
        key: String,
        keep_for: Option<Duration>,
    ) -> Result<CorrelationId, StoreError> {
        block_on(enqueue_unique(name, args, key, keep_for))
    }
}

#[cfg(test)]
mod tests {
    use super::key_of_json;

    #[test]
    fn equal_values_give_equal_keys_whatever_the_order_of_their_entries() {
        let a: serde_json::Value =
            serde_json::from_str(r#"{"b":1,"a":{"y":2,"x":[1,"z"]}}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"x":[1,"z"],"y":2},"b":1}"#).unwrap();
        assert_eq!(key_of_json(&a), key_of_json(&b));
        assert_eq!(key_of_json(&a), r#"{"a":{"x":[1,"z"],"y":2},"b":1}"#);
    }

    #[test]
    fn long_keys_are_hashed() {
        let long = serde_json::Value::String("x".repeat(500));
        let key = key_of_json(&long);
        assert!(key.starts_with("sha256:"), "{key}");
        assert_eq!(key.len(), 7 + 64);
        assert_ne!(
            key,
            key_of_json(&serde_json::Value::String("y".repeat(500)))
        );
    }
}
