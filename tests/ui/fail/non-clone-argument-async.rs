use retry_runtime::retry;

struct Request {
    id: u32,
}

#[retry(max = 2)]
async fn send((a, request): (u32, Request)) -> Result<u32, String> {
    Ok(a + request.id)
}

fn main() {}
