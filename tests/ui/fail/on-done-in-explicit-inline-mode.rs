use retry_runtime::{retry, Report};

#[retry(mode = "inline", on_done = |r: &Report<String>| println!("{r}"))]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
