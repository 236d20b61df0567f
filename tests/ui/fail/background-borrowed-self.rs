use retry_runtime::retry;

#[derive(Clone)]
struct Store;

impl Store {
    #[retry(mode = "background")]
    fn save(&self, record: String) -> Result<usize, std::io::Error> {
        Ok(record.len())
    }
}

fn main() {}
