use retry_runtime::{retry, Report};

// Takes the report by value; `on_exhausted` is `Fn(&Report<E>)`.
fn alert(r: Report<String>) {
    eprintln!("{r}");
}

#[retry(max = 2, on_exhausted = alert)]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
