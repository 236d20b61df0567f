use retry_runtime::retry;

/// The downstream API allows this many requests at once.
const QUOTA: u32 = 4;

#[retry(mode = "durable", max_running = 2, max = 5, delay = "1s")]
async fn push_invoice(id: u64) -> std::io::Result<u64> {
    Ok(id)
}

#[retry(mode = "durable", max_running = QUOTA, name = "exports::send")]
fn send(batch: Vec<u8>) -> Result<usize, String> {
    Ok(batch.len())
}

#[retry(mode = "durable", persist = "on_failure", max_running = QUOTA * 2)]
async fn export(batch: Vec<u8>) -> std::io::Result<usize> {
    Ok(batch.len())
}

fn main() {
    let _ = push_invoice;
    let _ = send;
    let _ = export;
}
