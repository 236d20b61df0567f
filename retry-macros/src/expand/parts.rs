//! What every mode's expansion shares: the site, the return-type marker, the rebinding of
//! the arguments per attempt, the user's block, the hooks and the spec.

use proc_macro2::{Ident, Span, TokenStream};
use quote::{format_ident, quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;
use syn::{Expr, FnArg, ItemFn, Pat, PatIdent, ReturnType, Type};

use super::policy::{policy_tokens, timeout_maker};
use super::tokens::{edge_spans, mentions, replace_self, respan};
use crate::plan::Plan;
use crate::valid;

/// The per-attempt rebinding of the arguments, and the signature's new patterns.
struct Rebind {
    lets: Vec<TokenStream>,
    /// `Send` checks of the by-value arguments (spawned modes).
    send_checks: Vec<TokenStream>,
    by_value: bool,
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
pub struct Parts {
    pub private: TokenStream,
    pub krate: syn::Path,
    pub ret: Type,
    pub ret_span: Span,
    /// The items and statements before the loop: the site, the policy check.
    pub site: TokenStream,
    /// The per-attempt rebinding of by-value arguments.
    pub lets: Vec<TokenStream>,
    pub send_checks: Vec<TokenStream>,
    /// The statements of the user's block, `self` replaced when the receiver is by value.
    /// They are spliced into the expansion's own block (not nested as a block in it), so a
    /// one-line body gets no `unused_braces` warning.
    pub block: TokenStream,
    /// The items among the user's statements, which go first.
    pub items: TokenStream,
    /// The span of the user's braces.
    pub braces: proc_macro2::extra::DelimSpan,
    pub self_by_value: bool,
    pub by_value_args: bool,
    /// A method with the default name: its name gets the `Self` type.
    pub typed: bool,
    /// The site's `static` alone, and the return type's marker alone (`site` is both).
    pub site_static: TokenStream,
    pub returns: TokenStream,
    /// The function's stable name, a constant expression.
    pub name: TokenStream,
}

impl Parts {
    pub fn new(plan: &Plan, func: &mut ItemFn) -> Self {
        let krate = plan.krate.clone();
        let private = quote!(#krate::__private);
        let (ret, ret_span) = match &func.sig.output {
            ReturnType::Default => (
                syn::parse_quote_spanned!(func.sig.ident.span()=> ()),
                func.sig.ident.span(),
            ),
            ReturnType::Type(_, t) => ((**t).clone(), t.span()),
        };
        let name = plan.name.as_ref().map_or_else(
            || {
                let f = func.sig.ident.to_string();
                let suffix = format!("::{}", f.strip_prefix("r#").unwrap_or(&f));
                quote!(::core::concat!(::core::module_path!(), #suffix))
            },
            ToTokens::to_token_stream,
        );
        let self_by_value = valid::self_by_value(func);
        let rebind = rebind_args(func, &private, plan.mode.attempts_outlive_call());
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
        let typed = plan.name.is_none() && is_method(&func.sig);
        let mode = plan.mode.name();
        // Only when the runtime has `overrides-file`, which sets this crate's feature too.
        let register = cfg!(feature = "overrides-file").then(
            || quote!(#krate::__retry_register_name!(#name, #typed, ::core::module_path!());),
        );
        let site_static = quote! {
            static __RETRY_SITE: #private::Site = #private::Site::new(
                #name,
                #typed,
                #mode,
                ::core::module_path!(),
                ::core::file!(),
                ::core::line!(),
            );
            #register
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
    pub fn body(&self, prefix: &TokenStream) -> TokenStream {
        let (items, block) = (&self.items, &self.block);
        let mut g =
            proc_macro2::Group::new(proc_macro2::Delimiter::Brace, quote!(#items #prefix #block));
        g.set_span(self.braces.join());
        g.into_token_stream()
    }

    /// An unreachable `return` of the declared type, so that `?` and `return` in an async
    /// block or closure know the type they produce.
    pub fn fake_return(&self) -> TokenStream {
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
            let resolve = respan(
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
                quote!(let #hook = #path #args; #resolve #slot),
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
    pub fn hooks(&self, plan: &Plan, owned: bool) -> TokenStream {
        let private = &self.private;
        let mut calls = Vec::new();
        for (which, e) in plan.hooks.each() {
            if let Some(e) = e {
                let method = format_ident!("with_{}", which);
                let hook = self.hook(which, e, owned);
                calls.push(quote!(.#method(#hook)));
            }
        }
        if self.typed {
            calls.push(quote!(.with_type(#private::Hook(::core::any::type_name::<Self>))));
        }
        let format = if let Some(e) = &plan.hooks.error_format {
            quote_spanned!(e.span()=> #private::error_format(__retry_r, #e))
        } else {
            quote! {{
                use #private::{ViaDebug as _, ViaDisplay as _};
                (&#private::ErrorFormatOf(__retry_r)).error_format()
            }}
        };
        quote! {
            #private::hooks(#format)
            #(#calls)*
        }
    }
}

impl Parts {
    /// The static parts of a call that an executor other than the inline loop runs: site,
    /// policy, hooks (`owned`: moved into a spawned task) and the timed-out error's maker.
    pub fn spec(&self, plan: &Plan, owned: bool) -> TokenStream {
        let private = &self.private;
        let (policy, _) = policy_tokens(&plan.policy, private);
        let hooks = self.hooks(plan, owned);
        let timed_out = plan.policy.timeout.as_ref().map_or_else(
            || quote!(::core::option::Option::None),
            |(_, key)| {
                let maker = timeout_maker(private, *key);
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
