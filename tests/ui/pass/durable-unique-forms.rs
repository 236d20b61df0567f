// Every form of `unique`: all arguments, one name, a list of names, a key expression, with
// and without `unique_for` (a literal or a `Duration` expression), async and sync.
use retry_runtime::retry;
use std::time::Duration;

#[retry(mode = "durable", unique = "args")]
async fn all(order: u32, region: String) -> Result<u32, String> {
    let _ = region;
    Ok(order)
}

#[retry(mode = "durable", unique = order, unique_for = "10m")]
async fn one(order: u32, region: String) -> Result<u32, String> {
    let _ = region;
    Ok(order)
}

#[retry(mode = "durable", unique = (order, region), unique_for = Duration::from_secs(60))]
fn list(order: u32, region: String) -> Result<u32, String> {
    let _ = region;
    Ok(order)
}

#[retry(mode = "durable", unique_key = format!("{region}:{order}"), max = 3)]
async fn expr(order: u32, region: String) -> Result<u32, String> {
    let _ = region;
    Ok(order)
}

fn main() {
    let _ = (all, one, list, expr);
}
