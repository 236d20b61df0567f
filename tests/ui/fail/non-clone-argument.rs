use retry_runtime::retry;

struct Request {
    id: u32,
}

#[retry(max = 2)]
fn send(request: Request) -> Result<u32, String> {
    Ok(request.id)
}

fn main() {
    let _ = send(Request { id: 1 });
}
