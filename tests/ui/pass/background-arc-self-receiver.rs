use retry_runtime::retry;
use std::sync::Arc;

struct Client {
    base: u32,
}

impl Client {
    #[retry(max = 2, delay = "0ms", mode = "background")]
    fn fetch(self: Arc<Self>, id: u32) -> Result<u32, std::io::Error> {
        Ok(self.base + id)
    }

    #[retry(max = 2, delay = "0ms", mode = "background")]
    async fn fetch_async(self: Arc<Self>, id: u32) -> Result<u32, std::io::Error> {
        Ok(self.base + id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let client = Arc::new(Client { base: 40 });
    assert_eq!(client.clone().fetch(2).await.unwrap(), 42);
    assert_eq!(client.fetch_async(3).await.unwrap(), 43);
}
