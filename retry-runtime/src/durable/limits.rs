//! `max_running`: the most attempts of a function that run at once across every worker of a
//! store. The limits live in the store (`function_limits` in SQLite, `retry_limits` in
//! PostgreSQL), so the claim enforces them whatever the number of workers: a claim takes no
//! more calls of a limited function than its limit minus its calls running now (state
//! `running` under a lease that has not run out).
//!
//! Two sources, one winner: the attribute's `max_running`, written by every worker that runs
//! the function when it starts ([`Backend::declare_limits`]), and an operator's limit
//! ([`Store::set_limit`], `retry-store limit`), which wins until it is cleared, whatever
//! workers start meanwhile; then the attribute's applies again. Workers built from different
//! versions of a program that disagree: the last one started wins.
//!
//! How each store keeps two claimers from both seeing room for the last slot: SQLite has one
//! writer, which serialises claims (across processes too: each claim is a `BEGIN IMMEDIATE`
//! transaction). PostgreSQL claims the calls of limited functions in a transaction that first
//! locks their rows of `retry_limits` (`FOR UPDATE`), then counts and claims in a second
//! statement, whose snapshot sees every claim committed before it got the lock. Unlimited
//! functions keep the single-statement claim that skips locked rows and never waits.
//!
//! [`Backend::declare_limits`]: super::Backend::declare_limits
//! [`Store::set_limit`]: super::Store::set_limit

#[cfg(feature = "postgres")]
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
#[cfg(feature = "postgres")]
use std::sync::{Arc, Mutex, PoisonError};
#[cfg(feature = "postgres")]
use std::time::Instant;
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::millis::{from_millis, saturating_i32, to_millis};
use super::rows::StoredRow;
use super::statements::{Param, Sql, Statement};
use super::store::{BoxFuture, Store, StoreError};
use crate::{Backoff, Policy};

/// A function's limit as the store keeps it; see [`Store::limits`](super::Store::limits).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FunctionLimit {
    /// The function's registered name.
    pub function: String,
    /// Its attribute's `max_running`, as the latest worker started wrote it.
    pub declared: Option<u32>,
    /// An operator's limit, which wins over `declared`.
    pub operator: Option<u32>,
    /// When either last changed.
    pub set_at: SystemTime,
}

impl FunctionLimit {
    /// The limit the claims enforce: the operator's if set, else the attribute's.
    #[must_use]
    pub fn effective(&self) -> Option<u32> {
        self.operator.or(self.declared)
    }
}

/// How long a PostgreSQL backend trusts what it knows of which functions are limited before
/// it reads `retry_limits` again: a limit set from another process is enforced at once (the
/// single-statement claim leaves limited functions out), but claimed here only after up to
/// this long.
#[cfg(feature = "postgres")]
pub(crate) const LIMITS_REFRESH: Duration = Duration::from_secs(1);

/// No call changes: the attribute's limit of a function, written by a worker at start (an
/// operator's limit is left as it is).
static DECLARE: Sql = Sql::new(
    "INSERT INTO {limits} (function, max_running, set_at) VALUES ($1, $2, $3) \
     ON CONFLICT (function) DO UPDATE SET max_running = excluded.max_running, \
     set_at = excluded.set_at",
);

/// No call changes: a function whose attribute has no limit (any more).
static UNDECLARE: Sql = Sql::new(
    "UPDATE {limits} SET max_running = NULL, set_at = $2 \
     WHERE function = $1 AND max_running IS NOT NULL",
);

pub(crate) fn declare(function: &str, max_running: Option<u32>, now: SystemTime) -> Statement {
    match max_running {
        Some(n) => Statement {
            sql: &DECLARE,
            params: vec![
                Param::Text(function.to_owned()),
                Param::Int(saturating_i32(n)),
                Param::BigInt(to_millis(now)),
            ],
        },
        None => Statement {
            sql: &UNDECLARE,
            params: vec![
                Param::Text(function.to_owned()),
                Param::BigInt(to_millis(now)),
            ],
        },
    }
}

/// No call changes: an operator's limit of a function, which wins over its attribute's.
static SET_OPERATOR: Sql = Sql::new(
    "INSERT INTO {limits} (function, operator_max, set_at) VALUES ($1, $2, $3) \
     ON CONFLICT (function) DO UPDATE SET operator_max = excluded.operator_max, \
     set_at = excluded.set_at",
);

/// No call changes: an operator's limit cleared (1 row), unless there was none (0 rows).
static CLEAR_OPERATOR: Sql = Sql::new(
    "UPDATE {limits} SET operator_max = NULL, set_at = $2 \
     WHERE function = $1 AND operator_max IS NOT NULL",
);

pub(crate) fn set_operator(function: &str, max_running: Option<u32>, now: SystemTime) -> Statement {
    match max_running {
        Some(n) => Statement {
            sql: &SET_OPERATOR,
            params: vec![
                Param::Text(function.to_owned()),
                Param::Int(saturating_i32(n)),
                Param::BigInt(to_millis(now)),
            ],
        },
        None => Statement {
            sql: &CLEAR_OPERATOR,
            params: vec![
                Param::Text(function.to_owned()),
                Param::BigInt(to_millis(now)),
            ],
        },
    }
}

/// No transition: the functions with a limit, by name, read by [`limit_row`].
static LIST: Sql = Sql::new(
    "SELECT function, max_running, operator_max, set_at FROM {limits} \
     WHERE max_running IS NOT NULL OR operator_max IS NOT NULL ORDER BY function",
);

pub(crate) fn list() -> Statement {
    Statement {
        sql: &LIST,
        params: Vec::new(),
    }
}

/// A row of [`list`]: function, declared, operator's, set at.
pub(crate) fn limit_row(row: &impl StoredRow) -> Result<FunctionLimit, StoreError> {
    let malformed =
        |idx: usize| StoreError::Backend(format!("a stored limit is malformed: column {idx}"));
    let limit = |idx: usize| -> Result<Option<u32>, StoreError> {
        row.int(idx)?
            .map(|v| u32::try_from(v).map_err(|_| malformed(idx)))
            .transpose()
    };
    Ok(FunctionLimit {
        function: row.text(0)?.ok_or_else(|| malformed(0))?,
        declared: limit(1)?,
        operator: limit(2)?,
        set_at: from_millis(row.int(3)?.ok_or_else(|| malformed(3))?),
    })
}

/// What a SQL store supplies for the limits' methods beyond [`Runner`](super::statements::Runner).
pub(crate) trait LimitRunner: super::statements::Runner {
    /// Runs the [`list`] query.
    fn limit_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<FunctionLimit>, StoreError>>;
    /// Forgets what the store knows of which functions are limited (after a change through it).
    fn limits_changed(&self) {}
}

/// The [`Backend`](super::Backend) methods of the limits, for a store that is a
/// [`LimitRunner`]: `declare_limits`, `set_limit` and `limits`. The claim and `next_due`,
/// which enforce them, are each store's own.
macro_rules! limit_methods {
    () => {
        fn declare_limits<'a>(
            &'a self,
            limits: &'a [(String, Option<u32>)],
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<(), $crate::durable::StoreError>> {
            use $crate::durable::limits::{declare, LimitRunner};
            use $crate::durable::statements::Runner;
            Box::pin(async move {
                for (function, max_running) in limits {
                    self.execute(declare(function, *max_running, now)).await?;
                }
                self.limits_changed();
                Ok(())
            })
        }

        fn set_limit<'a>(
            &'a self,
            function: &'a str,
            max_running: Option<u32>,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::limits::{check_limit, set_operator, LimitRunner};
            use $crate::durable::statements::Runner;
            Box::pin(async move {
                check_limit(max_running)?;
                let changed = self
                    .execute(set_operator(function, max_running, now))
                    .await?
                    > 0;
                self.limits_changed();
                Ok(changed)
            })
        }

        fn limits(
            &self,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::FunctionLimit>, $crate::durable::StoreError>,
        > {
            use $crate::durable::limits::{list, LimitRunner};
            self.limit_rows(list())
        }
    };
}
pub(crate) use limit_methods;

/// The check of [`Backend::set_limit`](super::Backend::set_limit): a limit is at least 1.
pub(crate) fn check_limit(max_running: Option<u32>) -> Result<(), StoreError> {
    if max_running == Some(0) {
        return Err(StoreError::Invalid(
            "a limit of 0 running attempts would stop the function's calls; pause the \
             function instead (`retry-store pause FUNCTION`), or give a limit of 1 or more"
                .into(),
        ));
    }
    Ok(())
}

// == SQLite: the claim runs in the single writer, so counting then claiming is safe ==

/// The limited functions with their room at `?1`: the limit minus the calls running under a
/// lease that has not run out. Paused functions are left out (the claim would skip them).
pub(crate) const SQLITE_ROOMS: &str =
    "SELECT l.function, COALESCE(l.operator_max, l.max_running) - \
       (SELECT count(*) FROM calls c WHERE c.function = l.function AND c.state = 'running' \
        AND c.lease_until > ?1) \
     FROM function_limits l \
     WHERE COALESCE(l.operator_max, l.max_running) IS NOT NULL";

/// The functions at their limit, counting every running call (a call whose lease ran out is
/// claimable at its lease's end, which the worker's timer reads), for `next_due`: their
/// pending and waiting calls are not claimable now.
pub(crate) const SQLITE_FULL: &str = "SELECT l.function FROM function_limits l \
     WHERE COALESCE(l.operator_max, l.max_running) <= \
       (SELECT count(*) FROM calls c WHERE c.function = l.function AND c.state = 'running')";

/// Functions split for a claim: the limited ones with room (and how many calls each may
/// still start), and the unlimited ones.
pub(crate) type Rooms = (Vec<(String, usize)>, Vec<String>);

/// Of `functions`, the limited ones with the calls each may still start (more than 0), and
/// the unlimited ones; in SQLite's writer transaction.
pub(crate) fn sqlite_rooms(
    conn: &rusqlite::Connection,
    functions: &[String],
    now: SystemTime,
) -> Result<Rooms, StoreError> {
    let sql = |e: rusqlite::Error| StoreError::Backend(e.to_string());
    let mut stmt = conn.prepare_cached(SQLITE_ROOMS).map_err(sql)?;
    let mut rows = stmt.query([to_millis(now)]).map_err(sql)?;
    let mut limited: Vec<(String, i64)> = Vec::new();
    while let Some(row) = rows.next().map_err(sql)? {
        limited.push((row.get(0).map_err(sql)?, row.get(1).map_err(sql)?));
    }
    Ok(split(functions, &limited))
}

/// `functions` split into the limited ones with room (and how much) and the unlimited ones.
fn split(functions: &[String], limited: &[(String, i64)]) -> Rooms {
    let mut rooms = Vec::new();
    let mut free = Vec::new();
    for f in functions {
        match limited.iter().find(|(name, _)| name == f) {
            Some((_, room)) if *room > 0 => {
                rooms.push((f.clone(), usize::try_from(*room).unwrap_or(usize::MAX)));
            }
            Some(_) => {}
            None => free.push(f.clone()),
        }
    }
    (rooms, free)
}

// == PostgreSQL: lock the limits' rows, then count and claim in a second statement ==

/// Which functions are limited (an effective limit), for the cache.
#[cfg(feature = "postgres")]
pub(crate) const PG_LIMITED: &str = "SELECT function FROM retry_limits \
     WHERE COALESCE(operator_max, max_running) IS NOT NULL";

/// The claim transaction's first statement: the limits' rows of `$1`, locked in name order
/// (claimers of overlapping functions lock in one order, never in a cycle). A second claimer
/// of these functions waits here until the first commits.
#[cfg(feature = "postgres")]
pub(crate) const PG_LOCK: &str = "SELECT function FROM retry_limits \
     WHERE function = ANY($1) AND COALESCE(operator_max, max_running) IS NOT NULL \
     ORDER BY function FOR UPDATE";

/// The claim of limited functions (`$5`), after [`PG_LOCK`]: per function, its room (the
/// limit minus its calls running under an unexpired lease), then up to that many of its
/// claimable calls, earliest first, at most `$4` in all; the rest as in the unlimited claim.
/// Ordered by `claimable_at` alone, as the index `retry_calls_claimable` holds them, so each
/// function's scan stops after the rows it may take (no sort of all its due calls).
#[cfg(feature = "postgres")]
pub(crate) const PG_CLAIM: &str = "WITH room AS ( \
      SELECT l.function, COALESCE(l.operator_max, l.max_running) - \
        (SELECT count(*) FROM retry_calls r WHERE r.function = l.function \
         AND r.state = 'running' AND r.lease_until > $3) AS room \
      FROM retry_limits l \
      WHERE l.function = ANY($5) AND COALESCE(l.operator_max, l.max_running) IS NOT NULL \
        AND l.function NOT IN (SELECT function FROM retry_paused)), \
    picked AS MATERIALIZED ( \
      SELECT p.cid FROM room CROSS JOIN LATERAL ( \
        SELECT c.cid, c.claimable_at FROM retry_calls c \
        WHERE c.function = room.function AND c.state IN ('pending', 'waiting', 'running') \
          AND c.claimable_at <= $3 \
        ORDER BY c.claimable_at LIMIT LEAST(GREATEST(room.room, 0), $4) \
        FOR UPDATE SKIP LOCKED) p \
      ORDER BY p.claimable_at LIMIT $4) \
    UPDATE retry_calls SET state = 'running', worker = $1, lease_until = $2, fence = fence + 1, \
      next_due_at = NULL, updated_at = $3 \
    WHERE cid IN (SELECT cid FROM picked) \
    RETURNING ";

/// The functions at their limit, counting every running call, for `next_due` (as
/// [`SQLITE_FULL`]).
#[cfg(feature = "postgres")]
pub(crate) const PG_FULL: &str = "SELECT l.function FROM retry_limits l \
     WHERE COALESCE(l.operator_max, l.max_running) <= \
       (SELECT count(*) FROM retry_calls c WHERE c.function = l.function AND c.state = 'running')";

/// What a PostgreSQL backend knows of which functions are limited, read at most once per
/// [`LIMITS_REFRESH`], so that a claim of unlimited functions costs no extra round trip.
#[cfg(feature = "postgres")]
#[derive(Debug, Default)]
pub(crate) struct Known(Mutex<Option<(Instant, Arc<HashSet<String>>)>>);

#[cfg(feature = "postgres")]
impl Known {
    /// The limited functions, if read less than [`LIMITS_REFRESH`] ago.
    pub(crate) fn fresh(&self) -> Option<Arc<HashSet<String>>> {
        let known = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        known
            .as_ref()
            .filter(|(at, _)| at.elapsed() < LIMITS_REFRESH)
            .map(|(_, set)| Arc::clone(set))
    }

    pub(crate) fn store(&self, limited: HashSet<String>) -> Arc<HashSet<String>> {
        let set = Arc::new(limited);
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) =
            Some((Instant::now(), Arc::clone(&set)));
        set
    }

    pub(crate) fn forget(&self) {
        *self.0.lock().unwrap_or_else(PoisonError::into_inner) = None;
    }
}

// == The worker's end ==

/// How a starting worker retries writing its functions' limits: 50 ms doubling to 5 s.
const DECLARE_RETRIES: Policy = Policy::new()
    .max_retries(None)
    .backoff(Backoff::Exponential { factor: 2.0 })
    .delay(Duration::from_millis(50))
    .max_delay(Some(Duration::from_secs(5)));

/// The limits the functions in `names` declare (`max_running` of their attribute, `None`
/// without one).
pub(crate) fn declared(names: &[String]) -> Vec<(String, Option<u32>)> {
    names
        .iter()
        .filter_map(|n| super::registry::lookup(n).map(|r| (n.clone(), r.max_running)))
        .collect()
}

/// Writes the limits of the program's functions before the worker's first claim, retrying until the
/// store takes them: a worker that claimed first could run more attempts than a limit
/// allows. `false` if the worker was stopped meanwhile.
pub(crate) async fn declare_at_start(
    store: &Store,
    worker: &str,
    stopping: &AtomicBool,
    stop: &Notify,
) -> bool {
    let names: Vec<String> = super::registry::registered()
        .into_iter()
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return true;
    }
    let limits = declared(&names);
    let mut failures = crate::engine::Attempts::new();
    loop {
        if stopping.load(Ordering::SeqCst) {
            return false;
        }
        match store
            .backend()
            .declare_limits(&limits, SystemTime::now())
            .await
        {
            Ok(()) => return true,
            Err(StoreError::Invalid(why)) => {
                // A store that cannot keep limits (the default of `Backend::declare_limits`
                // when a function has one): said loudly, and the calls still run.
                tracing::error!(
                    target: "retry_runtime::durable",
                    worker,
                    error = %why,
                    "this store cannot enforce `max_running`; the functions' calls run \
                     without their limits",
                );
                return true;
            }
            Err(e) => {
                failures.start_attempt();
                let backoff = match failures.decide(&DECLARE_RETRIES, true, None, None) {
                    crate::engine::Decision::Retry(pause) => pause,
                    crate::engine::Decision::Stop(_) => DECLARE_RETRIES.cap(Duration::MAX),
                };
                tracing::warn!(
                    target: "retry_runtime::durable",
                    worker,
                    error = %e,
                    retry_in = ?backoff,
                    "could not write the functions' `max_running` limits to the store; no \
                     call is claimed until it can",
                );
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    () = stop.notified() => {}
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split;

    #[test]
    fn functions_split_into_room_full_and_unlimited() {
        let names: Vec<String> = ["a", "b", "c", "d"].map(String::from).to_vec();
        let limited = vec![
            ("a".to_owned(), 2),
            ("b".to_owned(), 0),
            ("c".to_owned(), -1),
        ];
        let (rooms, free) = split(&names, &limited);
        assert_eq!(rooms, vec![("a".to_owned(), 2)]);
        assert_eq!(free, vec!["d".to_owned()]);
    }
}
