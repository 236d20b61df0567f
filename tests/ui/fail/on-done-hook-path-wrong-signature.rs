use retry_runtime::retry;

// Takes the error, not the report; `on_done` is `Fn(&Report<E>)`.
fn done(e: &std::io::Error) {
    eprintln!("{e}");
}

#[retry(mode = "background", on_done = done)]
fn save(record: String) -> Result<usize, std::io::Error> {
    Ok(record.len())
}

fn main() {
    let _ = save(String::new());
}
