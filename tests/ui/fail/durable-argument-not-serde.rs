use retry_runtime::retry;

#[derive(Debug, Clone)]
struct Invoice {
    id: u64,
}

#[retry(mode = "durable")]
async fn push(invoice: Invoice) -> Result<u64, String> {
    Ok(invoice.id)
}

fn main() {}
