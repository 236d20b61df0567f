use retry_runtime::retry;

#[retry(max = 2)]
fn fetch() {
    println!("hello");
}

fn main() {
    fetch();
}
