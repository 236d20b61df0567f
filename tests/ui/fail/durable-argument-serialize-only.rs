use retry_runtime::retry;

// `Serialize` without `Deserialize`: still one error, at the argument's type.
#[derive(Debug, Clone, serde::Serialize)]
struct Invoice {
    id: u64,
}

#[retry(mode = "durable", persist = "on_failure")]
fn push(invoice: Invoice, attempt: u32) -> Result<u64, String> {
    Ok(invoice.id + u64::from(attempt))
}

fn main() {}
