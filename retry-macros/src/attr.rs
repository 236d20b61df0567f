//! Parsing `#[retry(key = value, ...)]` into [`Args`], every value kept with its span.

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, LitStr, Token};

/// Every key the attribute knows, for "did you mean" hints.
pub const KEYS: &[&str] = &[
    "max",
    "attempts",
    "backoff",
    "delay",
    "factor",
    "max_delay",
    "jitter",
    "budget",
    "timeout",
    "throttle",
    "when",
    "delay_from",
    "on_retry",
    "on_exhausted",
    "fallback",
    "on_done",
    "error_format",
    "mode",
    "persist",
    "name",
    "crate",
    "max_running",
    "unique",
    "unique_key",
    "unique_for",
];

/// A count: a literal checked here, or a constant expression checked by the compiler.
#[derive(Clone)]
pub enum Count {
    Lit(u32),
    Const(Box<Expr>),
}

/// `max = N` or `max = "forever"`.
#[derive(Clone)]
pub enum Max {
    Retries(Count),
    Forever,
}

#[derive(Clone, Copy, PartialEq)]
pub enum BackoffKind {
    Fixed,
    Linear,
    Exp,
}

#[derive(Clone, Copy, PartialEq)]
pub enum JitterKind {
    None,
    Full,
    Equal,
    Decorrelated,
}

/// When a durable call is written to the store.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Persist {
    /// Before the first attempt (the default).
    Always,
    /// Only after a first attempt, made in the caller, failed and is worth retrying.
    OnFailure,
}

/// `mode = "..."` as written; `valid::plan` resolves it with `persist` into a `plan::Mode`.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum ModeArg {
    Inline,
    Background,
    Handoff,
    Durable,
}

/// A duration: a literal checked here, or an expression of type `Duration`.
pub enum DurationArg {
    Lit { secs: u64, nanos: u32 },
    Expr(Box<Expr>),
}

/// `timeout = ...`: a limit, or `"none"` (durable calls: no limit instead of their default).
pub enum Timeout {
    Limit(DurationArg),
    /// `timeout = "none"`, with the span of the string.
    Unlimited(Span),
}

/// A key's value, with the span of the key (cross-key errors point at the key).
pub struct Keyed<T> {
    pub key: Span,
    pub value: T,
}

#[derive(Default)]
pub struct Args {
    pub max: Option<Keyed<Max>>,
    pub attempts: Option<Keyed<Count>>,
    pub backoff: Option<Keyed<BackoffKind>>,
    pub delay: Option<Keyed<DurationArg>>,
    pub factor: Option<Keyed<f64>>,
    pub max_delay: Option<Keyed<DurationArg>>,
    pub jitter: Option<Keyed<JitterKind>>,
    pub budget: Option<Keyed<DurationArg>>,
    pub timeout: Option<Keyed<Timeout>>,
    /// `throttle = "20%"`: the percentage.
    pub throttle: Option<Keyed<u32>>,
    pub when: Option<Expr>,
    pub delay_from: Option<Expr>,
    pub on_retry: Option<Expr>,
    pub on_exhausted: Option<Expr>,
    pub fallback: Option<Expr>,
    pub on_done: Option<Keyed<Expr>>,
    pub error_format: Option<Expr>,
    pub mode: Option<Keyed<ModeArg>>,
    pub persist: Option<Keyed<Persist>>,
    pub name: Option<LitStr>,
    pub krate: Option<syn::Path>,
    /// `max_running = N` (durable): the most attempts running at once across the workers.
    pub max_running: Option<Keyed<Count>>,
    /// `unique = "args"` or `unique = (a, b)` (see `unique.rs`).
    pub unique: Option<Keyed<crate::unique::UniqueArg>>,
    /// `unique_key = expr`.
    pub unique_key: Option<Keyed<Expr>>,
    /// `unique_for = "1h"`.
    pub unique_for: Option<Keyed<DurationArg>>,
    /// The keys in the order given, for "the later of two" errors.
    pub order: Vec<String>,
}

struct KeyValue {
    key: Ident,
    value: Expr,
}

impl Parse for KeyValue {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let key = if input.peek(Token![crate]) {
            let t: Token![crate] = input.parse()?;
            Ident::new("crate", t.span)
        } else {
            input.call(syn::ext::IdentExt::parse_any).map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected a key, like `max` in `#[retry(max = 5)]`: the arguments are \
                     `key = value` pairs separated by commas",
                )
            })?
        };
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = value`: every key of `#[retry]` takes a value"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(Self { key, value })
    }
}

/// Collects errors so that all of them are reported at once.
#[derive(Default)]
pub struct Errors(Option<syn::Error>);

impl Errors {
    pub fn push(&mut self, e: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(e),
            None => self.0 = Some(e),
        }
    }

    pub fn at(&mut self, span: Span, msg: impl std::fmt::Display) {
        self.push(syn::Error::new(span, msg));
    }

    /// An error covering every token of `tokens`, not only the first.
    pub fn on(&mut self, tokens: impl quote::ToTokens, msg: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, msg));
    }

    pub fn finish(self) -> syn::Result<()> {
        self.0.map_or(Ok(()), Err)
    }
}

impl Args {
    /// Where `key` first stands among the keys given.
    pub fn order_of(&self, key: &str) -> usize {
        self.order.iter().position(|k| k == key).unwrap_or(0)
    }

    /// Parses the attribute's arguments, collecting every error in `errors`.
    pub fn parse(tokens: proc_macro2::TokenStream, errors: &mut Errors) -> Self {
        let mut args = Self::default();
        let pairs = match syn::parse::Parser::parse2(
            Punctuated::<KeyValue, Token![,]>::parse_terminated,
            tokens,
        ) {
            Ok(p) => p,
            Err(e) => {
                errors.push(e);
                return args;
            }
        };
        for KeyValue { key, value } in pairs {
            args.set(&key, value, errors);
        }
        args
    }

    #[allow(clippy::too_many_lines)] // one arm per key
    fn set(&mut self, key: &Ident, value: Expr, errors: &mut Errors) {
        let k = key.to_string();
        let span = key.span();
        self.order.push(k.clone());
        let dup = |errors: &mut Errors| {
            errors.at(span, format!("`{k}` is given twice; keep one `{k} = ...`"));
        };
        macro_rules! once {
            ($field:ident, $v:expr) => {{
                if self.$field.is_some() {
                    dup(errors);
                } else if let Some(v) = $v {
                    self.$field = Some(v);
                }
            }};
        }
        let wrap = |v| Keyed {
            key: span,
            value: v,
        };
        match k.as_str() {
            "max" => once!(max, parse_max(&value, errors).map(wrap)),
            "attempts" => once!(
                attempts,
                parse_count(&value, "attempts", errors).map(|n| Keyed { key: span, value: n })
            ),
            "backoff" => once!(
                backoff,
                parse_choice(
                    &value,
                    "backoff",
                    &[
                        ("fixed", BackoffKind::Fixed),
                        ("linear", BackoffKind::Linear),
                        ("exp", BackoffKind::Exp),
                    ],
                    errors
                )
                .map(|v| Keyed { key: span, value: v })
            ),
            "jitter" => once!(
                jitter,
                parse_choice(
                    &value,
                    "jitter",
                    &[
                        ("none", JitterKind::None),
                        ("full", JitterKind::Full),
                        ("equal", JitterKind::Equal),
                        ("decorrelated", JitterKind::Decorrelated),
                    ],
                    errors
                )
                .map(|v| Keyed { key: span, value: v })
            ),
            "mode" => once!(
                mode,
                parse_mode(&value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "persist" => once!(
                persist,
                parse_choice(
                    &value,
                    "persist",
                    &[("always", Persist::Always), ("on_failure", Persist::OnFailure)],
                    errors
                )
                .map(|v| Keyed { key: span, value: v })
            ),
            "delay" => once!(
                delay,
                parse_duration_arg(value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "max_delay" => once!(
                max_delay,
                parse_duration_arg(value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "budget" => once!(
                budget,
                parse_duration_arg(value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "timeout" => once!(
                timeout,
                match lit(&value) {
                    Some(Lit::Str(s)) if s.value() == "none" => Some(Timeout::Unlimited(s.span())),
                    _ => parse_duration_arg(value, errors).map(Timeout::Limit),
                }
                .map(|v| Keyed { key: span, value: v })
            ),
            "throttle" => once!(
                throttle,
                parse_throttle(&value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "factor" => once!(
                factor,
                parse_factor(&value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "when" => once!(when, Some(value)),
            "delay_from" => once!(delay_from, Some(value)),
            "on_retry" => once!(on_retry, Some(value)),
            "on_exhausted" => once!(on_exhausted, Some(value)),
            "fallback" => once!(fallback, Some(value)),
            "on_done" => once!(on_done, Some(Keyed { key: span, value })),
            "error_format" => once!(error_format, Some(value)),
            "unique" => once!(
                unique,
                crate::unique::parse(&value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "unique_key" => once!(unique_key, Some(Keyed { key: span, value })),
            "unique_for" => once!(
                unique_for,
                parse_duration_arg(value, errors).map(|v| Keyed { key: span, value: v })
            ),
            "name" => once!(name, lit_str(&value, "name", "name = \"billing::charge\"", errors)),
            "crate" => once!(
                krate,
                lit_str(&value, "crate", "crate = \"::my_retry\"", errors).and_then(|s| {
                    s.parse::<syn::Path>()
                        .map_err(|_| {
                            errors.at(
                                s.span(),
                                "`crate` takes a path to the runtime crate, like `crate = \"::retry_runtime\"`",
                            );
                        })
                        .ok()
                })
            ),
            "max_running" => once!(
                max_running,
                parse_max_running(&value, errors).map(|n| Keyed { key: span, value: n })
            ),
            _ => {
                let hint = match nearest(&k, KEYS) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("the keys are: {}", KEYS.join(", ")),
                };
                errors.at(span, format!("unknown key `{k}` in `#[retry]`; {hint}"));
            }
        }
    }
}

/// The closest name within an edit distance of 3 (and less than the name's length).
pub fn nearest<'a>(word: &str, names: &[&'a str]) -> Option<&'a str> {
    names
        .iter()
        .map(|n| (distance(word, n), *n))
        .filter(|(d, _)| *d <= 3 && *d < word.len())
        .min_by_key(|(d, _)| *d)
        .map(|(_, n)| n)
}

fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let sub = prev[j] + usize::from(ca != *cb);
            cur.push(sub.min(prev[j + 1] + 1).min(cur[j] + 1));
        }
        prev = cur;
    }
    prev[b.len()]
}

fn lit(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(g) => lit(&g.expr),
        _ => None,
    }
}

fn lit_str(value: &Expr, key: &str, example: &str, errors: &mut Errors) -> Option<LitStr> {
    if let Some(Lit::Str(s)) = lit(value) {
        Some(s.clone())
    } else {
        errors.on(
            value,
            format!("`{key}` takes a string literal, like `{example}`"),
        );
        None
    }
}

fn parse_count(value: &Expr, key: &str, errors: &mut Errors) -> Option<Count> {
    // A path, a call, arithmetic: a constant expression, checked by the compiler.
    if !matches!(value, Expr::Lit(_) | Expr::Unary(_)) {
        return Some(Count::Const(Box::new(value.clone())));
    }
    let Some(Lit::Int(i)) = lit(value) else {
        errors.on(
            value,
            format!("`{key}` takes a whole number, like `{key} = 5`, or a constant, like `{key} = RETRIES`"),
        );
        return None;
    };
    match i.base10_parse::<u32>() {
        Ok(0) => {
            let msg = if key == "max" {
                "`max` counts the retries after the first attempt and must be at least 1; \
                 without retries, leave `#[retry]` off"
            } else {
                "`attempts` counts every attempt, the first included, and must be at least 1"
            };
            errors.at(i.span(), msg);
            None
        }
        Ok(n) => Some(Count::Lit(n)),
        Err(_) => {
            errors.at(
                i.span(),
                format!("`{key}` must be a whole number from 1 to {}", u32::MAX),
            );
            None
        }
    }
}

/// `max_running = N`: a whole number of at least 1, or a constant (checked at compile time).
fn parse_max_running(value: &Expr, errors: &mut Errors) -> Option<Count> {
    if let Some(Lit::Int(i)) = lit(value) {
        if matches!(i.base10_parse::<u32>(), Ok(0)) {
            errors.at(
                i.span(),
                "`max_running` is the most attempts of the function that run at once across \
                 every worker, and must be at least 1: with 0 its calls would never run; to \
                 hold them for a while, pause the function (`retry-store pause NAME`)",
            );
            return None;
        }
    }
    if matches!(value, Expr::Lit(_) | Expr::Unary(_)) && !matches!(lit(value), Some(Lit::Int(_))) {
        errors.on(
            value,
            "`max_running` takes a whole number of attempts, like `max_running = 4`, or a \
             constant, like `max_running = QUOTA`",
        );
        return None;
    }
    parse_count(value, "max_running", errors)
}

fn parse_max(value: &Expr, errors: &mut Errors) -> Option<Max> {
    match lit(value) {
        Some(Lit::Str(s)) if s.value() == "forever" => Some(Max::Forever),
        Some(Lit::Str(s)) => {
            errors.at(
                s.span(),
                "`max` takes a whole number (`max = 5`), a constant (`max = RETRIES`) or `\"forever\"`",
            );
            None
        }
        _ => parse_count(value, "max", errors).map(Max::Retries),
    }
}

fn parse_choice<T: Copy>(
    value: &Expr,
    key: &str,
    choices: &[(&str, T)],
    errors: &mut Errors,
) -> Option<T> {
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    let listed = names
        .iter()
        .map(|n| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let Some(Lit::Str(s)) = lit(value) else {
        errors.on(
            value,
            format!(
                "`{key}` takes a string literal, one of {listed}: `{key} = \"{}\"`",
                names[0]
            ),
        );
        return None;
    };
    let v = s.value();
    if let Some((_, t)) = choices.iter().find(|(n, _)| *n == v) {
        return Some(*t);
    }
    let alias = match v.to_ascii_lowercase().as_str() {
        "exponential" | "expo" | "exponent" => Some("exp"),
        "constant" | "const" | "fixed_delay" => Some("fixed"),
        "off" | "no" | "false" => Some("none"),
        "sync" | "blocking" => Some("inline"),
        "async" | "spawn" | "spawned" => Some("background"),
        "hand-off" | "hand_off" => Some("handoff"),
        _ => None,
    }
    .filter(|a| names.contains(a));
    let hint = alias
        .or_else(|| nearest(&v, &names))
        .map_or(String::new(), |n| format!("; did you mean \"{n}\"?"));
    errors.at(
        s.span(),
        format!("unknown {key} \"{v}\": expected one of {listed}{hint}"),
    );
    None
}

fn parse_mode(value: &Expr, errors: &mut Errors) -> Option<ModeArg> {
    parse_choice(
        value,
        "mode",
        &[
            ("inline", ModeArg::Inline),
            ("background", ModeArg::Background),
            ("handoff", ModeArg::Handoff),
            ("durable", ModeArg::Durable),
        ],
        errors,
    )
}

fn parse_factor(value: &Expr, errors: &mut Errors) -> Option<f64> {
    let (f, span) = match lit(value) {
        Some(Lit::Int(i)) => (i.base10_parse::<f64>().ok(), i.span()),
        Some(Lit::Float(x)) => (x.base10_parse::<f64>().ok(), x.span()),
        _ => {
            errors.on(
                value,
                "`factor` takes a number greater than 1, like `factor = 2` or `factor = 1.5`",
            );
            return None;
        }
    };
    match f {
        Some(f) if f > 1.0 && f.is_finite() => Some(f),
        _ => {
            errors.at(
                span,
                "`factor` must be greater than 1, or the waits would not grow; for equal waits use `backoff = \"fixed\"`",
            );
            None
        }
    }
}

/// `throttle = "20%"`: a whole percentage from 1 to 100.
fn parse_throttle(value: &Expr, errors: &mut Errors) -> Option<u32> {
    let Some(Lit::Str(s)) = lit(value) else {
        errors.on(
            value,
            "`throttle` takes a percentage in a string, like `throttle = \"20%\"`: retries may \
             add at most that share to the function's calls",
        );
        return None;
    };
    let text = s.value();
    let why = match text.strip_suffix('%').map(str::parse::<u32>) {
        Some(Ok(p @ 1..=100)) => return Some(p),
        Some(Ok(0)) => {
            "0% would refuse every retry beyond the floor; to disable retries, leave `#[retry]` off"
                .to_string()
        }
        Some(Ok(_)) => "it is more than 100%".to_string(),
        Some(Err(_)) => "the share must be a whole number".to_string(),
        None => match text.parse::<f64>() {
            Ok(f) if f > 0.0 && f < 1.0 => format!(
                "a share is written as a percentage; did you mean \"{}%\"?",
                (f * 100.0).round()
            ),
            Ok(_) => format!("it has no `%`; did you mean \"{text}%\"?"),
            Err(_) => "it is not a percentage".to_string(),
        },
    };
    errors.at(
        s.span(),
        format!(
            "invalid throttle \"{text}\": {why}; write a whole percentage from 1% to 100%, \
             like `throttle = \"20%\"`"
        ),
    );
    None
}

fn parse_duration_arg(value: Expr, errors: &mut Errors) -> Option<DurationArg> {
    match lit(&value) {
        Some(Lit::Str(s)) => match parse_duration(&s.value()) {
            Ok((secs, nanos)) => Some(DurationArg::Lit { secs, nanos }),
            Err(why) => {
                errors.at(
                    s.span(),
                    format!(
                        "invalid duration \"{}\": {why}; {}, or give a `std::time::Duration` expression",
                        s.value(),
                        retry_duration::HOW,
                    ),
                );
                None
            }
        },
        Some(other) => {
            errors.at(
                other.span(),
                "a duration is a string like \"250ms\" or a `std::time::Duration` expression; a bare number has no unit",
            );
            None
        }
        None => Some(DurationArg::Expr(Box::new(value))),
    }
}

/// Parses `"250ms"`, `"1.5s"`, `"1m30s"` into whole seconds and nanoseconds (the grammar is
/// `retry-duration`'s, shared with the runtime and `retry-store`).
pub fn parse_duration(text: &str) -> Result<(u64, u32), String> {
    retry_duration::parse(text).map(|d| (d.as_secs(), d.subsec_nanos()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok((0, 250_000_000)));
        assert_eq!(parse_duration("1.5s"), Ok((1, 500_000_000)));
        assert_eq!(parse_duration("2m"), Ok((120, 0)));
        assert_eq!(parse_duration("1m30s"), Ok((90, 0)));
        assert_eq!(parse_duration("7us"), Ok((0, 7_000)));
        assert_eq!(parse_duration("0ms"), Ok((0, 0)));
        assert!(parse_duration("5 sec").is_err());
        assert!(parse_duration("-1s").is_err());
        assert!(parse_duration("1ms5").is_err());
        assert!(parse_duration("1.s").is_err());
        assert!(parse_duration("99999999999999999999999999h").is_err());
        assert!(parse_duration("1.0000000001s").is_err());
        assert!(parse_duration("").is_err());
    }

    #[test]
    fn throttles() {
        let parse = |src: &str| {
            let mut errors = Errors::default();
            let v = parse_throttle(&syn::parse_str(src).unwrap(), &mut errors);
            (v, errors.finish().err().map(|e| e.to_string()))
        };
        assert_eq!(parse("\"20%\""), (Some(20), None));
        assert_eq!(parse("\"100%\"").0, Some(100));
        for (bad, says) in [
            ("\"0.2\"", "did you mean \"20%\"?"),
            ("\"20\"", "did you mean \"20%\"?"),
            ("\"150%\"", "more than 100%"),
            ("\"0%\"", "leave `#[retry]` off"),
            ("\"2.5%\"", "whole number"),
            ("20", "takes a percentage in a string"),
        ] {
            let (v, e) = parse(bad);
            assert_eq!(v, None, "{bad}");
            let e = e.unwrap();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn nearest_key() {
        assert_eq!(nearest("maxdelay", KEYS), Some("max_delay"));
        assert_eq!(nearest("retries", KEYS), None);
        assert_eq!(nearest("tiemout", KEYS), Some("timeout"));
    }
}
