use retry_runtime::retry;
use std::rc::Rc;

#[retry(mode = "background")]
fn save(record: String) -> Result<usize, Rc<String>> {
    Ok(record.len())
}

fn main() {}
