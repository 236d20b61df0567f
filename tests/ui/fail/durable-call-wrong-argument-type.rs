use retry_runtime::retry;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Invoice {
    id: u64,
}

#[retry(mode = "durable")]
async fn push_invoice(invoice: Invoice, attempt_note: String) -> Result<u64, String> {
    let _ = attempt_note;
    Ok(invoice.id)
}

async fn place(tx: &tokio_postgres::Transaction<'_>) -> Result<(), retry_runtime::durable::StoreError> {
    push_invoice::call(7, "first".into()).enqueue_in(tx).await?;
    Ok(())
}

fn main() {
    let _ = place;
}
