use retry_runtime::retry;

#[derive(Clone)]
struct Client {
    base: u32,
}

impl Client {
    #[retry(max = 2, delay = "0ms", mode = "background")]
    fn fetch(self: Box<Self>, id: u32) -> Result<u32, std::io::Error> {
        Ok(self.base + id)
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let client = Box::new(Client { base: 40 });
    assert_eq!(client.fetch(2).await.unwrap(), 42);
}
