use retry_runtime::retry;

#[retry(mode = "background")]
fn save(record: &str) -> Result<usize, std::io::Error> {
    Ok(record.len())
}

fn main() {
    let _ = save("x");
}
