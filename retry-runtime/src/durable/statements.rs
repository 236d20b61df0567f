//! The statements both SQL stores run, each state transition written once.
//!
//! A statement is a template: `$N` placeholders and `{calls}` for the table. [`Dialect`]
//! renders it once per store: SQLite writes `?N` and the table `calls`, PostgreSQL keeps `$N`
//! and names the table `retry_calls` (it shares a database with the application). Casts are
//! written `CAST(x AS T)`, which both read. What the two really do differently stays in the
//! stores and is named there: the claim (SQLite's single writer against PostgreSQL's
//! `FOR UPDATE SKIP LOCKED`), the insert (row by row against one `unnest`), the notification
//! on enqueue (PostgreSQL only) and the claimable time (PostgreSQL keeps it in a generated
//! column).
//!
//! Each statement names the transition of the state table in the [`durable`](super) docs
//! that it makes. The ones about a claimed call check its fencing token and `running` in the
//! same statement, and change nothing (0 rows) when either is stale.

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use super::millis::{earlier, later, saturating_i32, saturating_i64, to_millis};
use super::record::{CallRecord, CallState, ListFilter, PausedFunction, Progress, StatsRow};
use super::store::{BoxFuture, StoreError};
use crate::CorrelationId;

/// The SQL a store speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    Postgres,
}

impl Dialect {
    /// The table of calls.
    pub(crate) const fn table(self) -> &'static str {
        match self {
            Dialect::Sqlite => "calls",
            Dialect::Postgres => "retry_calls",
        }
    }

    /// The table of paused functions.
    pub(crate) const fn paused_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => "paused_functions",
            Dialect::Postgres => "retry_paused",
        }
    }

    /// The table of the workers' heartbeats ([`heartbeats`](super::heartbeats)).
    pub(crate) const fn workers_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => "workers",
            Dialect::Postgres => "retry_workers",
        }
    }

    /// The table of the functions' limits (`max_running`).
    pub(crate) const fn limits_table(self) -> &'static str {
        match self {
            Dialect::Sqlite => "function_limits",
            Dialect::Postgres => "retry_limits",
        }
    }

    /// `template` in this dialect: the tables named (`{calls}`, `{paused}`, `{workers}`,
    /// `{limits}`, and the history's and audit's, see
    /// [`history_tables`](Dialect::history_tables)), and `?N` for SQLite's placeholders.
    pub(crate) fn render(self, template: &str) -> String {
        let text = self.history_tables(
            &template
                .replace("{calls}", self.table())
                .replace("{paused}", self.paused_table())
                .replace("{workers}", self.workers_table())
                .replace("{limits}", self.limits_table()),
        );
        match self {
            Dialect::Sqlite => text.replace('$', "?"),
            Dialect::Postgres => text,
        }
    }
}

/// A statement's template, rendered once per dialect on first use.
pub(crate) struct Sql {
    template: &'static str,
    /// SQLite's own template, where its planner wants another form than PostgreSQL's.
    sqlite_template: Option<&'static str>,
    sqlite: OnceLock<String>,
    postgres: OnceLock<String>,
}

impl Sql {
    pub(crate) const fn new(template: &'static str) -> Self {
        Sql {
            template,
            sqlite_template: None,
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// A statement written once for PostgreSQL (`template`) and once for SQLite (`sqlite`),
    /// for what SQLite runs faster in another form (both are rendered as [`new`](Sql::new)'s).
    pub(crate) const fn per_dialect(template: &'static str, sqlite: &'static str) -> Self {
        Sql {
            template,
            sqlite_template: Some(sqlite),
            sqlite: OnceLock::new(),
            postgres: OnceLock::new(),
        }
    }

    /// The statement in `dialect`.
    pub(crate) fn text(&'static self, dialect: Dialect) -> &'static str {
        let (cell, template) = match dialect {
            Dialect::Sqlite => (&self.sqlite, self.sqlite_template.unwrap_or(self.template)),
            Dialect::Postgres => (&self.postgres, self.template),
        };
        cell.get_or_init(|| dialect.render(template))
    }
}

/// The columns of a call's record, in the order [`record`](super::rows::record) reads them
/// (a macro, so that statement templates can `concat!` it).
macro_rules! record_columns {
    () => {
        "cid, parent, function, args, state, attempts, created_at, started_at, \
         first_attempt_at, last_attempt_at, next_due_at, last_error, dead_reason, worker, \
         lease_until, fence, last_wait_ns, updated_at, trace_context, result"
    };
}
pub(crate) use record_columns;

/// The columns of a call's record, for the statements the stores write themselves.
pub(crate) const COLUMNS: &str = record_columns!();

/// A value bound to a placeholder, typed as the column it is compared with or stored in
/// (PostgreSQL checks the types: `INTEGER` is `Int`, `BIGINT` is `BigInt`).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Param {
    Text(String),
    MaybeText(Option<String>),
    Int(i32),
    BigInt(i64),
    MaybeBigInt(Option<i64>),
}

impl rusqlite::ToSql for Param {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        match self {
            Param::Text(v) => v.to_sql(),
            Param::MaybeText(v) => v.to_sql(),
            Param::Int(v) => v.to_sql(),
            Param::BigInt(v) => v.to_sql(),
            Param::MaybeBigInt(v) => v.to_sql(),
        }
    }
}

#[cfg(feature = "postgres")]
impl Param {
    /// The value as `tokio-postgres` binds it.
    pub(crate) fn as_postgres(&self) -> &(dyn tokio_postgres::types::ToSql + Sync) {
        match self {
            Param::Text(v) => v,
            Param::MaybeText(v) => v,
            Param::Int(v) => v,
            Param::BigInt(v) => v,
            Param::MaybeBigInt(v) => v,
        }
    }
}

/// A statement with its values.
pub(crate) struct Statement {
    pub(crate) sql: &'static Sql,
    pub(crate) params: Vec<Param>,
}

impl Statement {
    /// The statement's text in `dialect`.
    pub(crate) fn text(&self, dialect: Dialect) -> &'static str {
        self.sql.text(dialect)
    }
}

fn cid(cid: CorrelationId) -> Param {
    Param::Text(cid.to_string())
}

fn fence(fence: u64) -> Param {
    Param::BigInt(saturating_i64(fence))
}

fn time(t: SystemTime) -> Param {
    Param::BigInt(to_millis(t))
}

/// `running` -> `running`: the worker extends its lease.
static RENEW: Sql = Sql::new(
    "UPDATE {calls} SET lease_until = $3 WHERE cid = $1 AND fence = $2 AND state = 'running'",
);

pub(crate) fn renew(
    call: CorrelationId,
    claim: u64,
    lease: Duration,
    now: SystemTime,
) -> Statement {
    Statement {
        sql: &RENEW,
        params: vec![cid(call), fence(claim), Param::BigInt(later(now, lease))],
    }
}

/// `running` -> `succeeded`: complete, with the function's `Ok` value as JSON (`$6`, NULL
/// when none is kept). PostgreSQL records many at once with the same text, its values taken
/// from arrays (`COMPLETE_MANY` in postgres.rs).
pub(crate) static COMPLETE: Sql = Sql::new(
    "UPDATE {calls} SET state = 'succeeded', attempts = $3, \
     started_at = COALESCE(started_at, $4), first_attempt_at = COALESCE(first_attempt_at, $4), \
     last_attempt_at = $4, worker = NULL, lease_until = NULL, next_due_at = NULL, \
     updated_at = $5, result = $6 \
     WHERE cid = $1 AND fence = $2 AND state = 'running'",
);

pub(crate) fn complete(
    call: CorrelationId,
    claim: u64,
    attempts: u32,
    attempt_started: SystemTime,
    result: Option<String>,
    now: SystemTime,
) -> Statement {
    Statement {
        sql: &COMPLETE,
        params: vec![
            cid(call),
            fence(claim),
            Param::Int(saturating_i32(attempts)),
            time(attempt_started),
            time(now),
            Param::MaybeText(result),
        ],
    }
}

/// `running` -> `waiting`: reschedule, after a failed attempt the policy retries.
static RESCHEDULE: Sql = Sql::new(
    "UPDATE {calls} SET state = 'waiting', attempts = $3, started_at = $4, last_wait_ns = $5, \
     first_attempt_at = COALESCE(first_attempt_at, $6), last_attempt_at = $6, \
     next_due_at = $7, last_error = $8, worker = NULL, lease_until = NULL, updated_at = $9 \
     WHERE cid = $1 AND fence = $2 AND state = 'running'",
);

/// The values of a call's progress, as `$3` to `$6` of the statements that store it.
fn progress(p: &Progress) -> [Param; 4] {
    [
        Param::Int(saturating_i32(p.attempts)),
        Param::MaybeBigInt(p.started_at.map(to_millis)),
        Param::BigInt(saturating_i64(p.last_wait_ns)),
        time(p.attempt_started),
    ]
}

pub(crate) fn reschedule(
    call: CorrelationId,
    claim: u64,
    p: &Progress,
    due: SystemTime,
    error: String,
    now: SystemTime,
) -> Statement {
    let mut params = vec![cid(call), fence(claim)];
    params.extend(progress(p));
    params.extend([time(due), Param::Text(error), time(now)]);
    Statement {
        sql: &RESCHEDULE,
        params,
    }
}

/// `running` -> `dead`: bury, after an attempt (policy exhausted, or an error it does not
/// retry).
static BURY: Sql = Sql::new(
    "UPDATE {calls} SET state = 'dead', attempts = $3, started_at = $4, last_wait_ns = $5, \
     first_attempt_at = COALESCE(first_attempt_at, $6), last_attempt_at = $6, \
     dead_reason = $7, last_error = COALESCE($8, last_error), worker = NULL, \
     lease_until = NULL, next_due_at = NULL, updated_at = $9 \
     WHERE cid = $1 AND fence = $2 AND state = 'running'",
);

/// `running` -> `dead`: bury, with no attempt run (arguments that no longer decode); the
/// attempt counts stay as they are.
static BURY_UNTRIED: Sql = Sql::new(
    "UPDATE {calls} SET state = 'dead', dead_reason = $3, \
     last_error = COALESCE($4, last_error), worker = NULL, lease_until = NULL, \
     next_due_at = NULL, updated_at = $5 \
     WHERE cid = $1 AND fence = $2 AND state = 'running'",
);

pub(crate) fn bury(
    call: CorrelationId,
    claim: u64,
    tried: Option<&Progress>,
    reason: String,
    error: Option<String>,
    now: SystemTime,
) -> Statement {
    let mut params = vec![cid(call), fence(claim)];
    let sql = match tried {
        Some(p) => {
            params.extend(progress(p));
            &BURY
        }
        None => &BURY_UNTRIED,
    };
    params.extend([Param::Text(reason), Param::MaybeText(error), time(now)]);
    Statement { sql, params }
}

/// `running` -> `waiting`: release, by a worker shutting down, due at once, fence raised.
static RELEASE: Sql = Sql::new(
    "UPDATE {calls} SET state = 'waiting', next_due_at = $2, worker = NULL, \
     lease_until = NULL, fence = fence + 1, updated_at = $2 \
     WHERE state = 'running' AND worker = $1",
);

pub(crate) fn release(worker: &str, now: SystemTime) -> Statement {
    Statement {
        sql: &RELEASE,
        params: vec![Param::Text(worker.to_owned()), time(now)],
    }
}

/// `pending`, `waiting` or `running` -> `cancelled`: cancel, fence raised. A running call's
/// interrupted attempt is counted: it was started, and may have done some of its work.
static CANCEL: Sql = Sql::new(
    "UPDATE {calls} SET state = 'cancelled', fence = fence + 1, worker = NULL, \
     attempts = attempts + CASE WHEN state = 'running' THEN 1 ELSE 0 END, \
     lease_until = NULL, next_due_at = NULL, updated_at = $2 \
     WHERE cid = $1 AND state IN ('pending', 'waiting', 'running')",
);

pub(crate) fn cancel(call: CorrelationId, now: SystemTime) -> Statement {
    Statement {
        sql: &CANCEL,
        params: vec![cid(call), time(now)],
    }
}

/// No transition: the calls running under a worker's name, with their fences, for the
/// worker's check of which of its attempts it still holds ([`Backend::lost`]). The record's
/// columns, the arguments, the last error, the trace context and the result left out (read as empty), so the answer stays
/// small.
///
/// [`Backend::lost`]: super::Backend::lost
static HELD: Sql = Sql::new(
    "SELECT cid, parent, function, CAST('' AS TEXT), state, attempts, created_at, started_at, \
     first_attempt_at, last_attempt_at, next_due_at, CAST(NULL AS TEXT), dead_reason, worker, \
     lease_until, fence, last_wait_ns, updated_at, CAST(NULL AS TEXT), CAST(NULL AS TEXT) \
     FROM {calls} WHERE state = 'running' AND worker = $1",
);

pub(crate) fn held(worker: &str) -> Statement {
    Statement {
        sql: &HELD,
        params: vec![Param::Text(worker.to_owned())],
    }
}

/// The calls of `held` (ID and fence) that are not among the `running` records under their
/// fence: the attempts their worker no longer holds.
pub(crate) fn not_held(
    held: &[(CorrelationId, u64)],
    running: &[CallRecord],
) -> Vec<CorrelationId> {
    held.iter()
        .filter(|(cid, fence)| {
            !running
                .iter()
                .any(|r| r.cid == *cid && r.fence == *fence && r.state == CallState::Running)
        })
        .map(|(cid, _)| *cid)
        .collect()
}

/// No transition: counts per function and state of the pending and waiting calls due at or
/// before `$1`, read by [`stats_row`](super::rows::stats_row): the worker's look for calls
/// nobody claims ([`Backend::overdue`](super::Backend::overdue)).
static OVERDUE: Sql = Sql::new(
    "SELECT function, state, count(*) FROM {calls} \
     WHERE state IN ('pending', 'waiting') AND next_due_at <= $1 GROUP BY function, state",
);

pub(crate) fn overdue(due_before: SystemTime) -> Statement {
    Statement {
        sql: &OVERDUE,
        params: vec![time(due_before)],
    }
}

/// No transition: one call's record.
static GET: Sql = Sql::new(concat!(
    "SELECT ",
    record_columns!(),
    " FROM {calls} WHERE cid = $1"
));

pub(crate) fn get(call: CorrelationId) -> Statement {
    Statement {
        sql: &GET,
        params: vec![cid(call)],
    }
}

/// No transition: the records an operator's filter selects, oldest change first.
static LIST: Sql = Sql::new(concat!(
    "SELECT ",
    record_columns!(),
    " FROM {calls} \
     WHERE (CAST($1 AS TEXT) IS NULL OR state = $1) \
     AND (CAST($2 AS TEXT) IS NULL OR function = $2) \
     AND (CAST($3 AS BIGINT) IS NULL OR updated_at <= $3) \
     ORDER BY updated_at, cid LIMIT $4"
));

pub(crate) fn list(filter: &ListFilter, now: SystemTime) -> Statement {
    Statement {
        sql: &LIST,
        params: vec![
            Param::MaybeText(filter.state.map(|s| s.as_str().to_owned())),
            Param::MaybeText(filter.function.clone()),
            Param::MaybeBigInt(filter.older_than.map(|d| earlier(now, d))),
            Param::BigInt(
                filter
                    .limit
                    .map_or(i64::MAX, |l| i64::try_from(l).unwrap_or(i64::MAX)),
            ),
        ],
    }
}

/// `dead` or `cancelled` -> `pending`: requeue one call, attempts reset, last error kept.
static REQUEUE: Sql = Sql::new(
    "UPDATE {calls} SET state = 'pending', attempts = 0, started_at = NULL, \
     last_wait_ns = 0, dead_reason = NULL, next_due_at = $2, updated_at = $2 \
     WHERE cid = $1 AND state IN ('dead', 'cancelled')",
);

pub(crate) fn requeue(call: CorrelationId, now: SystemTime) -> Statement {
    Statement {
        sql: &REQUEUE,
        params: vec![cid(call), time(now)],
    }
}

/// `dead` -> `pending`: requeue every dead call (of one function, if given), as `REQUEUE`.
static REQUEUE_DEAD: Sql = Sql::new(
    "UPDATE {calls} SET state = 'pending', attempts = 0, started_at = NULL, \
     last_wait_ns = 0, dead_reason = NULL, next_due_at = $2, updated_at = $2 \
     WHERE state = 'dead' AND (CAST($1 AS TEXT) IS NULL OR function = $1)",
);

pub(crate) fn requeue_dead(function: Option<&str>, now: SystemTime) -> Statement {
    Statement {
        sql: &REQUEUE_DEAD,
        params: vec![Param::MaybeText(function.map(str::to_owned)), time(now)],
    }
}

/// `succeeded`, `dead` or `cancelled` -> gone: purge (the store checks the state is finished
/// first, with [`check_purgeable`](super::store::check_purgeable)).
static PURGE: Sql = Sql::new("DELETE FROM {calls} WHERE state = $1 AND updated_at <= $2");

pub(crate) fn purge(state: CallState, older_than: Duration, now: SystemTime) -> Statement {
    Statement {
        sql: &PURGE,
        params: vec![
            Param::Text(state.as_str().to_owned()),
            Param::BigInt(earlier(now, older_than)),
        ],
    }
}

/// No transition: counts per function and state, read by [`stats_row`](super::rows::stats_row).
static STATS: Sql =
    Sql::new("SELECT function, state, count(*) FROM {calls} GROUP BY function, state");

pub(crate) fn stats() -> Statement {
    Statement {
        sql: &STATS,
        params: Vec::new(),
    }
}

/// No call changes: the function is paused (1 row), unless it already was (0 rows, the first
/// pause kept). The claims skip its calls from then on.
static PAUSE: Sql = Sql::new(
    "INSERT INTO {paused} (function, paused_at, paused_by) VALUES ($1, $2, $3) \
     ON CONFLICT (function) DO NOTHING",
);

pub(crate) fn pause(function: &str, by: &str, now: SystemTime) -> Statement {
    Statement {
        sql: &PAUSE,
        params: vec![
            Param::Text(function.to_owned()),
            time(now),
            Param::Text(by.to_owned()),
        ],
    }
}

/// No call changes: the function is resumed (1 row), unless it was not paused (0 rows).
static RESUME: Sql = Sql::new("DELETE FROM {paused} WHERE function = $1");

pub(crate) fn resume(function: &str) -> Statement {
    Statement {
        sql: &RESUME,
        params: vec![Param::Text(function.to_owned())],
    }
}

/// No transition: the paused functions, by name, read by [`paused`](super::rows::paused).
static PAUSED: Sql =
    Sql::new("SELECT function, paused_at, paused_by FROM {paused} ORDER BY function");

pub(crate) fn paused() -> Statement {
    Statement {
        sql: &PAUSED,
        params: Vec::new(),
    }
}

/// What a SQL store supplies to run the shared statements; [`shared_transitions`] writes the
/// [`Backend`](super::Backend) methods that are nothing but a shared statement on top of it.
pub(crate) trait Runner {
    /// Runs a statement that changes calls; returns how many it changed.
    fn execute(&self, statement: Statement) -> BoxFuture<'_, Result<u64, StoreError>>;
    /// Runs a query of calls' records ([`get`], [`list`]).
    fn records(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<CallRecord>, StoreError>>;
    /// Runs the [`stats`] query.
    fn counts(&self, statement: Statement) -> BoxFuture<'_, Result<Vec<StatsRow>, StoreError>>;
    /// Runs the [`paused`] query.
    fn paused_rows(
        &self,
        statement: Statement,
    ) -> BoxFuture<'_, Result<Vec<PausedFunction>, StoreError>>;
}

/// `true` if the statement about one call changed it.
pub(crate) fn changed(
    rows: BoxFuture<'_, Result<u64, StoreError>>,
) -> BoxFuture<'_, Result<bool, StoreError>> {
    Box::pin(async move { Ok(rows.await? > 0) })
}

/// The first record, if any.
pub(crate) fn first(
    records: BoxFuture<'_, Result<Vec<CallRecord>, StoreError>>,
) -> BoxFuture<'_, Result<Option<CallRecord>, StoreError>> {
    Box::pin(async move { Ok(records.await?.into_iter().next()) })
}

/// The [`Backend`](super::Backend) methods that run one shared statement, for a store that is
/// a [`Runner`]: renew, reschedule, bury, release, cancel, get, list, requeue, `requeue_dead`,
/// purge (after [`check_purgeable`](super::store::check_purgeable)), lost, overdue, stats,
/// pause, resume and paused. The store
/// writes the rest itself: enqueue, claim, complete, `next_due`.
macro_rules! shared_transitions {
    () => {
        fn renew(
            &self,
            cid: $crate::CorrelationId,
            fence: u64,
            lease: ::std::time::Duration,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::statements::{changed, renew, Runner};
            changed(self.execute(renew(cid, fence, lease, now)))
        }

        fn reschedule(
            &self,
            cid: $crate::CorrelationId,
            fence: u64,
            progress: $crate::durable::Progress,
            due: ::std::time::SystemTime,
            error: String,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::history::{self, AttemptOutcome};
            use $crate::durable::statements::reschedule;
            let attempt = history::attempt(
                cid,
                fence,
                progress.attempt_started,
                now,
                AttemptOutcome::Failed,
                Some(error.clone()),
            );
            let outcome = reschedule(cid, fence, &progress, due, error, now);
            history::recorded(self, attempt, outcome, cid)
        }

        fn bury(
            &self,
            cid: $crate::CorrelationId,
            fence: u64,
            progress: Option<$crate::durable::Progress>,
            reason: String,
            error: Option<String>,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::history::{self, AttemptOutcome};
            use $crate::durable::statements::{bury, changed, Runner};
            let outcome = bury(cid, fence, progress.as_ref(), reason, error.clone(), now);
            match &progress {
                // An attempt ran: it is the call's last.
                Some(p) => {
                    let attempt = history::attempt(
                        cid,
                        fence,
                        p.attempt_started,
                        now,
                        AttemptOutcome::Dead,
                        error,
                    );
                    history::recorded(self, attempt, outcome, cid)
                }
                None => changed(self.execute(outcome)),
            }
        }

        fn release<'a>(
            &'a self,
            worker: &'a str,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<u64, $crate::durable::StoreError>> {
            use $crate::durable::statements::{release, Runner};
            self.execute(release(worker, now))
        }

        fn cancel(
            &self,
            cid: $crate::CorrelationId,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::history;
            use $crate::durable::statements::cancel;
            // A running call's interrupted attempt is written before the cancel clears it.
            history::recorded(
                self,
                history::cancelled_attempt(cid, now),
                cancel(cid, now),
                cid,
            )
        }

        fn get(
            &self,
            cid: $crate::CorrelationId,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Option<$crate::durable::CallRecord>, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::{first, get, Runner};
            first(self.records(get(cid)))
        }

        fn list<'a>(
            &'a self,
            filter: &'a $crate::durable::ListFilter,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<
            'a,
            Result<Vec<$crate::durable::CallRecord>, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::{list, Runner};
            self.records(list(filter, now))
        }

        fn requeue(
            &self,
            cid: $crate::CorrelationId,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::statements::{changed, requeue, Runner};
            changed(self.execute(requeue(cid, now)))
        }

        fn requeue_dead<'a>(
            &'a self,
            function: Option<&'a str>,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<u64, $crate::durable::StoreError>> {
            use $crate::durable::statements::{requeue_dead, Runner};
            self.execute(requeue_dead(function, now))
        }

        fn purge(
            &self,
            state: $crate::durable::CallState,
            older_than: ::std::time::Duration,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'_, Result<u64, $crate::durable::StoreError>> {
            use $crate::durable::statements::purge;
            if let Err(err) = $crate::durable::store::check_purgeable(state) {
                return Box::pin(async move { Err(err) });
            }
            let attempts = $crate::durable::history::purge_attempts(state, older_than, now);
            $crate::durable::history::purged(self, attempts, purge(state, older_than, now))
        }

        fn lost<'a>(
            &'a self,
            worker: &'a str,
            held: &'a [($crate::CorrelationId, u64)],
        ) -> $crate::durable::BoxFuture<
            'a,
            Result<Vec<$crate::CorrelationId>, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::{held as held_by, not_held, Runner};
            Box::pin(async move {
                if held.is_empty() {
                    return Ok(Vec::new());
                }
                let running = self.records(held_by(worker)).await?;
                Ok(not_held(held, &running))
            })
        }

        fn overdue(
            &self,
            due_before: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<$crate::durable::Stats, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::{overdue, Runner};
            let counts = self.counts(overdue(due_before));
            Box::pin(async move { Ok($crate::durable::rows::stats(counts.await?)) })
        }

        fn stats(
            &self,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<$crate::durable::Stats, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::{stats, Runner};
            let counts = self.counts(stats());
            Box::pin(async move { Ok($crate::durable::rows::stats(counts.await?)) })
        }

        fn pause<'a>(
            &'a self,
            function: &'a str,
            by: &'a str,
            now: ::std::time::SystemTime,
        ) -> $crate::durable::BoxFuture<'a, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::statements::{changed, pause, Runner};
            changed(self.execute(pause(function, by, now)))
        }

        fn resume<'a>(
            &'a self,
            function: &'a str,
        ) -> $crate::durable::BoxFuture<'a, Result<bool, $crate::durable::StoreError>> {
            use $crate::durable::statements::{changed, resume, Runner};
            changed(self.execute(resume(function)))
        }

        fn paused(
            &self,
        ) -> $crate::durable::BoxFuture<
            '_,
            Result<Vec<$crate::durable::PausedFunction>, $crate::durable::StoreError>,
        > {
            use $crate::durable::statements::{paused, Runner};
            self.paused_rows(paused())
        }
    };
}
pub(crate) use shared_transitions;

#[cfg(test)]
mod tests {
    use super::{Dialect, COLUMNS, GET, HELD, LIST};

    #[test]
    fn the_held_query_reads_as_many_columns_as_a_record() {
        let text = HELD.text(Dialect::Sqlite);
        let select = &text["SELECT ".len()..text.find(" FROM").unwrap()];
        assert_eq!(
            select.split(", ").count(),
            COLUMNS.split(", ").count(),
            "{text}"
        );
    }

    #[test]
    fn each_dialect_names_its_table_and_placeholders() {
        let sql = "UPDATE {calls} SET a = $2 WHERE cid = $1";
        assert_eq!(
            Dialect::Sqlite.render(sql),
            "UPDATE calls SET a = ?2 WHERE cid = ?1"
        );
        assert_eq!(
            Dialect::Postgres.render(sql),
            "UPDATE retry_calls SET a = $2 WHERE cid = $1"
        );
    }

    #[test]
    fn the_record_queries_select_the_columns_the_decoder_reads() {
        for sql in [&GET, &LIST] {
            let text = sql.text(Dialect::Sqlite);
            assert!(
                text.starts_with(&format!("SELECT {COLUMNS} FROM calls")),
                "{text}"
            );
        }
    }
}
