use retry_runtime::retry;

#[retry(max = 3)]
async fn push_invoice(id: u64) -> Result<u64, String> {
    Ok(id)
}

async fn place(tx: &tokio_postgres::Transaction<'_>) -> Result<(), retry_runtime::durable::StoreError> {
    push_invoice::call(7).enqueue_in(tx).await?;
    Ok(())
}

fn main() {
    let _ = place;
}
