//! The policy a call runs under, built from the plan's keys, and the timed-out error's maker.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

use super::tokens::respan;
use crate::attr::{Count, DurationArg, JitterKind};
use crate::plan::{Backoff, Policy, Retries};

/// The maker of a timed-out attempt's error; a missing `From<TimedOut>` is reported once, at
/// the `timeout` key.
pub fn timeout_maker(private: &TokenStream, key: Span) -> TokenStream {
    respan(quote!(#private::timeout_error(__retry_r)), key)
}

pub(super) fn duration_tokens(d: &DurationArg) -> TokenStream {
    match d {
        DurationArg::Lit { secs, nanos } => quote!(::core::time::Duration::new(#secs, #nanos)),
        DurationArg::Expr(e) => e.to_token_stream(),
    }
}

/// A count as a `u32` expression: a checked literal as is, a constant expression through a
/// `const` (so it must be one) with a compile-time check that it is at least `min`.
pub fn count_tokens(c: &Count, min: u32, key: &str) -> TokenStream {
    match c {
        Count::Lit(n) => quote!(#n),
        Count::Const(e) => {
            let msg = format!("`{key}` must be at least {min}");
            let span = e.span();
            let name = Ident::new("__RETRY_COUNT", span);
            quote_spanned! {span=> {
                const #name: u32 = #e;
                const { ::core::assert!(#name >= #min, #msg) };
                #name
            }}
        }
    }
}

/// The policy: [`Policy::new()`] with a call of its `const` builder for each key the user
/// wrote (the defaults live in the runtime), and whether it is a constant.
pub fn policy_tokens(policy: &Policy, private: &TokenStream) -> (TokenStream, bool) {
    let mut calls = Vec::new();
    let mut constant = true;
    match &policy.retries {
        Some(Retries::Max(c)) => {
            let n = count_tokens(c, 1, "max");
            calls.push(quote!(.max_retries(::core::option::Option::Some(#n))));
        }
        Some(Retries::Attempts(c)) => {
            let n = count_tokens(c, 1, "attempts");
            calls.push(quote!(.max_retries(::core::option::Option::Some(#n - 1))));
        }
        Some(Retries::Forever) => calls.push(quote!(.max_retries(::core::option::Option::None))),
        None => {}
    }
    match policy.backoff {
        Some(Backoff::Fixed) => calls.push(quote!(.backoff(#private::Backoff::Fixed))),
        Some(Backoff::Linear) => calls.push(quote!(.backoff(#private::Backoff::Linear))),
        Some(Backoff::Exponential { factor }) => {
            calls.push(quote!(.backoff(#private::Backoff::Exponential { factor: #factor })));
        }
        None => {}
    }
    if let Some(j) = policy.jitter {
        let j = match j {
            JitterKind::None => quote!(None),
            JitterKind::Full => quote!(Full),
            JitterKind::Equal => quote!(Equal),
            JitterKind::Decorrelated => quote!(Decorrelated),
        };
        calls.push(quote!(.jitter(#private::Jitter::#j)));
    }
    let mut duration = |d: &DurationArg| {
        constant &= matches!(d, DurationArg::Lit { .. });
        duration_tokens(d)
    };
    if let Some(d) = &policy.delay {
        let d = duration(d);
        calls.push(quote!(.delay(#d)));
    }
    for (key, value) in [
        ("max_delay", policy.max_delay.as_ref()),
        ("budget", policy.budget.as_ref()),
        ("timeout", policy.timeout.as_ref().map(|(d, _)| d)),
    ] {
        if let Some(v) = value {
            let d = duration(v);
            let method = Ident::new(key, Span::call_site());
            calls.push(quote!(.#method(::core::option::Option::Some(#d))));
        }
    }
    if policy.unlimited {
        calls.push(quote!(.timeout(::core::option::Option::Some(::core::time::Duration::MAX))));
    }
    if let Some(p) = policy.throttle {
        calls
            .push(quote!(.throttle(::core::option::Option::Some(#private::Throttle::percent(#p)))));
    }
    (quote!(#private::Policy::new() #(#calls)*), constant)
}
