use retry_runtime::{retry, Report};

#[retry(max = 2, on_done = |r: &Report<String>| println!("{r}"))]
fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
