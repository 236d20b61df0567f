#![deny(warnings)] // the companion of an unused durable function warns of nothing

use retry_runtime::retry;
use std::time::Duration;

mod billing {
    use retry_runtime::retry;

    #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
    pub struct Invoice {
        pub id: u64,
    }

    /// Pushes an invoice.
    #[retry(mode = "durable")]
    pub async fn push_invoice(invoice: Invoice, mut note: String) -> Result<u64, String> {
        note.push('!');
        Ok(invoice.id + note.len() as u64)
    }

    // Never called, never enqueued: no dead-code warning for it or its companion.
    #[retry(mode = "durable", persist = "on_failure")]
    fn unused(id: u64) -> Result<u64, String> {
        Ok(id)
    }
}

// One import brings the function and its companion.
use billing::{push_invoice, Invoice};
use retry_runtime::durable::{DurableCall, StoreError};

async fn place(tx: &tokio_postgres::Transaction<'_>) -> Result<(), StoreError> {
    let call: DurableCall<push_invoice> = push_invoice::call(Invoice { id: 7 }, "paid".into());
    call.after(Duration::from_secs(3600)).enqueue_in(tx).await?;
    Ok(())
}

fn local_types(conn: &rusqlite::Connection) -> Result<(), StoreError> {
    // A durable function and its argument's type declared in a block.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Shard(u32);

    #[retry(mode = "durable")]
    fn reindex(shard: Shard) -> Result<(), String> {
        let _ = shard.0;
        Ok(())
    }

    reindex::call(Shard(3)).enqueue_in_sqlite(conn)?;
    Ok(())
}

fn main() {
    let _ = place;
    let _ = local_types;
    let _: fn(Invoice, String) -> _ = push_invoice;
}
