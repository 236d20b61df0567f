//! Enqueuing inside the caller's `sqlx` PostgreSQL transaction (feature `sqlx`): the store's
//! own statements (`postgres::INSERT`, `postgres::NOTIFY`), bound through sqlx instead of
//! tokio-postgres, so a program built on sqlx writes its rows and its calls in one transaction.

use std::collections::HashSet;
use std::time::SystemTime;

use sqlx::{PgConnection, Row};

use super::millis::to_millis;
use super::postgres::{INSERT, NOTIFY};
use super::record::NewCall;
use super::store::{check_new_calls, StoreError};
use super::{PostgresBackend, NOTIFY_CHANNEL};

impl PostgresBackend {
    /// Enqueues `calls` on the caller's sqlx connection, inside its transaction (the outbox
    /// pattern): stored, and workers woken by `NOTIFY`, if and only if the caller commits.
    /// All or none: on an error the calls' changes are rolled back to a savepoint and the
    /// transaction stays usable. Pass a transaction as `&mut *tx`. Needs the `sqlx` feature.
    ///
    /// ```no_run
    /// use retry_runtime::durable::{NewCall, PostgresBackend};
    /// # async fn place(pool: &sqlx::PgPool) -> Result<(), Box<dyn std::error::Error>> {
    /// let mut tx = pool.begin().await?;
    /// sqlx::query("INSERT INTO orders (id) VALUES (42)").execute(&mut *tx).await?;
    /// let mail = NewCall::new("mail::confirm", r#"{"order":42}"#);
    /// PostgresBackend::enqueue_in_sqlx(&mut tx, &[mail], std::time::SystemTime::now()).await?;
    /// tx.commit().await?; // the order and its mail, or neither
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`PostgresBackend::enqueue_in`].
    pub async fn enqueue_in_sqlx(
        conn: &mut PgConnection,
        calls: &[NewCall],
        now: SystemTime,
    ) -> Result<(), StoreError> {
        check_new_calls(calls)?;
        if calls.is_empty() {
            return Ok(());
        }
        sqlx::raw_sql("SAVEPOINT retry_enqueue")
            .execute(&mut *conn)
            .await
            .map_err(db)?;
        let result = insert(conn, calls, now).await;
        let end = if result.is_ok() {
            "RELEASE SAVEPOINT retry_enqueue"
        } else {
            "ROLLBACK TO SAVEPOINT retry_enqueue; RELEASE SAVEPOINT retry_enqueue"
        };
        sqlx::raw_sql(end).execute(&mut *conn).await.map_err(db)?;
        result
    }
}

/// The parameters of `INSERT`, in its order (`$1` to `$11`), as tokio-postgres's `insert`
/// binds them.
struct Columns {
    cids: Vec<String>,
    parents: Vec<Option<String>>,
    functions: Vec<String>,
    args: Vec<String>,
    dues: Vec<i64>,
    now: i64,
    attempts: Vec<i32>,
    waits: Vec<i64>,
    started: Vec<Option<i64>>,
    tried_at: Vec<Option<i64>>,
    errors: Vec<Option<String>>,
}

/// How many parameters [`Columns`] binds; checked against `INSERT` by a test.
#[cfg(test)]
const BOUND: usize = 11;

impl Columns {
    fn new(calls: &[NewCall], now: SystemTime) -> Self {
        let tried = |f: &dyn Fn(&super::Tried) -> Option<i64>| -> Vec<Option<i64>> {
            calls.iter().map(|c| c.tried.as_ref().and_then(f)).collect()
        };
        Self {
            cids: calls.iter().map(|c| c.cid.to_string()).collect(),
            parents: calls
                .iter()
                .map(|c| c.parent.map(|p| p.to_string()))
                .collect(),
            functions: calls.iter().map(|c| c.function.clone()).collect(),
            args: calls.iter().map(|c| c.args.clone()).collect(),
            dues: calls
                .iter()
                .map(|c| to_millis(c.due.unwrap_or(now)))
                .collect(),
            now: to_millis(now),
            attempts: calls
                .iter()
                .map(|c| {
                    c.tried.as_ref().map_or(0, |t| {
                        i32::try_from(t.progress.attempts).unwrap_or(i32::MAX)
                    })
                })
                .collect(),
            waits: tried(&|t| i64::try_from(t.progress.last_wait_ns).ok())
                .into_iter()
                .map(|w| w.unwrap_or(0))
                .collect(),
            started: tried(&|t| t.progress.started_at.map(to_millis)),
            tried_at: tried(&|t| Some(to_millis(t.progress.attempt_started))),
            errors: calls
                .iter()
                .map(|c| c.tried.as_ref().map(|t| t.error.clone()))
                .collect(),
        }
    }
}

/// Inserts checked calls and notifies once per function; the caller rolls back on an error.
async fn insert(
    conn: &mut PgConnection,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), StoreError> {
    let c = Columns::new(calls, now);
    let functions = c.functions.clone();
    let rows = sqlx::query(INSERT)
        .bind(c.cids)
        .bind(c.parents)
        .bind(c.functions)
        .bind(c.args)
        .bind(c.dues)
        .bind(c.now)
        .bind(c.attempts)
        .bind(c.waits)
        .bind(c.started)
        .bind(c.tried_at)
        .bind(c.errors)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    if rows.len() < calls.len() {
        let stored: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(db)?;
        let taken = calls
            .iter()
            .find(|c| !stored.contains(&c.cid.to_string()))
            .map_or(calls[0].cid, |c| c.cid);
        return Err(StoreError::Duplicate(taken));
    }
    let mut seen = HashSet::new();
    let distinct: Vec<String> = functions
        .into_iter()
        .filter(|f| seen.insert(f.clone()))
        .collect();
    sqlx::query(NOTIFY)
        .bind(NOTIFY_CHANNEL)
        .bind(distinct)
        .execute(&mut *conn)
        .await
        .map_err(db)?;
    Ok(())
}

#[allow(clippy::needless_pass_by_value)] // made for `map_err(db)`
fn db(e: sqlx::Error) -> StoreError {
    StoreError::Backend(format!("PostgreSQL (sqlx): {e}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_sqlx_binding_binds_every_parameter_of_the_insert() {
        let highest = (1..=40)
            .rev()
            .find(|n| super::INSERT.contains(&format!("${n}")))
            .unwrap_or(0);
        assert_eq!(
            highest,
            super::BOUND,
            "INSERT's parameters changed: bind them in `sqlx.rs` too"
        );
    }
}
