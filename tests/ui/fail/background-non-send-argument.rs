use retry_runtime::retry;
use std::rc::Rc;

#[retry(mode = "background")]
fn save(record: Rc<String>) -> Result<usize, std::io::Error> {
    Ok(record.len())
}

fn main() {}
