//! Every function shape the attribute must accept, compiling and behaving.
use retry_runtime::retry;
use std::cell::Cell;

#[derive(Debug, PartialEq)]
struct E(u32);

thread_local!(static N: Cell<u32> = const { Cell::new(0) });

fn tick() -> u32 {
    N.with(|n| {
        n.set(n.get() + 1);
        n.get()
    })
}

#[retry(max = 3, delay = "0ms")]
fn free_fn(s: String, (a, b): (u32, u32)) -> Result<String, E> {
    let n = tick();
    if n < 3 {
        return Err(E(n));
    }
    Ok(format!("{s}{a}{b}"))
}

#[test]
fn free_fn_retries_and_clones_args() {
    N.with(|n| n.set(0));
    assert_eq!(free_fn("x".into(), (1, 2)), Ok("x12".into()));
}

struct Svc {
    calls: u32,
    name: String,
}

impl Svc {
    #[retry(max = 2, delay = "0ms")]
    fn by_ref(&self) -> std::io::Result<&str> {
        Ok(&self.name)
    }

    #[retry(max = 2, delay = "0ms")]
    fn by_mut(&mut self, mut extra: u32) -> Result<u32, E> {
        self.calls += 1;
        extra += 1;
        if self.calls < 2 {
            Err(E(self.calls))
        } else {
            Ok(self.calls + extra)
        }
    }

    #[retry(max = 2, delay = "0ms")]
    async fn by_mut_async(&mut self) -> Result<u32, E> {
        self.calls += 1;
        if self.calls < 3 {
            Err(E(self.calls))?;
        }
        Ok(self.calls)
    }
}

#[derive(Clone)]
struct Owned(u32);

impl Owned {
    #[retry(max = 2, delay = "0ms")]
    fn consume(mut self) -> Result<u32, E> {
        self.0 += 1;
        if tick() < 2 {
            Err(E(self.0))
        } else {
            Ok(self.0)
        }
    }
}

#[test]
fn methods() {
    let mut s = Svc {
        calls: 0,
        name: "n".into(),
    };
    assert_eq!(s.by_ref().unwrap(), "n");
    assert_eq!(s.by_mut(10), Ok(13));
    N.with(|n| n.set(0));
    assert_eq!(Owned(1).consume(), Ok(2));
}

#[tokio::test(start_paused = true)]
async fn async_method() {
    let mut s = Svc {
        calls: 0,
        name: "n".into(),
    };
    assert_eq!(s.by_mut_async().await, Ok(3));
}

#[retry(delay = "0ms")]
fn generic<'a, T>(x: T, y: &'a str, z: impl AsRef<str> + Clone) -> anyhow::Result<String>
where
    T: Clone + std::fmt::Debug + PartialEq,
{
    Ok(format!("{x:?}{y}{}", z.as_ref()))
}

#[test]
fn generics() {
    assert_eq!(generic(1, "a", "b").unwrap(), "1ab");
}

trait Fetch {
    fn fetch(&self, key: u32) -> Result<u32, E>;
    async fn fetch_async(&mut self, key: u32) -> Result<u32, E>;
}

struct Store {
    fails: u32,
}

impl Fetch for Store {
    #[retry(max = 3, delay = "0ms")]
    fn fetch(&self, key: u32) -> Result<u32, E> {
        Ok(key + self.fails)
    }

    #[retry(max = 3, delay = "0ms")]
    async fn fetch_async(&mut self, key: u32) -> Result<u32, E> {
        if self.fails > 0 {
            self.fails -= 1;
            return Err(E(self.fails));
        }
        Ok(key)
    }
}

#[tokio::test(start_paused = true)]
async fn trait_impl_methods() {
    let mut s = Store { fails: 2 };
    assert_eq!(s.fetch(1), Ok(3));
    assert_eq!(s.fetch_async(5).await, Ok(5));
    assert_eq!(s.fails, 0);
}

#[derive(Clone)]
struct Counter(u32);

impl Counter {
    #[retry(max = 3, delay = "0ms")]
    async fn bump_owned(mut self) -> Result<u32, E> {
        self.0 += 1;
        tokio::task::yield_now().await;
        if tick() < 3 {
            Err(E(self.0))
        } else {
            Ok(self.0)
        }
    }
}

#[tokio::test(start_paused = true)]
async fn owned_async_receiver_starts_fresh_each_attempt() {
    N.with(|n| n.set(0));
    // Each attempt starts from a clone of the original `self`: 1 + 1, never 1 + 3.
    assert_eq!(Counter(1).bump_owned().await, Ok(2));
}

/// Docs and visibility stay on the function.
#[retry(delay = "0ms")]
pub(crate) unsafe fn raw_read(p: *const u32) -> std::io::Result<u32> {
    // SAFETY: the caller passes a valid pointer.
    Ok(unsafe { *p })
}

#[test]
fn unsafe_fn_keeps_its_contract() {
    let v = 9u32;
    // SAFETY: `v` is alive and aligned.
    assert_eq!(unsafe { raw_read(&raw const v) }.unwrap(), 9);
}

// Stacked with other attributes, in either order.
#[retry(max = 2, delay = "0ms")]
#[tokio::test(start_paused = true)]
async fn retry_outside_tokio_test() -> Result<(), E> {
    if tick() % 2 == 1 {
        Err(E(0))
    } else {
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
#[retry(max = 2, delay = "0ms")]
async fn retry_inside_tokio_test() -> Result<(), E> {
    if tick() % 2 == 1 {
        Err(E(0))
    } else {
        Ok(())
    }
}

#[tracing::instrument]
#[retry(max = 2, delay = "0ms")]
fn instrumented_outside(x: u32) -> Result<u32, E> {
    Ok(x)
}

#[retry(max = 2, delay = "0ms")]
#[tracing::instrument]
async fn instrumented_inside(x: u32) -> Result<u32, E> {
    Ok(x)
}

#[tokio::test]
async fn stacked_with_instrument() {
    assert_eq!(instrumented_outside(1), Ok(1));
    assert_eq!(instrumented_inside(2).await, Ok(2));
}

type MyResult<T> = Result<T, E>;

#[retry(attempts = 2, delay = "0ms")]
fn alias(x: u32) -> MyResult<u32> {
    if x == 0 {
        Err(E(0))
    } else {
        Ok(x)
    }
}

#[test]
fn result_aliases() {
    assert_eq!(alias(3), Ok(3));
    assert_eq!(alias(0), Err(E(0)));
}

#[retry(max = 2, delay = "0ms")]
fn r#match(r#type: u32) -> Result<u32, E> {
    Ok(r#type)
}

#[test]
fn raw_identifiers() {
    assert_eq!(r#match(4), Ok(4));
}

// ---------------------------------------------------------------- method names include the type

mod names {
    use retry_runtime::{retry, Report};
    use std::cell::RefCell;

    thread_local! {
        pub static NAMES: RefCell<Vec<&'static str>> = const { RefCell::new(Vec::new()) };
    }

    fn record(r: &Report<String>) {
        NAMES.with(|n| n.borrow_mut().push(r.name));
    }

    pub struct Orders;
    pub struct Invoices;

    impl Orders {
        #[retry(max = 1, delay = "0ms", on_exhausted = record)]
        pub fn get(&self) -> Result<(), String> {
            Err("orders down".into())
        }
    }

    impl Invoices {
        #[retry(max = 1, delay = "0ms", on_exhausted = record)]
        pub fn get(&self) -> Result<(), String> {
            Err("invoices down".into())
        }
    }
}

#[test]
fn method_report_names_include_the_type() {
    assert!(names::Orders.get().is_err());
    assert!(names::Invoices.get().is_err());
    let got = names::NAMES.with(|n| n.borrow().clone());
    assert_eq!(got.len(), 2, "{got:?}");
    assert_ne!(got[0], got[1], "two methods, two names");
    assert!(got[0].ends_with("Orders::get"), "{got:?}");
    assert!(got[1].ends_with("Invoices::get"), "{got:?}");
}
