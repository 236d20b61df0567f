//! Finished calls, heard from PostgreSQL for [`Store::wait`](crate::durable::Store::wait): the
//! trigger of migration 3 (`retry_notify_finished`) sends `NOTIFY retry_finished, '<cid>'` in
//! the transaction that makes a call succeeded, dead or cancelled, whichever process writes
//! it; the backend's one `LISTEN` connection for it, opened by the first waiter, hands each
//! ID to every waiter of the process.

use std::sync::Arc;

use tokio::sync::{broadcast, OnceCell};
use tokio_postgres::Config;
use tokio_postgres_rustls::MakeRustlsConnect;

use super::{describe, Listening, PostgresBackend, POLL_ALL, RECONNECT};
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
                let first = Listening::connect_to(&backend.config, &backend.tls, FINISHED_CHANNEL)
                    .await
                    .map_err(|e| {
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
            match Listening::connect_to(&config, &tls, FINISHED_CHANNEL).await {
                Ok(listening) => break listening,
                Err(e) => {
                    tracing::warn!(store = %redacted, error = %describe(&e), "cannot LISTEN for finished calls; retrying");
                }
            }
        };
        let _ = out.send(POLL_ALL.to_owned());
    }
}
