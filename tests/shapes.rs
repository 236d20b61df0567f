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
            Err(E(self.calls))?
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
fn generic<'a, T: Clone + std::fmt::Debug>(
    x: T,
    y: &'a str,
    z: impl AsRef<str> + Clone,
) -> anyhow::Result<String>
where
    T: PartialEq,
{
    Ok(format!("{x:?}{y}{}", z.as_ref()))
}

#[test]
fn generics() {
    assert_eq!(generic(1, "a", "b").unwrap(), "1ab");
}
