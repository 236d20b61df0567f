//! Enqueuing inside the caller's `sqlx` PostgreSQL transaction (feature `sqlx`): the store's
//! own statements (`postgres::INSERT`, `postgres::NOTIFY`), bound through sqlx instead of
//! tokio-postgres, so a program built on sqlx writes its rows and its calls in one transaction.

use std::collections::HashSet;
use std::time::SystemTime;

use sqlx::{PgConnection, Row};

use super::postgres::{distinct_functions, duplicate_of, Columns, INSERT, NOTIFY};
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

/// Inserts checked calls and notifies once per function; the caller rolls back on an error.
async fn insert(
    conn: &mut PgConnection,
    calls: &[NewCall],
    now: SystemTime,
) -> Result<(), StoreError> {
    let c = Columns::new(calls, now);
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
        .bind(c.trace_contexts)
        .fetch_all(&mut *conn)
        .await
        .map_err(db)?;
    if rows.len() < calls.len() {
        let stored: HashSet<String> = rows
            .iter()
            .map(|r| r.try_get::<String, _>(0))
            .collect::<Result<_, _>>()
            .map_err(db)?;
        return Err(duplicate_of(calls, &stored));
    }
    sqlx::query(NOTIFY)
        .bind(NOTIFY_CHANNEL)
        .bind(distinct_functions(calls))
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
            super::super::postgres::BOUND,
            "INSERT's parameters changed: bind them in `sqlx.rs` too"
        );
    }
}
