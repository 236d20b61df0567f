use retry_runtime::retry;

struct Client;

impl Client {
    #[retry(mode = "durable")]
    async fn push(&self, order: u32) -> Result<u32, String> {
        Ok(order)
    }
}

fn main() {}
