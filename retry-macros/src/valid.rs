//! Rules across keys, and between the keys and the function they decorate.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{ItemFn, Signature};

use crate::attr::{Args, BackoffKind, Errors, Max, Mode};

/// Checks the keys against each other and against the function's signature.
pub fn check(args: &Args, sig: &Signature, errors: &mut Errors) {
    if let (Some(max), Some(attempts)) = (&args.max, &args.attempts) {
        let (later, other) = if args.order_of("attempts") > args.order_of("max") {
            (attempts.key, "max")
        } else {
            (max.key, "attempts")
        };
        let suggestion = match max.value {
            Max::Retries(n) => format!("`max = {n}` is `attempts = {}`", u64::from(n) + 1),
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
        if args
            .backoff
            .as_ref()
            .is_some_and(|b| b.value != BackoffKind::Exp)
        {
            errors.at(
                f.key,
                "`factor` is the multiplier of `backoff = \"exp\"` and has no effect on fixed or linear backoff; \
                 remove it or use `backoff = \"exp\"`",
            );
        }
    }
    if let Some(t) = &args.timeout {
        if sig.asyncness.is_none() {
            errors.at(
                t.key,
                "`timeout` needs an `async fn`: a running sync attempt cannot be interrupted; \
                 make the function `async` or remove `timeout`",
            );
        }
    }
    let mode = args.mode.as_ref().map_or(Mode::Inline, |m| m.value);
    if let Some(d) = &args.on_done {
        if mode == Mode::Inline {
            errors.at(
                d.key,
                "`on_done` is for `mode = \"background\"` and `mode = \"handoff\"`; an inline call \
                 returns its outcome to the caller: use `on_exhausted` or `fallback`",
            );
        }
    }
    if let Some(c) = &sig.constness {
        errors.at(
            c.span,
            "`#[retry]` cannot go on a `const fn`: retrying waits between attempts, which a \
             const fn cannot do; remove `const`",
        );
    }
    if let Some(v) = &sig.variadic {
        errors.at(v.span(), "`#[retry]` cannot retry a variadic function");
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

/// Whether the function takes `self` by value (the body's `self` is rebound per attempt).
pub fn self_by_value(f: &ItemFn) -> bool {
    f.sig
        .receiver()
        .is_some_and(|r| r.reference.is_none() && r.colon_token.is_none())
}
