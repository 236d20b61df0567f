use retry_runtime::durable::StoreError;
use retry_runtime::{retry, CorrelationId};

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Invoice {
    id: u64,
}

fn alert(r: &retry_runtime::Report<std::io::Error>) {
    eprintln!("{r}");
}

#[retry(mode = "durable", max = 10, backoff = "exp", delay = "1s", on_exhausted = alert)]
async fn push_invoice(invoice: Invoice, mut note: String) -> std::io::Result<u64> {
    note.push('!');
    Ok(invoice.id + note.len() as u64)
}

#[retry(mode = "durable", max = 3, delay = "10ms", name = "exports::send", timeout = "5s")]
async fn send(batch: Vec<u8>) -> std::io::Result<usize> {
    Ok(batch.len())
}

#[retry(mode = "durable")]
fn sync_push(id: u64) -> Result<(), String> {
    let _ = id;
    Ok(())
}

fn main() {
    let _: fn(Invoice, String) -> _ = push_invoice;
    let _ = send;
    let _: fn(u64) -> Result<CorrelationId, StoreError> = sync_push;
}

#[retry(mode = "durable", persist = "on_failure", max = 3, delay = "1s")]
fn export_sync(batch: Vec<u8>) -> Result<usize, String> {
    Ok(batch.len())
}

#[retry(mode = "durable", persist = "on_failure", max = 3, delay = "1s", timeout = "10s")]
async fn export(batch: Vec<u8>) -> std::io::Result<usize> {
    Ok(batch.len())
}

#[allow(dead_code)]
fn outcome_types() {
    let _: fn(Vec<u8>) -> retry_runtime::durable::OutcomeFor<Result<usize, String>> = export_sync;
    let _ = export;
}
