use retry_runtime::retry;

// Takes the error, not the report; `on_done` is `Fn(&Report<E>)`.
#[retry(mode = "background", on_done = |e: &std::io::Error| eprintln!("{e}"))]
fn save(record: String) -> Result<usize, std::io::Error> {
    Ok(record.len())
}

fn main() {}
