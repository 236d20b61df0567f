use retry_runtime::retry;

#[retry(max = 2)]
struct Client {
    url: String,
}

fn main() {
    // The struct is still emitted.
    let c = Client { url: String::new() };
    let _ = c.url;
}
