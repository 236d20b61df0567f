//! Rewriting the function into calls of the runtime.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Pat, PatIdent, ReturnType, Type};

use crate::attr::{Args, BackoffKind, DurationArg, Errors, JitterKind, Max, Mode};
use crate::valid;

/// The whole macro: parse, check, expand. On any error the function is emitted unchanged
/// beside the errors, so the rest of the crate still type-checks.
pub fn retry(args: TokenStream, item: &TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse(args, &mut errors);
    let Ok(func) = syn::parse2::<ItemFn>(item.clone()) else {
        errors.push(valid::not_a_function(item.clone()));
        return with_errors(errors, item);
    };
    valid::check(&args, &func.sig, &mut errors);
    if let Err(e) = errors.finish() {
        let errs = e.to_compile_error();
        return quote!(#errs #item);
    }
    expand(&args, func)
}

fn with_errors(errors: Errors, item: &TokenStream) -> TokenStream {
    let errs = errors.finish().err().map(|e| e.to_compile_error());
    quote!(#errs #item)
}

/// Gives every token of `tokens` the span `span`, so an error in it points at the user's token.
fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut t| {
            if let TokenTree::Group(g) = &t {
                let mut ng = proc_macro2::Group::new(g.delimiter(), respan(g.stream(), span));
                ng.set_span(span);
                t = TokenTree::Group(ng);
            } else {
                t.set_span(span);
            }
            t
        })
        .collect()
}

/// Replaces the receiver `self` with `__retry_self` (not `self::` paths).
fn replace_self(tokens: TokenStream) -> TokenStream {
    let mut out = Vec::new();
    let mut iter = tokens.into_iter().peekable();
    while let Some(t) = iter.next() {
        match t {
            TokenTree::Ident(i) if i == "self" => {
                let is_path =
                    matches!(iter.peek(), Some(TokenTree::Punct(p)) if p.as_char() == ':');
                if is_path {
                    out.push(TokenTree::Ident(i));
                } else {
                    out.push(TokenTree::Ident(Ident::new("__retry_self", i.span())));
                }
            }
            TokenTree::Group(g) => {
                let mut ng = proc_macro2::Group::new(g.delimiter(), replace_self(g.stream()));
                ng.set_span(g.span());
                out.push(TokenTree::Group(ng));
            }
            other => out.push(other),
        }
    }
    out.into_iter().collect()
}

fn duration_tokens(d: &DurationArg) -> TokenStream {
    match d {
        DurationArg::Lit { secs, nanos } => quote!(::core::time::Duration::new(#secs, #nanos)),
        DurationArg::Expr(e) => e.to_token_stream(),
    }
}

/// The policy as a struct literal, and whether it is constant.
fn policy_tokens(args: &Args, private: &TokenStream) -> (TokenStream, bool) {
    let max = match (&args.max, &args.attempts) {
        (Some(m), _) => match m.value {
            Max::Retries(n) => quote!(::core::option::Option::Some(#n)),
            Max::Forever => quote!(::core::option::Option::None),
        },
        (None, Some(a)) => {
            let n = a.value - 1;
            quote!(::core::option::Option::Some(#n))
        }
        (None, None) => quote!(::core::option::Option::Some(3u32)),
    };
    let backoff = match args.backoff.as_ref().map_or(BackoffKind::Exp, |b| b.value) {
        BackoffKind::Fixed => quote!(#private::Backoff::Fixed),
        BackoffKind::Linear => quote!(#private::Backoff::Linear),
        BackoffKind::Exp => {
            let f = args.factor.as_ref().map_or(2.0, |f| f.value);
            quote!(#private::Backoff::Exponential { factor: #f })
        }
    };
    let jitter = match args.jitter.as_ref().map_or(JitterKind::None, |j| j.value) {
        JitterKind::None => quote!(#private::Jitter::None),
        JitterKind::Full => quote!(#private::Jitter::Full),
        JitterKind::Equal => quote!(#private::Jitter::Equal),
        JitterKind::Decorrelated => quote!(#private::Jitter::Decorrelated),
    };
    let mut constant = true;
    let mut opt = |d: Option<&DurationArg>| match d {
        None => quote!(::core::option::Option::None),
        Some(d) => {
            constant &= matches!(d, DurationArg::Lit { .. });
            let t = duration_tokens(d);
            quote!(::core::option::Option::Some(#t))
        }
    };
    let max_delay = opt(args.max_delay.as_ref().map(|d| &d.value));
    let budget = opt(args.budget.as_ref().map(|d| &d.value));
    let timeout = opt(args.timeout.as_ref().map(|d| &d.value));
    let delay = match args.delay.as_ref().map(|d| &d.value) {
        None => quote!(::core::time::Duration::from_millis(100)),
        Some(d) => {
            constant &= matches!(d, DurationArg::Lit { .. });
            duration_tokens(d)
        }
    };
    let tokens = quote! {
        #private::Policy {
            max_retries: #max,
            backoff: #backoff,
            delay: #delay,
            max_delay: #max_delay,
            jitter: #jitter,
            budget: #budget,
            timeout: #timeout,
        }
    };
    (tokens, constant)
}

/// The per-attempt rebinding of the arguments, and the signature's new patterns.
struct Rebind {
    lets: Vec<TokenStream>,
    by_value: bool,
}

fn rebind_args(func: &mut ItemFn, private: &TokenStream) -> Rebind {
    let mut lets = Vec::new();
    let mut by_value = false;
    for (i, arg) in func.sig.inputs.iter_mut().enumerate() {
        match arg {
            FnArg::Receiver(r) if r.reference.is_none() && r.colon_token.is_none() => {
                by_value = true;
                let m = r.mutability.take();
                let fresh = respan(quote!(#private::fresh(&self)), r.self_token.span);
                lets.push(quote!(let #m __retry_self = #fresh;));
            }
            FnArg::Receiver(_) => {}
            FnArg::Typed(pt) => {
                if matches!(*pt.ty, Type::Reference(_)) || matches!(*pt.pat, Pat::Wild(_)) {
                    continue;
                }
                by_value = true;
                let span = pt.ty.span();
                match &mut *pt.pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        mutability,
                        ident,
                        subpat: None,
                        ..
                    }) => {
                        let m = mutability.take();
                        let fresh = respan(quote!(#private::fresh(&#ident)), span);
                        lets.push(quote!(let #m #ident = #fresh;));
                    }
                    pat => {
                        let name = format_ident!("__retry_arg{}", i);
                        let fresh = respan(quote!(#private::fresh(&#name)), span);
                        lets.push(quote!(let #pat = #fresh;));
                        *pat = Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: name,
                            subpat: None,
                        });
                    }
                }
            }
        }
    }
    Rebind { lets, by_value }
}

fn hook(private: &TokenStream, which: &str, ret: &Type, e: Option<&Expr>) -> TokenStream {
    match e {
        None => quote!(#private::NoHook),
        Some(e) => {
            let f = Ident::new(which, e.span());
            quote!(#private::#f::<#ret, _>(#e))
        }
    }
}

// Input:
//     #[retry(max = 2)]
//     async fn get(&self, id: Id) -> Result<T, E> { BODY }
// Output:
//     async fn get(&self, id: Id) -> Result<T, E> {
//         static __RETRY_SITE: Site = ...;       // name and span callsite
//         const __RETRY_POLICY: Policy = ...;    // or a `let` when a duration is an expression
//         let hooks = Hooks { ... };
//         let mut call = Call::<Result<T, E>, TokioClock>::new(&__RETRY_SITE, &__RETRY_POLICY);
//         loop {
//             let out = call.attempt_async(async { let id = fresh(&id); BODY }).await;
//             match call.settle(out, &hooks) {
//                 Step::Done(r) => break r,
//                 Step::Wait(d) => call.wait(d).await,
//             }
//         }
//     }
// A sync function is the same with a closure `|| { ...; BODY }` and a blocking wait.
#[allow(clippy::too_many_lines)] // split up with the background modes
fn expand(args: &Args, mut func: ItemFn) -> TokenStream {
    let krate = args
        .krate
        .clone()
        .unwrap_or_else(|| syn::parse_quote!(::retry_runtime));
    let private = quote!(#krate::__private);
    let is_async = func.sig.asyncness.is_some();
    let mode = args.mode.as_ref().map_or(Mode::Inline, |m| m.value);
    if mode != Mode::Inline {
        let span = args.mode.as_ref().map_or_else(Span::call_site, |m| m.key);
        let err = syn::Error::new(
            span,
            "modes \"background\" and \"handoff\" are not available yet; use mode = \"inline\"",
        )
        .to_compile_error();
        return quote!(#err #func);
    }

    let ret: Type = match &func.sig.output {
        ReturnType::Default => syn::parse_quote_spanned!(func.sig.ident.span()=> ()),
        ReturnType::Type(_, t) => (**t).clone(),
    };
    let ret_span = match &func.sig.output {
        ReturnType::Default => func.sig.ident.span(),
        ReturnType::Type(_, t) => t.span(),
    };

    let name = args.name.as_ref().map_or_else(
        || {
            let f = func.sig.ident.to_string();
            let suffix = format!("::{}", f.strip_prefix("r#").unwrap_or(&f));
            quote!(::core::concat!(::core::module_path!(), #suffix))
        },
        ToTokens::to_token_stream,
    );

    let rebind = rebind_args(&mut func, &private);
    let self_by_value = valid::self_by_value(&func)
        || rebind
            .lets
            .iter()
            .any(|l| l.to_string().contains("__retry_self"));
    let lets = &rebind.lets;
    let block = if self_by_value {
        replace_self(func.block.to_token_stream())
    } else {
        func.block.to_token_stream()
    };

    let (policy, constant) = policy_tokens(args, &private);
    let mixed = Span::mixed_site();
    let policy_ref = Ident::new("__retry_policy", mixed);
    let policy_item = if constant {
        quote! {
            const __RETRY_POLICY: #private::Policy = #policy;
            let #policy_ref: &#private::Policy = &__RETRY_POLICY;
        }
    } else {
        quote!(let #policy_ref: &#private::Policy = &#policy;)
    };

    let hooks = Ident::new("__retry_hooks", mixed);
    let when = hook(&private, "when", &ret, args.when.as_ref());
    let delay_from = hook(&private, "delay_from", &ret, args.delay_from.as_ref());
    let on_retry = hook(&private, "on_retry", &ret, args.on_retry.as_ref());
    let on_exhausted = hook(&private, "on_exhausted", &ret, args.on_exhausted.as_ref());
    let fallback = hook(&private, "fallback", &ret, args.fallback.as_ref());

    let call = Ident::new("__retry_call", mixed);
    let out = Ident::new("__retry_out", mixed);
    let done = Ident::new("__retry_done", mixed);
    let wait = Ident::new("__retry_wait", mixed);
    let clock = if is_async {
        quote!(#private::TokioClock)
    } else {
        quote!(#private::SyncClock)
    };
    let assert_result = quote_spanned!(ret_span=> #private::assert_result::<#ret>(););

    let run = if is_async {
        let fake_return = quote_spanned! {ret_span=>
            #[allow(
                unreachable_code,
                clippy::diverging_sub_expression,
                clippy::empty_loop,
                clippy::let_unit_value,
                clippy::needless_return,
                clippy::unreachable
            )]
            if false {
                let __retry_fake: #ret = loop {};
                return __retry_fake;
            }
        };
        let body = quote!(async { #(#lets)* #fake_return #block });
        let attempt = args.timeout.as_ref().map_or_else(
            || quote!(#call.attempt_async(#body).await),
            |t| {
                let limit = duration_tokens(&t.value);
                quote!(#call.attempt_timeout(#limit, #body).await)
            },
        );
        quote! {
            loop {
                let #out = #attempt;
                match #call.settle(#out, &#hooks) {
                    #private::Step::Done(#done) => break #done,
                    #private::Step::Wait(#wait) => #call.wait(#wait).await,
                }
            }
        }
    } else {
        quote! {
            loop {
                let #out = #call.attempt(|| { #(#lets)* #block });
                match #call.settle(#out, &#hooks) {
                    #private::Step::Done(#done) => break #done,
                    #private::Step::Wait(#wait) => #call.wait(#wait),
                }
            }
        }
    };

    let body = quote! {
        {
            static __RETRY_SITE: #private::Site = #private::Site {
                name: #name,
                span: {
                    fn __retry_span() -> #private::tracing::Span {
                        #private::tracing::info_span!(
                            target: ::core::module_path!(),
                            #name,
                            cid = #private::tracing::field::Empty,
                            attempt = #private::tracing::field::Empty,
                        )
                    }
                    __retry_span
                },
            };
            #assert_result
            #policy_item
            let #hooks = #private::Hooks {
                when: #when,
                delay_from: #delay_from,
                on_retry: #on_retry,
                on_exhausted: #on_exhausted,
                fallback: #fallback,
            };
            let mut #call = #private::Call::<#ret, #clock>::new(&__RETRY_SITE, #policy_ref);
            #run
        }
    };

    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let allow = rebind
        .by_value
        .then(|| quote!(#[allow(clippy::needless_pass_by_value)]));
    quote! {
        #(#attrs)*
        #allow
        #vis #sig #body
    }
}
