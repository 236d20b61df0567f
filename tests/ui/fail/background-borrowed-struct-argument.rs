use retry_runtime::retry;

#[derive(Clone)]
struct Config {
    retries: u32,
}

#[retry(mode = "background")]
fn save(config: &Config) -> Result<u32, std::io::Error> {
    Ok(config.retries)
}

fn main() {}
