//! Rewriting the function into calls of the runtime.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Pat, PatIdent, ReturnType, Type};

use crate::attr::{Args, BackoffKind, Count, DurationArg, Errors, JitterKind, Max, Mode, Persist};
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

/// The spans of the first and the last token of a type (`fallback` for an empty one): an
/// expression whose first token has the one and last token the other spans the whole type.
fn edge_spans(ty: &Type, fallback: Span) -> (Span, Span) {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens.next().map_or(fallback, |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    (first, last)
}

/// The type `alias<ret>` of a function whose return type the mode replaces, spanning the
/// return type: an error about it is at the return type, once.
fn around_ret(alias: TokenStream, ret: &Type, ret_span: Span) -> Type {
    let (first, last) = edge_spans(ret, ret_span);
    let alias = respan(alias, first);
    let open = quote_spanned!(first=> <);
    let close = quote_spanned!(last=> >);
    syn::parse_quote!(#alias #open #ret #close)
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

/// A count as a `u32` expression: a checked literal as is, a constant expression through a
/// `const` (so it must be one) with a compile-time check that it is at least `min`.
fn count_tokens(c: &Count, min: u32, key: &str) -> TokenStream {
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
fn policy_tokens(args: &Args, private: &TokenStream) -> (TokenStream, bool) {
    let mut calls = Vec::new();
    let mut constant = true;
    match (&args.max, &args.attempts) {
        (Some(m), _) => calls.push(match &m.value {
            Max::Retries(c) => {
                let n = count_tokens(c, 1, "max");
                quote!(.max_retries(::core::option::Option::Some(#n)))
            }
            Max::Forever => quote!(.max_retries(::core::option::Option::None)),
        }),
        (None, Some(a)) => {
            let n = count_tokens(&a.value, 1, "attempts");
            calls.push(quote!(.max_retries(::core::option::Option::Some(#n - 1))));
        }
        (None, None) => {}
    }
    let factor = args.factor.as_ref().map(|f| f.value);
    match args.backoff.as_ref().map(|b| b.value) {
        Some(BackoffKind::Fixed) => calls.push(quote!(.backoff(#private::Backoff::Fixed))),
        Some(BackoffKind::Linear) => calls.push(quote!(.backoff(#private::Backoff::Linear))),
        Some(BackoffKind::Exp) | None if factor.is_some() || args.backoff.is_some() => {
            let f = factor.unwrap_or(2.0);
            calls.push(quote!(.backoff(#private::Backoff::Exponential { factor: #f })));
        }
        Some(BackoffKind::Exp) | None => {}
    }
    if let Some(j) = &args.jitter {
        let j = match j.value {
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
    if let Some(d) = &args.delay {
        let d = duration(&d.value);
        calls.push(quote!(.delay(#d)));
    }
    for (key, value) in [
        ("max_delay", &args.max_delay),
        ("budget", &args.budget),
        ("timeout", &args.timeout),
    ] {
        if let Some(v) = value {
            let d = duration(&v.value);
            let method = Ident::new(key, Span::call_site());
            calls.push(quote!(.#method(::core::option::Option::Some(#d))));
        }
    }
    if let Some(t) = &args.throttle {
        let p = t.value;
        calls
            .push(quote!(.throttle(::core::option::Option::Some(#private::Throttle::percent(#p)))));
    }
    (quote!(#private::Policy::new() #(#calls)*), constant)
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
            FnArg::Receiver(r) if valid::owned_receiver(r) => {
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
    /// The statements of the user's block, `self` replaced when the receiver is by value.
    /// They are spliced into the expansion's own block (not nested as a block in it), so a
    /// one-line body gets no `unused_braces` warning.
    block: TokenStream,
    /// The items among the user's statements, which go first.
    items: TokenStream,
    /// The span of the user's braces.
    braces: proc_macro2::extra::DelimSpan,
    self_by_value: bool,
    by_value_args: bool,
    /// A method with the default name: its name gets the `Self` type.
    typed: bool,
    /// The site's `static` alone, and the return type's marker alone (`site` is both).
    site_static: TokenStream,
    returns: TokenStream,
    /// The function's stable name, a constant expression.
    name: TokenStream,
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
        // The user's items first: they are visible in the whole block wherever they stand,
        // and ahead of the expansion's own statements they keep `items_after_statements`
        // quiet.
        let (items, others): (Vec<_>, Vec<_>) = func
            .block
            .stmts
            .iter()
            .partition(|s| matches!(s, syn::Stmt::Item(_)));
        let stmts: TokenStream = others.iter().map(ToTokens::to_token_stream).collect();
        let items: TokenStream = items.iter().map(ToTokens::to_token_stream).collect();
        let (items, block) = if self_by_value {
            (replace_self(items), replace_self(stmts))
        } else {
            (items, stmts)
        };
        let braces = func.block.brace_token.span;
        // The marker of the return type, settled where it is made (see `returned`):
        // a return type that is not a `Result` is reported once, here, at the return type.
        // Each expression here spans the return type (its first token starts it, its last
        // ends it), so that an error about the type is at the same place as the one about
        // the type itself, and rustc reports it once.
        let (first, last) = edge_spans(&ret, ret_span);
        let p = respan(private.clone(), first);
        let head = quote_spanned! {first=>
            let __retry_r = #p::Returns::< <#ret as #p::RetryResult>::
        };
        let tail = quote_spanned! {last=> Itself>::named(); };
        let returns = quote_spanned! {first=>
            #head #tail
            if false {
                use #p::ResolveReturn as _;
                #p::returned(__retry_r).retry_resolve_return();
            }
        };
        let typed = args.name.is_none() && is_method(&func.sig);
        let mode = match args.mode.as_ref().map_or(Mode::Inline, |m| m.value) {
            Mode::Inline => "inline",
            Mode::Background => "background",
            Mode::Handoff => "handoff",
            Mode::Durable => "durable",
        };
        let site_static = quote! {
            static __RETRY_SITE: #private::Site = #private::Site::new(
                #name,
                #typed,
                #mode,
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
            );
        };
        let site = quote!(#site_static #returns);
        Self {
            private,
            krate,
            ret,
            ret_span,
            site,
            site_static,
            returns,
            name,
            typed,
            lets: rebind.lets,
            send_checks: rebind.send_checks,
            block,
            items,
            braces,
            self_by_value,
            by_value_args: rebind.by_value,
        }
    }

    /// A block of `prefix` then the user's statements, with the user's braces.
    fn body(&self, prefix: &TokenStream) -> TokenStream {
        let (items, block) = (&self.items, &self.block);
        let mut g =
            proc_macro2::Group::new(proc_macro2::Delimiter::Brace, quote!(#items #prefix #block));
        g.set_span(self.braces.join());
        g.into_token_stream()
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
    fn hook(&self, which: &str, e: &Expr, owned: bool) -> TokenStream {
        let private = &self.private;
        // The checking call carries the hook's span, so a mismatch points at the hook.
        let f = Ident::new(which, e.span());
        // The whole checking call carries the hook's span, so a mismatch is reported once,
        // at the hook.
        let span = e.span();
        // The checked hook's output type is settled in dead code (see `Checked` in the
        // runtime), so that a hook of the wrong signature is reported once, at the hook.
        let check = |e: TokenStream| {
            let path = respan(quote!(#private::#f), span);
            let marker = respan(quote!(__retry_r,), span);
            let mut args =
                proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, quote!(#marker #e));
            args.set_span(span);
            let hook = Ident::new("__retry_hook", span);
            let settle = respan(
                quote! {
                    if false {
                        use #private::ResolveReturn as _;
                        #hook.output().retry_resolve_return();
                    }
                },
                span,
            );
            let slot = respan(quote!(#hook.slot()), span);
            let mut block = proc_macro2::Group::new(
                proc_macro2::Delimiter::Brace,
                quote!(let #hook = #path #args; #settle #slot),
            );
            block.set_span(span);
            block.into_token_stream()
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

    /// The hooks: the runtime's empty set with the way errors are shown, plus one builder
    /// call per hook the user wrote (`on_done` only for the spawned modes).
    fn hooks(&self, args: &Args, owned: bool) -> TokenStream {
        let private = &self.private;
        let mut calls = Vec::new();
        for (which, e) in [
            ("when", args.when.as_ref()),
            ("delay_from", args.delay_from.as_ref()),
            ("on_retry", args.on_retry.as_ref()),
            ("on_exhausted", args.on_exhausted.as_ref()),
            ("fallback", args.fallback.as_ref()),
            ("on_done", args.on_done.as_ref().map(|d| &d.value)),
        ] {
            if let Some(e) = e {
                let method = format_ident!("with_{}", which);
                let hook = self.hook(which, e, owned);
                calls.push(quote!(.#method(#hook)));
            }
        }
        if self.typed {
            calls.push(quote!(.with_type(#private::Hook(::core::any::type_name::<Self>))));
        }
        quote! {
            #private::hooks({
                use #private::{ViaDebug as _, ViaDisplay as _};
                (&#private::ErrorFormatOf(__retry_r)).error_format()
            })
            #(#calls)*
        }
    }
}

impl Parts {
    /// The static parts of a call that an executor other than the inline loop runs: site,
    /// policy, hooks (`owned`: moved into a spawned task) and the timed-out error's maker.
    fn spec(&self, args: &Args, owned: bool) -> TokenStream {
        let private = &self.private;
        let (policy, _) = policy_tokens(args, private);
        let hooks = self.hooks(args, owned);
        let timed_out = args.timeout.as_ref().map_or_else(
            || quote!(::core::option::Option::None),
            |t| {
                let maker = timeout_maker(private, t.key);
                quote!(::core::option::Option::Some(#maker))
            },
        );
        quote! {
            #private::Spec {
                site: &__RETRY_SITE,
                policy: #policy,
                hooks: #hooks,
                timed_out: #timed_out,
            }
        }
    }
}

/// Whether the function is a method: it takes `self` or names `Self` in its signature (an
/// associated function that does neither cannot be told from a free function).
fn is_method(sig: &syn::Signature) -> bool {
    sig.receiver().is_some() || mentions(&sig.to_token_stream(), "Self")
}

// Input:
//     #[retry(max = 2)]
//     async fn get(&self, id: Id) -> Result<T, E> { BODY(id) }
// Output:
//     async fn get(&self, id: Id) -> Result<T, E> {
//         static __RETRY_SITE: Site = Site::new(NAME, true, "inline", module_path!(), file!(), line!());
//         let __retry_r = Returns::<<Result<T, E> as RetryResult>::Itself>::named();
//         static __RETRY_SETUP: Setup = Setup { site: &__RETRY_SITE, policy: Policy::new().max_retries(Some(2)) };
//         let mut call = Call::<_, TokioClock, _, _>::new(__retry_r, &__RETRY_SETUP,
//             (hooks(ErrorFormatOf(__retry_r).error_format()).with_type(Hook(type_name::<Self>)),
//              CallCtx::starting()));
//         loop {
//             let out = call.attempt_async(async { let id = fresh(&id); BODY(id) }).await;
//             match call.settle(out) {
//                 Step::Done(r) => break r,
//                 Step::Wait(d) => call.wait(d).await,
//             }
//         }
//     }
// A sync function is the same with a closure `|| { ...; BODY }` and a blocking wait, and
// its hooks and context are locals the call borrows, `(&hooks, &ctx)`; the setup is a `let`
// when a duration is an expression. (A test checks that every runtime item
// named here is in the real expansion.)
/// The inline executor's set-up and first attempt, shared by the inline loop and the first
/// attempt of `persist = "on_failure"`.
struct InlineCall {
    /// The setup, the hooks and context, and `let mut __retry_call = Call::new(..)`.
    prelude: TokenStream,
    /// The call's name.
    call: Ident,
    /// One attempt: its value, or with a timeout its `Outcome`.
    attempt: TokenStream,
    /// Whether `attempt` is an `Outcome` (a timeout) rather than the function's value.
    outcome: bool,
    /// The wait before the next attempt, of `__retry_wait`.
    wait: TokenStream,
}

fn inline_call(args: &Args, p: &Parts, is_async: bool) -> InlineCall {
    let Parts { private, lets, .. } = p;
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
    let hooks = p.hooks(args, false);
    let call = Ident::new("__retry_call", mixed);
    let ctx = Ident::new("__retry_ctx", mixed);
    let hooks_ref = Ident::new("__retry_hooks", mixed);
    let wait = Ident::new("__retry_wait", mixed);
    // A sync call borrows its hooks and context from locals (see `Call`), an async one owns
    // them.
    let (held_lets, held) = if is_async {
        (
            TokenStream::new(),
            quote!((#hooks, #private::CallCtx::starting())),
        )
    } else {
        (
            quote! {
                let #hooks_ref = #hooks;
                let #ctx = #private::CallCtx::starting();
            },
            quote!((&#hooks_ref, &#ctx)),
        )
    };
    let (clock, attempt, outcome, wait_expr) = if is_async {
        let fake_return = p.fake_return();
        let body = p.body(&quote!(#(#lets)* #fake_return));
        let body = quote!(async #body);
        let (attempt, outcome) = args.timeout.as_ref().map_or_else(
            || (quote!(#call.attempt_async(#body).await), false),
            |t| {
                let maker = timeout_maker(private, t.key);
                (quote!(#call.attempt_timeout(#maker, #body).await), true)
            },
        );
        (
            quote!(#private::TokioClock),
            attempt,
            outcome,
            quote!(#call.wait(#wait).await),
        )
    } else {
        let body = p.body(&quote!(#(#lets)*));
        (
            quote!(#private::SyncClock),
            quote!(#call.attempt(|| #body)),
            false,
            quote!(#call.wait(#wait)),
        )
    };
    let prelude = quote! {
        #setup_item
        #held_lets
        let mut #call = #private::Call::<_, #clock, _, _>::new(__retry_r, #setup_ref, #held);
    };
    InlineCall {
        prelude,
        call,
        attempt,
        outcome,
        wait: wait_expr,
    }
}

fn inline_body(args: &Args, p: &Parts, is_async: bool) -> TokenStream {
    let InlineCall {
        prelude,
        call,
        attempt,
        outcome,
        wait: wait_expr,
    } = inline_call(args, p, is_async);
    let (private, site) = (&p.private, &p.site);
    let mixed = Span::mixed_site();
    let out = Ident::new("__retry_out", mixed);
    let done = Ident::new("__retry_done", mixed);
    let wait = Ident::new("__retry_wait", mixed);
    let settle = if outcome {
        quote!(settle_outcome)
    } else {
        quote!(settle)
    };
    quote! {
        {
            #site
            #prelude
            loop {
                let #out = #attempt;
                match #call.#settle(#out) {
                    #private::Step::Done(#done) => break #done,
                    #private::Step::Wait(#wait) => #wait_expr,
                }
            }
        }
    }
}

// Input:
//     #[retry(mode = "background", on_done = log)]
//     async fn push(id: Id) -> Result<T, E> { BODY(id) }
// Output:
//     fn push(id: Id) -> HandleFor<Result<T, E>> {
//         static __RETRY_SITE: Site = Site::new(NAME, false, "background", module_path!(), file!(), line!());
//         let __retry_r = Returns::<<Result<T, E> as RetryResult>::Itself>::named();
//         send_arg(&id);
//         background(__retry_r,
//             Spec { site: &__RETRY_SITE, policy: Policy::new(),
//                    hooks: hooks(ErrorFormatOf(__retry_r).error_format()).with_on_done(on_done(__retry_r, log)),
//                    timed_out: None },
//             async_attempts(__retry_r, move || { let id = fresh(&id); async move { BODY(id) } }))
//     }
// `mode = "handoff"` keeps `async` and returns `HandoffFor<..>` from `handoff(..).await`; a
// sync body's maker returns a closure `move || { BODY }` run on the blocking pool.
fn spawned_body(args: &Args, p: &Parts, is_async: bool, mode: Mode) -> TokenStream {
    let Parts {
        private,
        site,
        lets,
        ..
    } = p;
    let body = p.body(&p.fake_return());
    let attempts = if is_async {
        quote!(#private::async_attempts(__retry_r, move || {
            #(#lets)*
            async move #body
        }))
    } else {
        quote!(#private::sync_attempts(__retry_r, move || {
            #(#lets)*
            move || #body
        }))
    };
    let spec = p.spec(args, true);
    // The executor and the return-type marker it takes carry the return type's span: a
    // return type whose value or error cannot move to the task (`Box<dyn Error>` without
    // `Send`) is reported there.
    let (first, _) = edge_spans(&p.ret, p.ret_span);
    let r = respan(quote!(__retry_r), first);
    let (executor, wait) = match (mode, is_async) {
        (Mode::Handoff, true) => ("handoff", quote!(.await)),
        (Mode::Handoff, false) => ("handoff_sync", TokenStream::new()),
        _ => ("background", TokenStream::new()),
    };
    let executor = Ident::new(executor, first);
    let f = respan(quote!(#private::#executor), first);
    let wait = respan(wait, first);
    let run = quote!(#f(#r, #spec, #attempts) #wait);
    let send_checks = &p.send_checks;
    quote!({ #site #(#send_checks)* #run })
}

// Input:
//     #[retry(mode = "durable", max = 10)]
//     async fn push(id: Id) -> Result<T, E> { BODY(id) }
// Output:
//     async fn push(id: Id) -> Result<CorrelationId, StoreError> {
//         static __RETRY_SITE: Site = Site::new(NAME, false, module_path!(), file!(), line!());
//         fn __retry_durable(job: Job) -> BoxFuture<'static, Verdict> {
//             let __retry_r = Returns::<<Result<T, E> as RetryResult>::Itself>::named();
//             let spec = Spec { site: &__RETRY_SITE, policy: Policy::new().max_retries(Some(10)),
//                               hooks: hooks(ErrorFormatOf(__retry_r).error_format()), timed_out: None };
//             attempt_async(__retry_r, spec, job, |args| {
//                 let id: Id = args.take("id")?;
//                 Ok(async move { BODY(id) })
//             })
//         }
//         submit! { Registration { name: NAME, attempt: __retry_durable } }
//         let mut out = ArgsOut::new();
//         out.put("id", &id)?;
//         enqueue(NAME, out).await
//     }
// A sync function's attempt is `attempt_sync(.., |args| Ok(move || BODY))`, run on the
// blocking pool, and it stores the call with `enqueue_blocking`.
fn durable_body(args: &Args, p: &Parts, is_async: bool, params: &[DurableParam]) -> TokenStream {
    let Parts {
        private,
        site_static,
        returns,
        name,
        ..
    } = p;
    let spec = p.spec(args, false);
    let body = p.body(&p.fake_return());
    let (attempt, make) = if is_async {
        (quote!(attempt_async), quote!(async move #body))
    } else {
        (quote!(attempt_sync), quote!(move || #body))
    };
    let args_in = Ident::new("__retry_args", Span::mixed_site());
    let args_out = Ident::new("__retry_out", Span::mixed_site());
    // An argument that cannot be stored is reported at its type, by `put` (and `take`).
    let decode = params.iter().map(|d| {
        let (id, m, ty) = (&d.ident, &d.mutability, &d.ty);
        let key = id.to_string();
        let take = Ident::new("take", ty.span());
        quote!(let #m #id: #ty = #args_in.#take(#key)?;)
    });
    let put: Vec<_> = params
        .iter()
        .map(|d| {
            let id = &d.ident;
            let key = id.to_string();
            let put = Ident::new("put", d.ty.span());
            quote!(#args_out.#put(#key, &#id)?;)
        })
        .collect();
    let on_failure = args.persist.as_ref().map(|p| p.value) == Some(Persist::OnFailure);
    let store = if on_failure {
        // The first attempt runs here, exactly as an inline call's, on fresh copies of the
        // arguments; the originals are serialized only if the call must be stored.
        let InlineCall {
            prelude,
            call,
            attempt,
            outcome,
            ..
        } = inline_call(args, p, is_async);
        let krate = &p.krate;
        let out = Ident::new("__retry_out", Span::mixed_site());
        let outcome = if outcome {
            quote!(#out)
        } else {
            quote!(#private::Outcome::Returned(#out))
        };
        let (store, wait) = if is_async {
            (quote!(store_first), quote!(.await))
        } else {
            (quote!(store_first_blocking), TokenStream::new())
        };
        quote! {
            #returns
            #prelude
            let #out = #attempt;
            match #call.settle_first(#outcome) {
                ::core::result::Result::Ok(#out) => ::core::result::Result::Ok(
                    #krate::durable::Outcome::Done(#private::RetryResult::into_result(#out)),
                ),
                ::core::result::Result::Err(__retry_first) => {
                    #private::durable::#store(#name, __retry_first, || {
                        #[allow(unused_mut)]
                        let mut #args_out = #private::durable::ArgsOut::new();
                        #(#put)*
                        ::core::result::Result::Ok(#args_out)
                    })#wait
                }
            }
        }
    } else {
        let enqueue = if is_async {
            quote!(#private::durable::enqueue(#name, #args_out).await)
        } else {
            quote!(#private::durable::enqueue_blocking(#name, #args_out))
        };
        quote! {
            #[allow(unused_mut)]
            let mut #args_out = #private::durable::ArgsOut::new();
            #(#put)*
            #enqueue
        }
    };
    quote!({
        #site_static
        fn __retry_durable(
            __retry_job: #private::durable::Job,
        ) -> #private::durable::BoxFuture<'static, #private::durable::Verdict> {
            #returns
            let __retry_spec = #spec;
            #private::durable::#attempt(__retry_r, __retry_spec, __retry_job, |#args_in| {
                #(#decode)*
                ::core::result::Result::Ok(#make)
            })
        }
        #private::durable::inventory::submit! {
            #private::durable::Registration { name: #name, attempt: __retry_durable }
        }
        #store
    })
}

/// A parameter of a durable function: its name is its key among the stored arguments.
struct DurableParam {
    ident: Ident,
    mutability: Option<syn::Token![mut]>,
    ty: Type,
}

fn durable_params(func: &ItemFn) -> Vec<DurableParam> {
    func.sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) => Some(DurableParam {
                    ident: pi.ident.clone(),
                    mutability: pi.mutability,
                    ty: (*pt.ty).clone(),
                }),
                _ => None,
            },
            FnArg::Receiver(_) => None,
        })
        .collect()
}

fn expand(args: &Args, mut func: ItemFn) -> TokenStream {
    let is_async = func.sig.asyncness.is_some();
    let mode = args.mode.as_ref().map_or(Mode::Inline, |m| m.value);
    let params = durable_params(&func);
    let on_failure = args.persist.as_ref().map(|p| p.value) == Some(Persist::OnFailure);
    // The first attempt of `persist = "on_failure"` runs in the caller, as an inline one.
    let p = Parts::new(args, &mut func, mode != Mode::Inline && !on_failure);
    let body = if mode == Mode::Inline {
        inline_body(args, &p, is_async)
    } else if mode == Mode::Durable {
        let krate = &p.krate;
        let arrow = match &func.sig.output {
            ReturnType::Type(arrow, _) => *arrow,
            ReturnType::Default => syn::Token![->](func.sig.ident.span()),
        };
        let ret = &p.ret;
        let ty: Type = if on_failure {
            around_ret(quote!(#krate::durable::OutcomeFor), ret, p.ret_span)
        } else {
            syn::parse_quote_spanned!(p.ret_span=>
                ::core::result::Result<#krate::CorrelationId, #krate::durable::StoreError>)
        };
        func.sig.output = ReturnType::Type(arrow, Box::new(ty));
        durable_body(args, &p, is_async, &params)
    } else {
        let krate = &p.krate;
        let ret = &p.ret;
        let (alias, arrow) = match &func.sig.output {
            ReturnType::Type(arrow, _) => (mode, *arrow),
            ReturnType::Default => (mode, syn::Token![->](func.sig.ident.span())),
        };
        let ty: Type = if alias == Mode::Handoff {
            around_ret(quote!(#krate::HandoffFor), ret, p.ret_span)
        } else {
            around_ret(quote!(#krate::HandleFor), ret, p.ret_span)
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
    // The return type the mode writes (`HandleFor<..>`, `OutcomeFor<..>`) spans the user's,
    // so that an error about it is at the user's; it is the macro's, not theirs to simplify.
    let rewritten = mode != Mode::Inline && (mode != Mode::Durable || on_failure);
    let allow_type = rewritten.then(|| quote!(#[allow(clippy::type_complexity)]));
    quote! {
        #(#attrs)*
        #allow
        #allow_type
        #vis #sig #body
    }
}

#[cfg(test)]
mod sketches {
    //! The `// Input: ... // Output: ...` sketches above each rewrite, checked against the
    //! real expansion, so that they cannot drift: every item the sketch names (a word
    //! followed by `(`, `::`, `!` or ` {`, other than keywords and ALL-CAPS placeholders)
    //! must be an identifier of the expansion of its input.

    use std::collections::BTreeSet;

    const KEYWORDS: &[&str] = &[
        "fn", "async", "loop", "match", "let", "static", "mut", "move", "if", "break", "as",
    ];

    fn sketches() -> Vec<(String, String)> {
        let src = include_str!("expand.rs");
        let mut out = Vec::new();
        let mut lines = src.lines().peekable();
        while let Some(l) = lines.next() {
            if l != "// Input:" {
                continue;
            }
            let mut input = String::new();
            let mut output = String::new();
            let mut in_output = false;
            while let Some(l) = lines.next_if(|l| l.starts_with("//     ") || *l == "// Output:") {
                if l == "// Output:" {
                    in_output = true;
                } else if in_output {
                    output.push_str(&l[7..]);
                    output.push('\n');
                } else {
                    input.push_str(&l[7..]);
                    input.push('\n');
                }
            }
            out.push((input, output));
        }
        out
    }

    fn named_items(sketch: &str) -> BTreeSet<String> {
        let chars: Vec<char> = sketch.chars().collect();
        let mut names = BTreeSet::new();
        let mut i = 0;
        while i < chars.len() {
            if chars[i].is_alphabetic() || chars[i] == '_' {
                let start = i;
                while i < chars.len() && (chars[i].is_alphanumeric() || chars[i] == '_') {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let rest: String = chars[i..chars.len().min(i + 2)].iter().collect();
                let is_item = rest.starts_with('(')
                    || rest.starts_with("::")
                    || rest.starts_with('!')
                    || rest == " {";
                let placeholder = word.chars().all(|c| c.is_uppercase() || c == '_');
                if is_item && !placeholder && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            } else {
                i += 1;
            }
        }
        names
    }

    fn idents(tokens: proc_macro2::TokenStream, out: &mut BTreeSet<String>) {
        for t in tokens {
            match t {
                proc_macro2::TokenTree::Ident(i) => {
                    out.insert(i.to_string());
                }
                proc_macro2::TokenTree::Group(g) => idents(g.stream(), out),
                _ => {}
            }
        }
    }

    #[test]
    fn every_sketch_names_only_what_the_expansion_has() {
        let all = sketches();
        assert_eq!(
            all.len(),
            3,
            "the inline, the spawned and the durable sketch"
        );
        for (input, output) in all {
            let (attr, item) = input
                .split_once('\n')
                .expect("an attribute line, then the fn");
            let args = attr
                .trim()
                .strip_prefix("#[retry(")
                .and_then(|a| a.strip_suffix(")]"))
                .expect("the input starts with #[retry(...)]");
            let args: proc_macro2::TokenStream = args.parse().expect("the arguments parse");
            let item: proc_macro2::TokenStream = item.parse().expect("the function parses");
            let expanded = super::retry(args, &item);
            let mut have = BTreeSet::new();
            idents(expanded, &mut have);
            let named = named_items(&output);
            assert!(
                named.len() > 10,
                "the sketch names the runtime items: {named:?}"
            );
            let missing: Vec<_> = named.difference(&have).collect();
            assert!(
                missing.is_empty(),
                "the sketch of `{attr}` names {missing:?}, which its expansion does not have"
            );
        }
    }
}
