use retry_runtime::retry;

// The error of a hand-off call moves to a background task: it must be `Send`. The first
// error is at the return type; an async hand-off still gives a second one at the attribute
// (from awaiting the executor's future), which the sync modes do not.
#[retry(max = 2, mode = "handoff")]
async fn save(record: String) -> Result<usize, Box<dyn std::error::Error>> {
    Ok(record.len())
}

fn main() {}
