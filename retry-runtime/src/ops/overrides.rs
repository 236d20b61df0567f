//! Policies tuned at run time: an operator's override of a function's policy, by name.
//!
//! An override replaces some or all of a function's `max`, `backoff`, `delay`, `factor`,
//! `max_delay`, `jitter` and `budget` for every decision made after it is set, including
//! the next decision of calls already under way. `timeout` and `throttle` stay the
//! attribute's. The function is named as it reports itself (`module::function`,
//! `module::Type::method`, or its `name = "..."`).
//!
//! Overrides are read only after a failed attempt: a call whose first attempt succeeds takes
//! no lock and looks nothing up, and while no override is set a failure costs one atomic load.
//!
//! ```
//! use retry_runtime::{overrides, retry, Policy};
//! use std::sync::atomic::{AtomicU32, Ordering};
//!
//! static ATTEMPTS: AtomicU32 = AtomicU32::new(0);
//!
//! #[retry(max = 5, delay = "0ms", name = "docs::push")]
//! fn push() -> Result<(), &'static str> {
//!     ATTEMPTS.fetch_add(1, Ordering::Relaxed);
//!     Err("down")
//! }
//!
//! overrides::set("docs::push", Policy::new().max_retries(Some(1)));
//! assert!(push().is_err());
//! assert_eq!(ATTEMPTS.swap(0, Ordering::Relaxed), 2);
//!
//! overrides::clear("docs::push");
//! assert!(push().is_err());
//! assert_eq!(ATTEMPTS.load(Ordering::Relaxed), 6);
//! ```
//!
//! With the feature `overrides-file`, `load_file` reads them from a TOML file; see "For
//! operators" in the crate docs for its format and a reload-on-SIGHUP recipe.

use core::fmt;
use core::sync::atomic::{AtomicBool, Ordering};
use core::time::Duration;
use std::collections::HashMap;
use std::sync::{LazyLock, PoisonError, RwLock};

use crate::{Backoff, Jitter, Policy};

/// An override of some of a function's policy: each field that is `Some` replaces the
/// function's own value; the others keep it.
///
/// ```
/// use retry_runtime::overrides::Override;
/// use retry_runtime::{Backoff, Policy};
/// use std::time::Duration;
///
/// let own = Policy::new().max_retries(Some(3)).backoff(Backoff::Linear);
/// let mut o = Override::default();
/// o.max_retries = Some(Some(10));
/// let p = o.apply(&own);
/// assert_eq!(p.max_retries, Some(10));
/// assert_eq!(p.backoff, Backoff::Linear); // kept
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
#[non_exhaustive]
pub struct Override {
    /// Retries after the first attempt (`Some(None)`: forever; `Some(Some(0))`: the kill
    /// switch, see [`Reason::Disabled`](crate::Reason::Disabled)).
    pub max_retries: Option<Option<u32>>,
    /// How the wait grows.
    pub backoff: Option<Backoff>,
    /// The multiplier of an exponential backoff, when the backoff is (or stays) exponential.
    pub factor: Option<f64>,
    /// The first wait.
    pub delay: Option<Duration>,
    /// The cap on a computed wait (`Some(None)`: the default cap).
    pub max_delay: Option<Option<Duration>>,
    /// The randomisation of each wait.
    pub jitter: Option<Jitter>,
    /// The time budget of a call (`Some(None)`: none).
    pub budget: Option<Option<Duration>>,
}

impl Override {
    /// The function's policy `own` with this override on top.
    #[must_use]
    pub fn apply(&self, own: &Policy) -> Policy {
        let mut p = *own;
        if let Some(m) = self.max_retries {
            p.max_retries = m;
        }
        if let Some(b) = self.backoff {
            p.backoff = b;
        }
        if let (Some(f), Backoff::Exponential { factor }) = (self.factor, &mut p.backoff) {
            *factor = f;
        }
        if let Some(d) = self.delay {
            p.delay = d;
        }
        if let Some(m) = self.max_delay {
            p.max_delay = m;
        }
        if let Some(j) = self.jitter {
            p.jitter = j;
        }
        if let Some(b) = self.budget {
            p.budget = b;
        }
        p
    }
}

impl From<Policy> for Override {
    /// Every value an override can replace, from `p`.
    fn from(p: Policy) -> Self {
        Self {
            max_retries: Some(p.max_retries),
            backoff: Some(p.backoff),
            factor: None,
            delay: Some(p.delay),
            max_delay: Some(p.max_delay),
            jitter: Some(p.jitter),
            budget: Some(p.budget),
        }
    }
}

/// Whether any override is set: the one load a failure pays while none is.
static ANY: AtomicBool = AtomicBool::new(false);
static ALL: LazyLock<RwLock<HashMap<String, Override>>> = LazyLock::new(RwLock::default);

fn write(f: impl FnOnce(&mut HashMap<String, Override>)) {
    let mut all = ALL.write().unwrap_or_else(PoisonError::into_inner);
    f(&mut all);
    ANY.store(!all.is_empty(), Ordering::Release);
}

/// Replaces the policy of the function `name` with `policy` (all but its `timeout` and
/// `throttle`) for decisions made from now on.
///
/// ```
/// use retry_runtime::{overrides, Policy};
/// overrides::set("billing::push_invoice", Policy::new().max_retries(Some(10)));
/// assert_eq!(overrides::get("billing::push_invoice").unwrap().max_retries, Some(Some(10)));
/// # overrides::clear("billing::push_invoice");
/// ```
pub fn set(name: &str, policy: Policy) {
    set_partial(name, Override::from(policy));
}

/// Overrides only the fields of the function's policy that `o` sets.
///
/// ```
/// use retry_runtime::overrides::{self, Override};
/// let mut kill = Override::default();
/// kill.max_retries = Some(Some(0)); // the kill switch
/// overrides::set_partial("billing::push_invoice", kill);
/// # overrides::clear("billing::push_invoice");
/// ```
pub fn set_partial(name: &str, o: Override) {
    write(|all| {
        all.insert(name.to_owned(), o);
    });
}

/// Removes the override of the function `name`: its own policy is back for the decisions
/// made from now on.
///
/// ```
/// use retry_runtime::{overrides, Policy};
/// overrides::set("billing::refund", Policy::new());
/// overrides::clear("billing::refund");
/// assert!(overrides::get("billing::refund").is_none());
/// ```
pub fn clear(name: &str) {
    write(|all| {
        all.remove(name);
    });
}

/// Removes every override.
pub fn clear_all() {
    write(HashMap::clear);
}

/// The override of the function `name`, if one is set.
#[must_use]
pub fn get(name: &str) -> Option<Override> {
    ALL.read()
        .unwrap_or_else(PoisonError::into_inner)
        .get(name)
        .copied()
}

/// Whether any override is set: one atomic load.
#[inline]
pub(crate) fn any() -> bool {
    ANY.load(Ordering::Acquire)
}

/// The policy in force for `name` when an override is set, `None` otherwise (then `own`
/// is). One atomic load while no override is set anywhere.
#[inline]
pub(crate) fn applied(name: &str, own: &Policy) -> Option<Policy> {
    if !ANY.load(Ordering::Acquire) {
        return None;
    }
    get(name).map(|o| o.apply(own))
}

#[cfg(feature = "overrides-file")]
/// A `#[retry]` function of the program, registered with [`inventory`] by its expansion when
/// the program starts, so that an override file naming no function is refused (a kill switch
/// that silently does nothing is worse than none). Not public API.
#[doc(hidden)]
#[derive(Debug)]
pub struct Known {
    /// Its name, or for a method named by default (`typed`), `module::method`.
    name: &'static str,
    /// A method whose name is `module::Type::method` with its `Self` type.
    typed: bool,
    module: &'static str,
}

#[cfg(feature = "overrides-file")]
impl Known {
    /// What the expansion registers: the arguments of its [`Site`](crate::site::Site).
    #[must_use]
    pub const fn new(name: &'static str, typed: bool, module: &'static str) -> Self {
        Self {
            name,
            typed,
            module,
        }
    }

    /// Whether the function reports itself as `name`.
    fn is(&self, name: &str) -> bool {
        if !self.typed {
            return self.name == name;
        }
        // `module::Type::method`, with any one-segment `Type`.
        let method = self.name.rsplit("::").next().unwrap_or(self.name);
        name.strip_prefix(self.module)
            .and_then(|rest| rest.strip_prefix("::"))
            .and_then(|rest| rest.strip_suffix(method))
            .and_then(|ty| ty.strip_suffix("::"))
            .is_some_and(|ty| !ty.is_empty() && !ty.contains("::"))
    }

    /// Its name as it would be written for `written` (a method's type taken from it).
    fn spelled_for(&self, written: &str) -> String {
        if !self.typed {
            return self.name.to_owned();
        }
        let method = self.name.rsplit("::").next().unwrap_or(self.name);
        let mut parts = written.rsplit("::");
        let ty = parts.nth(1).filter(|t| !t.is_empty()).unwrap_or("Type");
        format!("{}::{ty}::{method}", self.module)
    }
}

#[cfg(feature = "overrides-file")]
inventory::collect!(Known);

#[cfg(feature = "overrides-file")]
/// Whether a `#[retry]` function of this program reports itself as `name` (feature
/// `overrides-file`, which registers every function's name; a method named by
/// default matches `module::Type::method` for any type of its module).
///
/// ```
/// use retry_runtime::{overrides, retry};
///
/// #[retry(max = 1, name = "docs::known")]
/// fn known() -> Result<(), String> { Ok(()) }
///
/// assert!(overrides::is_known("docs::known"));
/// assert!(!overrides::is_known("docs::unknown"));
/// ```
#[must_use]
pub fn is_known(name: &str) -> bool {
    inventory::iter::<Known>.into_iter().any(|k| k.is(name))
}

#[cfg(feature = "overrides-file")]
/// The name of a `#[retry]` function closest to `name` (within a few edits), for a hint.
fn closest(name: &str) -> Option<String> {
    inventory::iter::<Known>
        .into_iter()
        .map(|k| k.spelled_for(name))
        .map(|n| (distance(name, &n), n))
        .filter(|(d, n)| *d <= 3.max(n.len() / 5))
        .min()
        .map(|(_, n)| n)
}

#[cfg(feature = "overrides-file")]
/// Levenshtein distance, by characters.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

/// Why an override names no function of this program, with the closest name.
#[cfg(feature = "overrides-file")]
fn unknown(name: &str) -> String {
    let hint = match closest(name) {
        Some(n) => format!("did you mean `{n}`?"),
        None => "overrides name a function as it reports itself (`module::function`, \
                 `module::Type::method`, or its `name = \"...\"`)"
            .to_owned(),
    };
    format!("no `#[retry]` function of this program is named `{name}`; {hint}")
}

/// A bad override file: the line and what is wrong, or why it could not be read.
#[derive(Debug)]
#[non_exhaustive]
pub enum OverrideError {
    /// The file could not be read.
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The text is not a valid override file.
    Invalid {
        /// The file, when it came from one.
        path: Option<std::path::PathBuf>,
        /// The line (from 1) of the mistake.
        line: usize,
        /// What is wrong, and how to fix it.
        message: String,
    },
}

impl OverrideError {
    /// The line of the mistake, for an invalid file.
    #[must_use]
    pub fn line(&self) -> Option<usize> {
        match self {
            Self::Invalid { line, .. } => Some(*line),
            Self::Io { .. } => None,
        }
    }
}

impl fmt::Display for OverrideError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Io { path, error } => {
                write!(
                    f,
                    "cannot read the override file {}: {error}",
                    path.display()
                )
            }
            Self::Invalid {
                path: Some(p),
                line,
                message,
            } => write!(f, "{}, line {line}: {message}", p.display()),
            Self::Invalid {
                path: None,
                line,
                message,
            } => write!(f, "line {line}: {message}"),
        }
    }
}

impl std::error::Error for OverrideError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Self::Io { error, .. } => Some(error),
            Self::Invalid { .. } => None,
        }
    }
}

#[cfg(feature = "overrides-file")]
pub use file::{load_file, load_str};

#[cfg(feature = "overrides-file")]
mod file {
    use std::collections::BTreeMap;
    use std::path::Path;

    use toml::{Spanned, Value};

    use super::{is_known, unknown, write, Override, OverrideError};
    use crate::{Backoff, Jitter};

    type Section = BTreeMap<Spanned<String>, Spanned<Value>>;
    type File = BTreeMap<Spanned<String>, Spanned<Section>>;

    /// Reads the override file at `path` and makes its overrides the ones in force, in
    /// place of every override set before (so a function removed from the file gets its own
    /// policy back). Returns how many functions it overrides. A bad file changes nothing.
    ///
    /// Reloading on `SIGHUP` (`kill -HUP <pid>` after editing the file), with tokio's
    /// `signal` feature:
    ///
    /// ```no_run
    /// use std::path::PathBuf;
    ///
    /// /// Loads the overrides now and again on every SIGHUP. A bad file is reported and the
    /// /// overrides in force stay.
    /// #[cfg(unix)]
    /// async fn reload_on_sighup(path: PathBuf) -> std::io::Result<()> {
    ///     use tokio::signal::unix::{signal, SignalKind};
    ///     let mut hangups = signal(SignalKind::hangup())?;
    ///     loop {
    ///         match retry_runtime::overrides::load_file(&path) {
    ///             Ok(n) => eprintln!("retry overrides: {n} function(s) from {}", path.display()),
    ///             Err(e) => eprintln!("retry overrides unchanged: {e}"),
    ///         }
    ///         if hangups.recv().await.is_none() {
    ///             return Ok(());
    ///         }
    ///     }
    /// }
    ///
    /// #[cfg(unix)]
    /// #[tokio::main(flavor = "current_thread")]
    /// async fn main() {
    ///     tokio::spawn(reload_on_sighup(PathBuf::from("/etc/billing/retry.toml")));
    ///     // ... the application.
    /// }
    ///
    /// #[cfg(not(unix))]
    /// fn main() {}
    /// ```
    ///
    /// # Errors
    /// [`OverrideError::Io`] if the file cannot be read, [`OverrideError::Invalid`] with the
    /// line of the first mistake otherwise.
    pub fn load_file(path: impl AsRef<Path>) -> Result<usize, OverrideError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|error| OverrideError::Io {
            path: path.to_owned(),
            error,
        })?;
        load_str(&text).map_err(|e| match e {
            OverrideError::Invalid { line, message, .. } => OverrideError::Invalid {
                path: Some(path.to_owned()),
                line,
                message,
            },
            io @ OverrideError::Io { .. } => io,
        })
    }

    /// [`load_file`] on the text of a file.
    ///
    /// ```
    /// use retry_runtime::{overrides, retry};
    ///
    /// #[retry(max = 3, name = "billing::push_invoice")]
    /// fn push_invoice() -> Result<(), String> { Ok(()) }
    ///
    /// let n = overrides::load_str(r#"
    ///     ["billing::push_invoice"]
    ///     max = 10
    ///     delay = "200ms"
    /// "#).unwrap();
    /// assert_eq!(n, 1);
    /// let err = overrides::load_str("[\"billing::push_invoice\"]\nmax = -1\n").unwrap_err();
    /// assert_eq!(err.line(), Some(2));
    ///
    /// // A name no `#[retry]` function has is refused, with the closest one.
    /// let err = overrides::load_str("[\"billing::push_invoce\"]\nmax = 0\n").unwrap_err();
    /// assert!(err.to_string().contains("did you mean `billing::push_invoice`?"), "{err}");
    /// # overrides::clear_all();
    /// ```
    ///
    /// # Errors
    /// [`OverrideError::Invalid`] with the line of the first mistake: a value that does not
    /// fit its key, a key outside a section, or a section that names no `#[retry]` function
    /// of this program ([`is_known`](super::is_known)).
    pub fn load_str(text: &str) -> Result<usize, OverrideError> {
        let line_of = |at: usize| text[..at.min(text.len())].matches('\n').count() + 1;
        let invalid = |at: usize, message: String| OverrideError::Invalid {
            path: None,
            line: line_of(at),
            message,
        };
        let file: File = toml::from_str(text).map_err(|e| {
            if let Some((at, message)) = outside_section(text) {
                return invalid(at, message);
            }
            let at = e.span().map_or(0, |s| s.start);
            invalid(at, e.message().trim().to_owned())
        })?;
        let mut parsed = Vec::with_capacity(file.len());
        for (name, section) in file {
            if !is_known(name.get_ref()) {
                return Err(invalid(name.span().start, unknown(name.get_ref())));
            }
            let mut o = Override::default();
            for (key, value) in section.into_inner() {
                let at = key.span().start;
                set_key(&mut o, key.get_ref(), value.get_ref())
                    .map_err(|m| invalid(at, format!("in [\"{}\"]: {m}", name.get_ref())))?;
            }
            parsed.push((name.into_inner(), o));
        }
        let n = parsed.len();
        write(|all| {
            all.clear();
            all.extend(parsed);
        });
        Ok(n)
    }

    /// A key written before any `["module::function"]` section, with a hint.
    fn outside_section(text: &str) -> Option<(usize, String)> {
        let top: BTreeMap<Spanned<String>, Spanned<Value>> = toml::from_str(text).ok()?;
        let (key, value) = top.iter().find(|(_, v)| !v.get_ref().is_table())?;
        let key = key.get_ref();
        let value = match value.get_ref() {
            Value::String(s) => format!("{s:?}"),
            Value::Integer(n) => n.to_string(),
            Value::Float(f) => f.to_string(),
            Value::Boolean(b) => b.to_string(),
            _ => "...".to_owned(),
        };
        Some((
            top.keys().find(|k| k.get_ref() == key)?.span().start,
            format!(
                "`{key} = {value}` is outside a section: an override belongs under the name of \
                 the function it changes, like\n[\"billing::push_invoice\"]\n{key} = {value}"
            ),
        ))
    }

    fn set_key(o: &mut Override, key: &str, v: &Value) -> Result<(), String> {
        match key {
            "max" => {
                o.max_retries = Some(match v {
                    Value::String(s) if s == "forever" => None,
                    Value::Integer(n) => Some(u32::try_from(*n).map_err(|_| {
                        format!("`max` is {n}: write a whole number from 0 (the kill switch) to {}, or \"forever\"", u32::MAX)
                    })?),
                    _ => return Err("`max` takes a whole number (0 is the kill switch) or \"forever\"".into()),
                });
            }
            "backoff" => {
                o.backoff = Some(match string(key, v)? {
                    "fixed" => Backoff::Fixed,
                    "linear" => Backoff::Linear,
                    "exp" => Backoff::Exponential {
                        factor: o.factor.unwrap_or(2.0),
                    },
                    other => {
                        return Err(format!(
                            "unknown backoff \"{other}\": expected \"fixed\", \"linear\" or \"exp\""
                        ))
                    }
                });
            }
            "factor" => {
                #[allow(clippy::cast_precision_loss)]
                let f = match v {
                    Value::Float(f) => *f,
                    Value::Integer(n) => *n as f64,
                    _ => return Err("`factor` takes a number greater than 1".into()),
                };
                if !(f > 1.0 && f.is_finite()) {
                    return Err(format!("`factor` is {f}: it must be greater than 1"));
                }
                o.factor = Some(f);
                if let Some(Backoff::Exponential { factor }) = &mut o.backoff {
                    *factor = f;
                }
            }
            "delay" => o.delay = Some(duration(key, v)?),
            "max_delay" => o.max_delay = Some(optional_duration(key, v)?),
            "budget" => o.budget = Some(optional_duration(key, v)?),
            "jitter" => {
                o.jitter = Some(match string(key, v)? {
                    "none" => Jitter::None,
                    "full" => Jitter::Full,
                    "equal" => Jitter::Equal,
                    "decorrelated" => Jitter::Decorrelated,
                    other => return Err(format!(
                        "unknown jitter \"{other}\": expected \"none\", \"full\", \"equal\" or \"decorrelated\""
                    )),
                });
            }
            other => {
                return Err(format!(
                    "unknown key `{other}`: the keys are max, backoff, delay, factor, max_delay, jitter, budget"
                ))
            }
        }
        Ok(())
    }

    fn string<'v>(key: &str, v: &'v Value) -> Result<&'v str, String> {
        v.as_str()
            .ok_or_else(|| format!("`{key}` takes a string, like `{key} = \"...\"`"))
    }

    fn optional_duration(key: &str, v: &Value) -> Result<Option<core::time::Duration>, String> {
        if v.as_str() == Some("none") {
            return Ok(None);
        }
        duration(key, v).map(Some)
    }

    fn duration(key: &str, v: &Value) -> Result<core::time::Duration, String> {
        let s = string(key, v)?;
        retry_duration::parse(s)
            .map_err(|why| format!("`{key}` is \"{s}\": {why}; {}", retry_duration::HOW))
    }
}
