//! Finished calls, heard from PostgreSQL for [`Store::wait`](crate::durable::Store::wait): the
//! trigger of migration 3 (`retry_notify_finished`) sends `NOTIFY retry_finished, '<cid>'` in
//! the transaction that makes a call succeeded, dead or cancelled, whichever process writes
//! it; the backend's one `LISTEN` connection for it, opened by the first waiter, hands each
//! ID to every waiter of the process.
//!
//! The trigger notifies only while a session is listed in `retry_listeners` (a `NOTIFY`
//! serializes the commits of the whole database, so the workers' outcomes send none while
//! nobody waits): the `LISTEN` connection lists itself once it listens, then waits for the
//! transactions that were already under way (whose trigger may have found no listener) to
//! end, before any waiter reads its call.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, OnceCell};
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{describe, Listening, PostgresBackend, POLL_ALL, RECONNECT};
use crate::durable::millis::to_millis;
use crate::durable::StoreError;

/// The channel a call that finishes notifies, with its ID as the payload.
pub const FINISHED_CHANNEL: &str = "retry_finished";

/// IDs a waiter may fall behind by before it re-reads its call (it loses nothing then).
const FEED_BUFFER: usize = 1024;

/// The finished calls heard, shared by the clones of a backend; the `LISTEN` connection starts
/// with the first waiter and lasts as long as the backend's runtime (its last clone).
#[derive(Clone, Default)]
pub(super) struct Feed(Arc<OnceCell<broadcast::Sender<String>>>);

impl Feed {
    /// The finished calls from now on: once this returns, the connection listens, so a call
    /// that finishes later is heard (a waiter reads its call after subscribing).
    pub(super) async fn subscribe(
        &self,
        backend: &PostgresBackend,
    ) -> Result<broadcast::Receiver<String>, StoreError> {
        let sender = self
            .0
            .get_or_try_init(|| async {
                let first = listen(&backend.config, &backend.tls).await.map_err(|e| {
                    StoreError::Backend(format!(
                        "{}: cannot LISTEN for finished calls: {}",
                        backend.redacted,
                        describe(&e)
                    ))
                })?;
                let (out, _) = broadcast::channel(FEED_BUFFER);
                tokio::spawn(forward(
                    backend.config.clone(),
                    backend.tls.clone(),
                    backend.redacted.clone(),
                    first,
                    out.clone(),
                ));
                Ok::<_, StoreError>(out)
            })
            .await?;
        Ok(sender.subscribe())
    }
}

/// Hands every finished call's ID to the waiters, reconnecting (as the workers' listener does)
/// when the connection ends, and sending [`POLL_ALL`] after a reconnection, since IDs sent
/// meanwhile were lost: every waiter then re-reads its call.
async fn forward(
    config: Config,
    tls: MakeRustlsConnect,
    redacted: String,
    mut current: Listening,
    out: broadcast::Sender<String>,
) {
    loop {
        while let Some(cid) = current.payloads.recv().await {
            // No receiver: nobody waits now.
            let _ = out.send(cid);
        }
        tracing::warn!(store = %redacted, "the LISTEN connection for finished calls was lost; reconnecting");
        let (mut retry, mut wait) = (0_u32, std::time::Duration::ZERO);
        current = loop {
            retry = retry.saturating_add(1);
            wait = RECONNECT.jittered(RECONNECT.base_delay(retry), wait);
            tokio::time::sleep(wait).await;
            match listen(&config, &tls).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(store = %redacted, error = %describe(&e), "cannot LISTEN for finished calls; retrying");
                }
            }
        };
        let _ = out.send(POLL_ALL.to_owned());
    }
}

/// Lists this session as a listener, and removes the rows of sessions that are gone (a row
/// left by a session that ended only costs notifications nobody hears).
const REGISTER: &str = "WITH gone AS (DELETE FROM retry_listeners \
      WHERE pid NOT IN (SELECT pid FROM pg_stat_activity WHERE pid IS NOT NULL)) \
    INSERT INTO retry_listeners (pid, since) VALUES (pg_backend_pid(), $1) \
    ON CONFLICT (pid) DO UPDATE SET since = EXCLUDED.since";

/// The transactions under way, as `(txid)`s below `$1`: those that began before it.
const UNDER_WAY: &str = "SELECT count(*) FROM \
    txid_snapshot_xip(txid_current_snapshot()) AS x WHERE x < $1";

/// How long [`listen`] waits for the transactions under way when it listed itself (after
/// that, a waiter whose call such a transaction finishes is told by its periodic re-read).
const SETTLE: Duration = Duration::from_secs(2);

/// A connection that `LISTEN`s on [`FINISHED_CHANNEL`], listed in `retry_listeners`, once
/// every transaction that may have missed the listing ended (for at most [`SETTLE`]): from
/// then on, every call that finishes is notified.
async fn listen(
    config: &Config,
    tls: &MakeRustlsConnect,
) -> Result<Listening, tokio_postgres::Error> {
    let listening = Listening::connect_to(config, tls, FINISHED_CHANNEL).await?;
    let client = &listening.client;
    client
        .execute(REGISTER, &[&to_millis(SystemTime::now())])
        .await?;
    // Any transaction whose trigger ran before the row was committed has a lower ID than
    // the next one now.
    let next: i64 = client
        .query_one("SELECT txid_snapshot_xmax(txid_current_snapshot())", &[])
        .await?
        .try_get(0)?;
    let until = Instant::now() + SETTLE;
    loop {
        let left: i64 = client.query_one(UNDER_WAY, &[&next]).await?.try_get(0)?;
        if left == 0 || Instant::now() >= until {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    Ok(listening)
}
