//! Rules across keys, and between the keys and the function they decorate.

use proc_macro2::Span;
use quote::ToTokens;
use syn::{FnArg, ItemFn, Signature, Type};

use crate::attr::{Args, BackoffKind, Count, Errors, Keyed, Max, ModeArg, Persist, Timeout};
use crate::plan::{Backoff, Hooks, Mode, Plan, Policy, Retries};

/// Checks the keys against each other and against the function's signature, and resolves
/// them into the plan the expansion follows; every error found, the parser's included, is
/// reported at once.
pub fn plan(args: Args, sig: &Signature, mut errors: Errors) -> syn::Result<Plan> {
    let mode = match (args.mode.as_ref().map(|m| m.value), &args.persist) {
        (None | Some(ModeArg::Inline), _) => Mode::Inline,
        (Some(ModeArg::Handoff), _) => Mode::Handoff,
        (Some(ModeArg::Background), _) => Mode::Background,
        (Some(ModeArg::Durable), persist) => Mode::Durable {
            persist: persist.as_ref().map_or(Persist::Always, |p| p.value),
        },
    };
    check(&args, mode, sig, &mut errors);
    errors.finish()?;
    Ok(resolve(args, mode, sig))
}

/// The plan of an attribute that passed every check.
fn resolve(mut args: Args, mode: Mode, sig: &Signature) -> Plan {
    let unique = crate::unique::plan(&mut args);
    let retries = match (args.max, args.attempts) {
        (Some(m), _) => Some(match m.value {
            Max::Retries(c) => Retries::Max(c),
            Max::Forever => Retries::Forever,
        }),
        (None, Some(a)) => Some(Retries::Attempts(a.value)),
        (None, None) => None,
    };
    let factor = args.factor.map(|f| f.value);
    let backoff = match args.backoff.map(|b| b.value) {
        Some(BackoffKind::Fixed) => Some(Backoff::Fixed),
        Some(BackoffKind::Linear) => Some(Backoff::Linear),
        Some(BackoffKind::Exp) => Some(Backoff::Exponential {
            factor: factor.unwrap_or(2.0),
        }),
        None => factor.map(|factor| Backoff::Exponential { factor }),
    };
    let unlimited = matches!(
        args.timeout,
        Some(Keyed {
            value: Timeout::Unlimited(_),
            ..
        })
    );
    Plan {
        mode,
        is_async: sig.asyncness.is_some(),
        policy: Policy {
            retries,
            backoff,
            jitter: args.jitter.map(|j| j.value),
            delay: args.delay.map(|d| d.value),
            max_delay: args.max_delay.map(|d| d.value),
            budget: args.budget.map(|d| d.value),
            timeout: args.timeout.and_then(|t| match t.value {
                Timeout::Limit(d) => Some((d, t.key)),
                Timeout::Unlimited(_) => None,
            }),
            unlimited,
            throttle: args.throttle.map(|t| t.value),
        },
        hooks: Hooks {
            when: args.when,
            delay_from: args.delay_from,
            on_retry: args.on_retry,
            on_exhausted: args.on_exhausted,
            fallback: args.fallback,
            on_done: args.on_done.map(|d| d.value),
            error_format: args.error_format,
        },
        name: args.name,
        unique,
        krate: args
            .krate
            .unwrap_or_else(|| syn::parse_quote!(::retry_runtime)),
        max_running: args.max_running.map(|m| m.value),
    }
}

fn check(args: &Args, mode: Mode, sig: &Signature, errors: &mut Errors) {
    if let (Some(max), Some(attempts)) = (&args.max, &args.attempts) {
        let (later, other) = if args.order_of("attempts") > args.order_of("max") {
            (attempts.key, "max")
        } else {
            (max.key, "attempts")
        };
        let suggestion = match &max.value {
            Max::Retries(Count::Lit(n)) => {
                format!("`max = {n}` is `attempts = {}`", u64::from(*n) + 1)
            }
            Max::Retries(Count::Const(_)) => "`max = N` is `attempts = N + 1`".to_string(),
            Max::Forever => "`max = \"forever\"` has no attempt limit".to_string(),
        };
        errors.at(
            later,
            format!(
                "`max` and `attempts` both set the number of attempts; keep one \
                 (remove `{other}` or this one): {suggestion}"
            ),
        );
    }
    if let Some(f) = &args.factor {
        if let Some(b) = args
            .backoff
            .as_ref()
            .filter(|b| b.value != BackoffKind::Exp)
        {
            let later = if args.order_of("backoff") > args.order_of("factor") {
                b.key
            } else {
                f.key
            };
            errors.at(
                later,
                "`factor` is the multiplier of `backoff = \"exp\"` and has no effect on fixed or linear backoff; \
                 remove it or use `backoff = \"exp\"`",
            );
        }
    }
    if let Some(Keyed {
        value: Timeout::Unlimited(none),
        ..
    }) = &args.timeout
    {
        if !matches!(mode, Mode::Durable { .. }) {
            errors.at(
                *none,
                "`timeout = \"none\"` is for `mode = \"durable\"`, whose attempts have a default \
                 time limit; in this mode an attempt has no limit unless `timeout` sets one: \
                 remove `timeout`",
            );
        }
    } else if let Some(t) = &args.timeout {
        if sig.asyncness.is_none() {
            errors.at(
                t.key,
                "`timeout` needs an `async fn`: a running sync attempt cannot be interrupted; \
                 make the function `async` or remove `timeout`",
            );
        }
    }
    if let Some(d) = &args.on_done {
        if mode == Mode::Inline {
            errors.at(
                d.key,
                "`on_done` is for `mode = \"background\"` and `mode = \"handoff\"`; an inline call \
                 returns its outcome to the caller: use `on_exhausted` or `fallback`",
            );
        }
    }
    if let Some(p) = &args.persist {
        if !matches!(mode, Mode::Durable { .. }) {
            errors.at(
                p.key,
                "`persist` says when a durable call is written to the store; it needs \
                 `mode = \"durable\"`",
            );
        }
    }
    check_max_running(args, mode, errors);
    crate::unique::check(args, mode, sig, errors);
    match mode {
        Mode::Inline => {}
        Mode::Durable { .. } => check_durable(args, sig, errors),
        Mode::Handoff | Mode::Background => check_owned_args(sig, mode, errors),
    }
    if let Some(c) = &sig.constness {
        errors.at(
            c.span,
            "`#[retry]` cannot go on a `const fn`: retrying waits between attempts, which a \
             const fn cannot do; remove `const`",
        );
    }
}

/// `max_running` is enforced by the store's claim, so only durable calls have it.
fn check_max_running(args: &Args, mode: Mode, errors: &mut Errors) {
    if let Some(m) = &args.max_running {
        if !matches!(mode, Mode::Durable { .. }) {
            errors.at(
                m.key,
                format!(
                    "`max_running` limits the attempts of a durable function running at once \
                     across every worker of its store, which enforces it when workers claim \
                     calls; it needs `mode = \"durable\"` (this is `mode = \"{}\"`): add \
                     it, or limit the calls in this process yourself (e.g. a \
                     `tokio::sync::Semaphore`)",
                    mode.name()
                ),
            );
        }
    }
}

/// The error for an item that is not a function with a body.
pub fn not_a_function(item: proc_macro2::TokenStream) -> syn::Error {
    if let Ok(f) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
        if f.default.is_none() {
            return syn::Error::new(
                f.sig.fn_token.span,
                "`#[retry]` needs a function body to retry; put it on the method in the `impl` block",
            );
        }
    }
    let span = match syn::parse2::<syn::Item>(item) {
        Ok(syn::Item::Struct(s)) => s.struct_token.span,
        Ok(syn::Item::Enum(e)) => e.enum_token.span,
        Ok(syn::Item::Impl(i)) => i.impl_token.span,
        Ok(syn::Item::Trait(t)) => t.trait_token.span,
        Ok(syn::Item::Mod(m)) => m.mod_token.span,
        Ok(syn::Item::Const(c)) => c.const_token.span,
        Ok(syn::Item::Static(s)) => s.static_token.span,
        Ok(syn::Item::Type(t)) => t.type_token.span,
        Ok(syn::Item::Use(u)) => u.use_token.span,
        _ => Span::call_site(),
    };
    syn::Error::new(
        span,
        "`#[retry]` goes on a function (`fn` or `async fn`) that returns a `Result`",
    )
}

/// Whether a receiver is owned (`self`, `mut self`, `self: Arc<Self>`, `self: Box<Self>`)
/// rather than borrowed (`&self`, `&mut self`, `self: &Self`).
pub fn owned_receiver(r: &syn::Receiver) -> bool {
    r.reference.is_none() && !matches!(*r.ty, Type::Reference(_))
}

/// Whether the function takes `self` by value (the body's `self` is rebound per attempt).
pub fn self_by_value(f: &ItemFn) -> bool {
    f.sig.receiver().is_some_and(owned_receiver)
}

/// A durable call is stored and run later by a worker, maybe in another process: it has no
/// `self`, no type parameters, and arguments that are owned, named values.
fn check_durable(args: &Args, sig: &Signature, errors: &mut Errors) {
    if let Some(f) = &args.fallback {
        errors.on(
            f,
            "a durable call's outcome is recorded in the store, where no caller waits for a \
             fallback value; remove `fallback` and use `on_exhausted` or `on_done`",
        );
    }
    if let Some(p) = sig.generics.type_params().next() {
        errors.on(
            p,
            "a durable function is registered under one name for a worker to run, so it \
             cannot be generic; use concrete types",
        );
    }
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) => errors.on(
                r,
                "a durable call is stored and run later by a worker, which has no `self`: \
                 make it a free function and pass what it needs as arguments",
            ),
            FnArg::Typed(pt) => {
                if matches!(*pt.ty, Type::Reference(_) | Type::ImplTrait(_)) {
                    errors.on(
                        &pt.ty,
                        "a durable call's arguments are stored as JSON and read back by a \
                         worker, so each must be an owned, concrete type (`String`, not `&str`)",
                    );
                } else if !matches!(*pt.pat, syn::Pat::Ident(_)) {
                    errors.on(
                        &pt.pat,
                        "a durable call's arguments are stored under their names, so each must \
                         be a plain name (`order: Order`), not a pattern",
                    );
                }
            }
        }
    }
}

/// Background and hand-off attempts run after the function returned: no borrowed arguments.
fn check_owned_args(sig: &Signature, mode: Mode, errors: &mut Errors) {
    let mode = mode.name();
    for arg in &sig.inputs {
        match arg {
            FnArg::Receiver(r) if !owned_receiver(r) => errors.on(
                r,
                format!(
                    "`mode = \"{mode}\"` runs attempts after the call has returned, so they cannot \
                     borrow `self`; take `self` by value (a cheap `Clone`, such as a struct of \
                     `Arc`s) or use `mode = \"inline\"`"
                ),
            ),
            FnArg::Typed(pt) => {
                if let Type::Reference(r) = &*pt.ty {
                    let owned = owned_suggestion(&r.elem);
                    let ty = pt.ty.to_token_stream().to_string().replace("& ", "&");
                    errors.on(
                        &pt.ty,
                        format!(
                            "`mode = \"{mode}\"` runs attempts after the call has returned, so \
                             arguments must be owned (`Send + 'static`), not borrowed: take \
                             {owned} instead of `{ty}`"
                        ),
                    );
                }
            }
            FnArg::Receiver(_) => {}
        }
    }
}

fn owned_suggestion(elem: &Type) -> String {
    let inner = elem.to_token_stream().to_string().replace(' ', "");
    match inner.as_str() {
        "str" => "`String`".into(),
        "Path" | "std::path::Path" => "`PathBuf`".into(),
        "OsStr" | "std::ffi::OsStr" => "`OsString`".into(),
        "CStr" | "std::ffi::CStr" => "`CString`".into(),
        _ => match elem {
            Type::Slice(s) => format!(
                "`Vec<{}>`",
                s.elem.to_token_stream().to_string().replace(' ', "")
            ),
            _ => format!("`{inner}` (or `Arc<{inner}>` if cloning it is costly)"),
        },
    }
}
