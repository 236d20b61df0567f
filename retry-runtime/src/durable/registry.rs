//! Which functions a worker may run: every `#[retry(mode = "durable")]` function registers
//! itself, under its stable name, with [`inventory`] when the program starts. A worker runs
//! only registered functions, so a stored call can never name arbitrary code.

use std::collections::HashMap;
use std::sync::OnceLock;

use crate::durable::BoxFuture;
use crate::run::durable::{Job, Verdict};

/// A durable function: its stable name and how to run one attempt of a stored call.
#[derive(Debug)]
pub struct Registration {
    /// The stable name the calls are stored under.
    pub name: &'static str,
    /// Runs one attempt of a stored call and says what follows.
    pub attempt: fn(Job) -> BoxFuture<'static, Verdict>,
    /// `max_running = N`: at most N of its attempts run at once across every worker of the
    /// store (written to the store by each worker at start; see [`Store::set_limit`] for an
    /// operator's limit, which wins).
    ///
    /// [`Store::set_limit`]: crate::durable::Store::set_limit
    pub max_running: Option<u32>,
}

inventory::collect!(Registration);

struct Registry {
    by_name: HashMap<&'static str, &'static Registration>,
    /// Names registered by two different functions: neither is run.
    clashes: Vec<&'static str>,
}

fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        let mut by_name = HashMap::new();
        let mut clashes = Vec::new();
        for r in inventory::iter::<Registration> {
            if by_name.insert(r.name, r).is_some() {
                clashes.push(r.name);
            }
        }
        for name in &clashes {
            by_name.remove(name);
            tracing::error!(
                target: "retry_runtime::durable",
                function = name,
                "two durable functions are registered under one name; neither runs until one \
                 of them gets another `name = \"...\"`",
            );
        }
        Registry { by_name, clashes }
    })
}

/// The registration of the function stored as `name`.
pub(crate) fn lookup(name: &str) -> Option<&'static Registration> {
    registry().by_name.get(name).copied()
}

/// The names of the durable functions this program can run, sorted.
///
/// ```
/// // A program with no durable function registers none.
/// let names = retry_runtime::durable::registered();
/// assert!(names.windows(2).all(|w| w[0] < w[1]));
/// ```
#[must_use]
pub fn registered() -> Vec<&'static str> {
    let mut names: Vec<_> = registry().by_name.keys().copied().collect();
    names.sort_unstable();
    names
}

/// Names that two durable functions of this program claim; calls stored under them are left
/// alone until the clash is fixed.
#[must_use]
pub fn clashing() -> Vec<&'static str> {
    registry().clashes.clone()
}

/// Unfinished calls in `stats` that no worker of this program will run: their function is
/// not registered here (renamed without a pinned `name`, or removed).
#[must_use]
pub fn orphans(stats: &crate::durable::Stats) -> u64 {
    stats.orphaned(&registered())
}
