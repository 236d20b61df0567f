use retry_runtime::retry;

struct Client {
    id: u32,
}

impl Client {
    #[retry(max = 2)]
    fn send(self) -> Result<u32, String> {
        Ok(self.id)
    }
}

fn main() {}
