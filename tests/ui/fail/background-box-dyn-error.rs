use retry_runtime::retry;

#[retry(max = 2, mode = "background")]
fn save(record: String) -> Result<usize, Box<dyn std::error::Error>> {
    Ok(record.len())
}

fn main() {
    let _ = save(String::new());
}
