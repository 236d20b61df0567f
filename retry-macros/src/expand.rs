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

/// The maker of a timed-out attempt's error; a missing `From<TimedOut>` is reported once, at
/// the `timeout` key.
fn timeout_maker(private: &TokenStream, key: Span) -> TokenStream {
    respan(quote!(#private::timeout_error(__retry_r)), key)
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
    /// `Send` checks of the by-value arguments (spawned modes).
    send_checks: Vec<TokenStream>,
    by_value: bool,
}

/// Whether `name` appears in `tokens`, as an identifier or inside a literal (an inline
/// format argument such as `"{id}"`).
fn mentions(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == name,
        TokenTree::Literal(l) => l.to_string().contains(name),
        TokenTree::Group(g) => mentions(&g.stream(), name),
        TokenTree::Punct(_) => false,
    })
}

/// Rebinds each by-value argument to a fresh clone inside every attempt. Inline, an argument
/// the body never names is not cloned at all (the attempt borrows it); a spawned attempt
/// must own its copy of every argument (`spawned`).
fn rebind_args(func: &mut ItemFn, private: &TokenStream, spawned: bool) -> Rebind {
    let body = func.block.to_token_stream();
    let mut lets = Vec::new();
    let mut send_checks = Vec::new();
    let mut by_value = false;
    let allow = spawned.then(|| quote!(#[allow(unused_variables)]));
    for (i, arg) in func.sig.inputs.iter_mut().enumerate() {
        match arg {
            FnArg::Receiver(r) if r.reference.is_none() && r.colon_token.is_none() => {
                by_value = true;
                let m = r.mutability.take();
                let fresh = respan(quote!(#private::fresh(&self)), r.self_token.span);
                lets.push(quote!(#allow let #m __retry_self = #fresh;));
                send_checks.push(respan(
                    quote!(#private::send_arg(&self);),
                    r.self_token.span,
                ));
            }
            FnArg::Receiver(_) => {}
            FnArg::Typed(pt) => {
                if matches!(*pt.ty, Type::Reference(_)) || matches!(*pt.pat, Pat::Wild(_)) {
                    continue;
                }
                let span = pt.ty.span();
                match &mut *pt.pat {
                    Pat::Ident(PatIdent {
                        by_ref: None,
                        mutability,
                        ident,
                        subpat: None,
                        ..
                    }) => {
                        if !spawned && !mentions(&body, &ident.to_string()) {
                            continue;
                        }
                        let m = mutability.take();
                        let fresh = respan(quote!(#private::fresh(&#ident)), span);
                        lets.push(quote!(#allow let #m #ident = #fresh;));
                        send_checks.push(respan(quote!(#private::send_arg(&#ident);), span));
                    }
                    pat => {
                        let name = format_ident!("__retry_arg{}", i);
                        let fresh = respan(quote!(#private::fresh(&#name)), span);
                        lets.push(quote!(#allow let #pat = #fresh;));
                        send_checks.push(respan(quote!(#private::send_arg(&#name);), span));
                        *pat = Pat::Ident(PatIdent {
                            attrs: Vec::new(),
                            by_ref: None,
                            mutability: None,
                            ident: name,
                            subpat: None,
                        });
                    }
                }
                by_value = true;
            }
        }
    }
    Rebind {
        lets,
        send_checks,
        by_value,
    }
}

/// What every mode's expansion shares.
struct Parts {
    private: TokenStream,
    krate: syn::Path,
    ret: Type,
    ret_span: Span,
    /// The items and statements before the loop: the site, the policy check.
    site: TokenStream,
    /// The per-attempt rebinding of by-value arguments.
    lets: Vec<TokenStream>,
    send_checks: Vec<TokenStream>,
    /// The user's block, `self` replaced when the receiver is by value.
    block: TokenStream,
    self_by_value: bool,
    by_value_args: bool,
}

impl Parts {
    fn new(args: &Args, func: &mut ItemFn, spawned: bool) -> Self {
        let krate = args
            .krate
            .clone()
            .unwrap_or_else(|| syn::parse_quote!(::retry_runtime));
        let private = quote!(#krate::__private);
        let (ret, ret_span) = match &func.sig.output {
            ReturnType::Default => (
                syn::parse_quote_spanned!(func.sig.ident.span()=> ()),
                func.sig.ident.span(),
            ),
            ReturnType::Type(_, t) => ((**t).clone(), t.span()),
        };
        let name = args.name.as_ref().map_or_else(
            || {
                let f = func.sig.ident.to_string();
                let suffix = format!("::{}", f.strip_prefix("r#").unwrap_or(&f));
                quote!(::core::concat!(::core::module_path!(), #suffix))
            },
            ToTokens::to_token_stream,
        );
        let self_by_value = valid::self_by_value(func);
        let rebind = rebind_args(func, &private, spawned);
        let block = if self_by_value {
            replace_self(func.block.to_token_stream())
        } else {
            func.block.to_token_stream()
        };
        let returns = quote_spanned! {ret_span=>
            let __retry_r = #private::Returns::<<#ret as #private::RetryResult>::Itself>::new();
        };
        let site = quote! {
            static __RETRY_SITE: #private::Site = #private::Site {
                name: #name,
                callsite: &__RETRY_CALLSITE,
            };
            static __RETRY_CALLSITE: #private::tracing::callsite::DefaultCallsite =
                #private::tracing::callsite::DefaultCallsite::new(&__RETRY_META);
            static __RETRY_META: #private::tracing::Metadata<'static> = #private::span_metadata(
                #name,
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
                &__RETRY_CALLSITE,
            );
            #returns
        };
        Self {
            private,
            krate,
            ret,
            ret_span,
            site,
            lets: rebind.lets,
            send_checks: rebind.send_checks,
            block,
            self_by_value,
            by_value_args: rebind.by_value,
        }
    }

    /// An unreachable `return` of the declared type, so that `?` and `return` in an async
    /// block or closure know the type they produce.
    fn fake_return(&self) -> TokenStream {
        let ret = &self.ret;
        quote_spanned! {self.ret_span=>
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
        }
    }

    /// One hook, checked against its expected signature. A background hook (`owned`)
    /// outlives the call: a closure gets its own copies of the arguments and becomes `move`.
    fn hook(&self, which: &str, e: Option<&Expr>, owned: bool) -> TokenStream {
        let private = &self.private;
        let Some(e) = e else {
            return quote!(#private::NoHook);
        };
        // The checking call carries the hook's span, so a mismatch points at the hook.
        let f = Ident::new(which, e.span());
        // The whole checking call carries the hook's span, so a mismatch is reported once,
        // at the hook.
        let span = e.span();
        let check = |e: TokenStream| {
            let path = respan(quote!(#private::#f), span);
            let marker = respan(quote!(__retry_r,), span);
            let mut args =
                proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, quote!(#marker #e));
            args.set_span(span);
            quote!(#path #args)
        };
        let Expr::Closure(c) = e else {
            return check(e.to_token_stream());
        };
        if !owned {
            return check(e.to_token_stream());
        }
        let mut c = c.clone();
        if c.capture.is_none() {
            c.capture = Some(syn::Token![move](c.or1_token.span));
        }
        let lets = &self.lets;
        let c = if self.self_by_value {
            replace_self(c.to_token_stream())
        } else {
            c.to_token_stream()
        };
        let checked = check(c);
        quote!({
            #(#[allow(unused_variables)] #lets)*
            #checked
        })
    }

    fn hooks(&self, args: &Args, owned: bool) -> TokenStream {
        let private = &self.private;
        let hook = |which, e| self.hook(which, e, owned);
        let when = hook("when", args.when.as_ref());
        let delay_from = hook("delay_from", args.delay_from.as_ref());
        let on_retry = hook("on_retry", args.on_retry.as_ref());
        let on_exhausted = hook("on_exhausted", args.on_exhausted.as_ref());
        let fallback = hook("fallback", args.fallback.as_ref());
        quote! {
            #private::Hooks {
                when: #when,
                delay_from: #delay_from,
                on_retry: #on_retry,
                on_exhausted: #on_exhausted,
                fallback: #fallback,
            }
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
fn inline_body(args: &Args, p: &Parts, is_async: bool) -> TokenStream {
    let Parts {
        private,
        site,
        lets,
        block,
        ..
    } = p;
    let (policy, constant) = policy_tokens(args, private);
    let mixed = Span::mixed_site();
    let setup_ref = Ident::new("__retry_setup", mixed);
    let setup = quote!(#private::Setup { site: &__RETRY_SITE, policy: #policy });
    let setup_item = if constant {
        quote! {
            static __RETRY_SETUP: #private::Setup = #setup;
            let #setup_ref: &#private::Setup = &__RETRY_SETUP;
        }
    } else {
        quote!(let #setup_ref: &#private::Setup = &#setup;)
    };
    let hooks_value = p.hooks(args, false);
    let hooks = Ident::new("__retry_hooks", mixed);
    let call = Ident::new("__retry_call", mixed);
    let out = Ident::new("__retry_out", mixed);
    let done = Ident::new("__retry_done", mixed);
    let wait = Ident::new("__retry_wait", mixed);
    let (clock, attempt, wait_expr) = if is_async {
        let fake_return = p.fake_return();
        let body = quote!(async { #(#lets)* #fake_return #block });
        let attempt = args.timeout.as_ref().map_or_else(
            || quote!(#call.attempt_async(#body).await),
            |t| {
                let maker = timeout_maker(private, t.key);
                quote!(#call.attempt_timeout(#maker, #body).await)
            },
        );
        (
            quote!(#private::TokioClock),
            attempt,
            quote!(#call.wait(#wait).await),
        )
    } else {
        (
            quote!(#private::SyncClock),
            quote!(#call.attempt(|| { #(#lets)* #block })),
            quote!(#call.wait(#wait)),
        )
    };
    quote! {
        {
            #site
            #setup_item
            let #hooks = #hooks_value;
            let mut #call = #private::Call::<_, #clock>::new(__retry_r, #setup_ref);
            loop {
                let #out = #attempt;
                match #call.settle(#out, &#hooks) {
                    #private::Step::Done(#done) => break #done,
                    #private::Step::Wait(#wait) => #wait_expr,
                }
            }
        }
    }
}

// Input:
//     #[retry(mode = "background")]
//     async fn push(id: Id) -> Result<T, E> { BODY }
// Output:
//     fn push(id: Id) -> HandleFor<Result<T, E>> {
//         background::<Result<T, E>, ..>(
//             Spec { site, policy, hooks, on_done, timed_out },
//             async_attempts(move || { let id = fresh(&id); async move { BODY } }),
//         )
//     }
// `mode = "handoff"` keeps `async` and returns `HandoffFor<..>` from `handoff(..).await`; a
// sync body's maker returns a closure `move || { BODY }` run on the blocking pool.
fn spawned_body(args: &Args, p: &Parts, is_async: bool, mode: Mode) -> TokenStream {
    let Parts {
        private,
        site,
        lets,
        block,
        ..
    } = p;
    let (policy, _) = policy_tokens(args, private);
    let hooks = p.hooks(args, true);
    let on_done = p.hook("on_done", args.on_done.as_ref().map(|d| &d.value), true);
    let timed_out = args.timeout.as_ref().map_or_else(
        || quote!(::core::option::Option::None),
        |t| {
            let maker = timeout_maker(private, t.key);
            quote!(::core::option::Option::Some(#maker))
        },
    );
    let fake_return = p.fake_return();
    let attempts = if is_async {
        quote!(#private::async_attempts(__retry_r, move || {
            #(#lets)*
            async move { #fake_return #block }
        }))
    } else {
        quote!(#private::sync_attempts(__retry_r, move || {
            #(#lets)*
            move || { #fake_return #block }
        }))
    };
    let spec = quote! {
        #private::Spec {
            site: &__RETRY_SITE,
            policy: #policy,
            hooks: #hooks,
            on_done: #on_done,
            timed_out: #timed_out,
        }
    };
    let run = match (mode, is_async) {
        (Mode::Handoff, true) => quote!(#private::handoff(__retry_r, #spec, #attempts).await),
        (Mode::Handoff, false) => quote!(#private::handoff_sync(__retry_r, #spec, #attempts)),
        _ => quote!(#private::background(__retry_r, #spec, #attempts)),
    };
    let send_checks = &p.send_checks;
    quote!({ #site #(#send_checks)* #run })
}

fn expand(args: &Args, mut func: ItemFn) -> TokenStream {
    let is_async = func.sig.asyncness.is_some();
    let mode = args.mode.as_ref().map_or(Mode::Inline, |m| m.value);
    let p = Parts::new(args, &mut func, mode != Mode::Inline);
    let body = if mode == Mode::Inline {
        inline_body(args, &p, is_async)
    } else {
        let krate = &p.krate;
        let ret = &p.ret;
        let (alias, arrow) = match &func.sig.output {
            ReturnType::Type(arrow, _) => (mode, *arrow),
            ReturnType::Default => (mode, syn::Token![->](func.sig.ident.span())),
        };
        let ty: Type = if alias == Mode::Handoff {
            syn::parse_quote_spanned!(p.ret_span=> #krate::HandoffFor<#ret>)
        } else {
            syn::parse_quote_spanned!(p.ret_span=> #krate::HandleFor<#ret>)
        };
        func.sig.output = ReturnType::Type(arrow, Box::new(ty));
        if mode == Mode::Background {
            func.sig.asyncness = None;
        }
        spawned_body(args, &p, is_async, mode)
    };
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let allow = p
        .by_value_args
        .then(|| quote!(#[allow(clippy::needless_pass_by_value)]));
    quote! {
        #(#attrs)*
        #allow
        #vis #sig #body
    }
}
