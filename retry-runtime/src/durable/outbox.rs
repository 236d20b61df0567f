//! Enqueuing inside the caller's own SQLite connection or transaction: the row the SQLite
//! store writes, written by the store's own statement (`sqlite::insert_calls`), in a file
//! that holds both the program's data and its calls. (PostgreSQL's form,
//! `PostgresBackend::enqueue_in`, is beside the backend.)

use std::time::SystemTime;

use rusqlite::Connection;

use super::record::NewCall;
use super::sqlite::{insert_calls, sql, APPLICATION_ID, SCHEMA_VERSION};
use super::store::{check_new_calls, StoreError};
use super::{SqliteBackend, Store};

impl Store {
    /// Wakes this process's workers of this store (and of its clones) at once, as an enqueue
    /// through the store does: for calls committed by another connection to the same SQLite
    /// file ([`SqliteBackend::enqueue_in`]), which workers would otherwise find at their next
    /// poll. PostgreSQL's workers need no such call: `NOTIFY` wakes them.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), retry_runtime::durable::StoreError> {
    /// let store = retry_runtime::durable::Store::open("sqlite::memory:").await?;
    /// store.wake_workers();
    /// # Ok(())
    /// # }
    /// ```
    pub fn wake_workers(&self) {
        self.wake();
    }
}

impl SqliteBackend {
    /// Enqueues `calls` on the caller's connection `conn` (or a `rusqlite::Transaction`,
    /// which derefs to one) to the SQLite file of a store: stored if and only if the caller's
    /// transaction commits, with the rows it writes beside them. All or none: on an error the
    /// calls' changes are rolled back to a savepoint and the transaction stays usable. Outside
    /// a transaction, the calls are committed at once.
    ///
    /// The file must be a store already ([`Store::open`](crate::durable::Store::open) creates
    /// and migrates it); give the caller's connection a busy timeout
    /// (`conn.busy_timeout(..)`), since the store's writer takes the file's write lock too.
    ///
    /// **How workers learn of the call.** A worker sleeps until the earliest due time it
    /// knows, and at most its poll interval ([`WorkerBuilder::poll_interval`], 1 s by
    /// default): it sees a call committed by another connection at its next poll, whatever the
    /// process. A program whose workers share its process can wake them at once after the
    /// commit with [`Store::wake_workers`](crate::durable::Store::wake_workers).
    ///
    /// [`WorkerBuilder::poll_interval`]: crate::durable::WorkerBuilder::poll_interval
    ///
    /// ```
    /// use retry_runtime::durable::{NewCall, SqliteBackend, Store};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// # let path = dir.path().join("app.db");
    /// let store = Store::open(&format!("sqlite:{}", path.display())).await?; // creates the tables
    /// let mut conn = rusqlite::Connection::open(&path)?;
    /// conn.busy_timeout(std::time::Duration::from_secs(5))?;
    /// conn.execute_batch("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY)")?;
    ///
    /// let tx = conn.transaction()?;
    /// tx.execute("INSERT INTO orders (id) VALUES (42)", [])?;
    /// let mail = NewCall::new("mail::confirm", r#"{"order":42}"#);
    /// SqliteBackend::enqueue_in(&tx, &[mail.clone()], std::time::SystemTime::now())?;
    /// tx.commit()?; // the order and its mail, or neither
    /// assert!(store.get(mail.cid).await?.is_some());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`StoreError::NotAStore`] (the file is not a store at this build's schema version:
    /// open it with `Store::open` first), [`StoreError::NewerSchema`],
    /// [`StoreError::Duplicate`], [`StoreError::Invalid`] (arguments that are not JSON),
    /// [`StoreError::Backend`].
    pub fn enqueue_in(
        conn: &Connection,
        calls: &[NewCall],
        now: SystemTime,
    ) -> Result<(), StoreError> {
        check_new_calls(calls)?;
        if calls.is_empty() {
            return Ok(());
        }
        check_schema(conn)?;
        // Cached statements: the caller's connection parses each once.
        let run = |text: &str| {
            conn.prepare_cached(text)
                .and_then(|mut s| s.execute([]))
                .map_err(sql)
        };
        run("SAVEPOINT retry_enqueue")?;
        let result = insert_calls(conn, calls, now);
        if result.is_err() {
            run("ROLLBACK TO SAVEPOINT retry_enqueue")?;
        }
        run("RELEASE SAVEPOINT retry_enqueue")?;
        result
    }
}

/// That `conn`'s main database is a store at this build's schema version, so the row
/// written is the one its workers read.
fn check_schema(conn: &Connection) -> Result<(), StoreError> {
    let (app_id, version): (i32, i64) = conn
        .prepare_cached(
            "SELECT application_id, user_version FROM pragma_application_id, pragma_user_version",
        )
        .and_then(|mut s| s.query_row([], |r| Ok((r.get(0)?, r.get(1)?))))
        .map_err(sql)?;
    let path = conn.path().unwrap_or("").to_owned();
    if app_id != APPLICATION_ID {
        return Err(StoreError::NotAStore {
            path,
            reason: "it is not a retry store yet: open it with `Store::open` first, which \
                     creates the store's tables"
                .into(),
        });
    }
    match u32::try_from(version) {
        Ok(v) if v == SCHEMA_VERSION => Ok(()),
        Ok(v) if v > SCHEMA_VERSION => Err(StoreError::NewerSchema {
            found: v,
            supported: SCHEMA_VERSION,
        }),
        _ => Err(StoreError::NotAStore {
            path,
            reason: format!(
                "its schema version is {version}, not {SCHEMA_VERSION}: open it with \
                 `Store::open` first, which migrates it"
            ),
        }),
    }
}
