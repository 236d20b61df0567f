//! `mode = "durable"`: the attempt a worker runs, its registration, and the enqueue (or the
//! first attempt then the enqueue of `persist = "on_failure"`).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{FnArg, ItemFn, Pat, Type};

use super::inline::{self, InlineCall};
use super::parts::Parts;
use super::tokens::{around_ret, respan};
use crate::attr::Persist;
use crate::plan::Plan;

/// The return type: the call's ID once stored, or with `persist = "on_failure"` the first
/// attempt's value or the ID (`OutcomeFor<..>`).
pub fn return_type(persist: Persist, p: &Parts) -> Type {
    let krate = &p.krate;
    match persist {
        Persist::OnFailure => around_ret(quote!(#krate::durable::OutcomeFor), &p.ret, p.ret_span),
        Persist::Always => syn::parse_quote_spanned!(p.ret_span=>
            ::core::result::Result<#krate::CorrelationId, #krate::durable::StoreError>),
    }
}

// Input:
//     #[retry(mode = "durable", max = 10)]
//     async fn push(id: Id) -> Result<T, E> { BODY(id) }
// Output:
//     async fn push(id: Id) -> Result<CorrelationId, StoreError> {
//         static __RETRY_SITE: Site = Site::new(NAME, false, "durable", module_path!(), file!(), line!());
//         fn __retry_durable(__retry_job: Job) -> BoxFuture<'static, Verdict> {
//             let __retry_r = Returns::<<Result<T, E> as RetryResult>::Itself>::named();
//             let (__retry_spec, __retry_keep) = (
//                 Spec { site: &__RETRY_SITE, policy: Policy::new().max_retries(Some(10)),
//                     hooks: hooks({ use ..; (&ErrorFormatOf(__retry_r)).error_format() }), timed_out: None },
//                 { use ..; (&ok_probe(__retry_r)).keeper() },
//             );
//             attempt_async(__retry_r, __retry_keep, __retry_spec, __retry_job, |__retry_args| {
//                 let id: Id = checked::<Id, _>({ use ..; (&Probe::<Id>::new()).witness() }).take(__retry_args, "id")?;
//                 Ok(async move { BODY(id) })
//             })
//         }
//         submit! { Registration { name: NAME, attempt: __retry_durable, max_running: None } }
//         let mut __retry_out = ArgsOut::new();
//         { use ..; (&Probe::<Id>::new()).witness() }.put(&mut __retry_out, "id", &id)?;
//         enqueue(NAME, __retry_out).await
//     }
// A sync function's attempt is `attempt_sync(.., |args| Ok(move || BODY))`, run on the
// blocking pool, and it stores the call with `enqueue_blocking`. `__retry_keep` keeps the
// `Ok` value as the call's result when its type is `Serialize` (`KeepViaSerde`), and keeps
// nothing otherwise (`KeepNothing`), picked by autoref as the arguments' witnesses are.
//
// Input:
//     #[retry(mode = "durable", persist = "on_failure")]
//     fn push(id: Id) -> Result<T, E> { BODY(id) }
// Output:
//     fn push(id: Id) -> OutcomeFor<Result<T, E>> {
//         static __RETRY_SITE: Site = Site::new(NAME, false, "durable", module_path!(), file!(), line!());
//         fn __retry_durable(__retry_job: Job) -> BoxFuture<'static, Verdict> { .. }
//         submit! { Registration { name: NAME, attempt: __retry_durable, max_running: None } }
//         let __retry_r = Returns::<<Result<T, E> as RetryResult>::Itself>::named();
//         let __retry_hooks = hooks({ use ..; (&ErrorFormatOf(__retry_r)).error_format() });
//         let mut __retry_call = Call::<_, SyncClock, _, _>::new(__retry_r, __retry_setup, (&__retry_hooks, &__retry_ctx));
//         let __retry_out = __retry_call.attempt(|| { let id = fresh(&id); BODY(id) });
//         match __retry_call.after_first(AttemptOutcome::Returned(__retry_out)) {
//             Ok(__retry_out) => Ok(Outcome::Done(RetryResult::into_result(__retry_out))),
//             Err(__retry_first) => store_first_blocking(NAME, __retry_first, || {
//                 .. let mut __retry_out = ArgsOut::new();
//                 { use ..; (&Probe::<Id>::new()).witness() }.put(&mut __retry_out, "id", &id)?;
//                 Ok(__retry_out)
//             }),
//         }
//     }
// The first attempt runs in the caller as an inline one (see `inline.rs`); only if it failed
// and is worth retrying are the arguments stored. A test (`sketches.rs`) checks the calls
// shown in these sketches against the real expansion.
#[allow(clippy::too_many_lines)] // one branch per way of storing the call
pub fn body(plan: &Plan, persist: Persist, p: &Parts, params: &[Param]) -> TokenStream {
    let is_async = plan.is_async;
    let Parts {
        private,
        site_static,
        returns,
        name,
        ..
    } = p;
    let (spec, keep) = (p.spec(plan, false), keeper(private));
    let body = p.body(&p.fake_return());
    let (attempt, make) = if is_async {
        (quote!(attempt_async), quote!(async move #body))
    } else {
        (quote!(attempt_sync), quote!(move || #body))
    };
    let register = registration(plan, p);
    let args_in = Ident::new("__retry_args", Span::mixed_site());
    let args_out = Ident::new("__retry_out", Span::mixed_site());
    // An argument that cannot be stored is reported once, at its type, by `arg::<T>()`, whose
    // witness then stores and reads it without a second error.
    let decode = params.iter().map(|d| {
        let (id, m, ty) = (&d.ident, &d.mutability, &d.ty);
        let key = id.to_string();
        let arg = witness(private, ty, true);
        quote!(let #m #id: #ty = #arg.take(#args_in, #key)?;)
    });
    let put: Vec<_> = params
        .iter()
        .map(|d| {
            let id = &d.ident;
            let key = id.to_string();
            let arg = witness(private, &d.ty, false);
            quote!(#arg.put(&mut #args_out, #key, &#id)?;)
        })
        .collect();
    let store = if persist == Persist::OnFailure {
        // The first attempt runs here, exactly as an inline call's, on fresh copies of the
        // arguments; the originals are serialized only if the call must be stored.
        let InlineCall {
            prelude,
            call,
            attempt,
            outcome,
            ..
        } = inline::call(plan, p);
        let krate = &p.krate;
        let out = Ident::new("__retry_out", Span::mixed_site());
        let outcome = if outcome {
            quote!(#out)
        } else {
            quote!(#private::AttemptOutcome::Returned(#out))
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
            match #call.after_first(#outcome) {
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
    } else if let Some(unique) = &plan.unique {
        // `unique = ...`: see `unique.rs`.
        let put_into = |id: &Ident, into: &Ident| put_one(private, params, id, into);
        super::unique::store(unique, private, name, &args_out, &put, is_async, &put_into)
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
            let (__retry_spec, __retry_keep) = (#spec, #keep);
            #private::durable::#attempt(__retry_r, __retry_keep, __retry_spec, __retry_job, |#args_in| {
                #(#decode)*
                ::core::result::Result::Ok(#make)
            })
        }
        #register
        #store
    })
}

/// How the attempt keeps its `Ok` value as the call's result: serialized when its type is
/// `Serialize`, not kept otherwise (picked by autoref, as the arguments' witnesses are).
fn keeper(private: &TokenStream) -> TokenStream {
    quote! {{
        use #private::durable::{KeepNothing as _, KeepViaSerde as _};
        (&#private::durable::ok_probe(__retry_r)).keeper()
    }}
}

/// The function's registration (of `__retry_durable`, the attempt a worker runs), with
/// `max_running = N` as an `Option<u32>` (a constant checked to be at least 1 at compile
/// time).
fn registration(plan: &Plan, p: &Parts) -> TokenStream {
    let (private, name) = (&p.private, &p.name);
    let max_running = if let Some(n) = &plan.max_running {
        let n = super::policy::count_tokens(n, 1, "max_running");
        quote!(::core::option::Option::Some(#n))
    } else {
        quote!(::core::option::Option::None)
    };
    quote! {
        #private::durable::inventory::submit! {
            #private::durable::Registration {
                name: #name,
                attempt: __retry_durable,
                max_running: #max_running,
            }
        }
    }
}

/// The storing of the argument `id` into the `ArgsOut` named `into`.
fn put_one(private: &TokenStream, params: &[Param], id: &Ident, into: &Ident) -> TokenStream {
    let d = params
        .iter()
        .find(|d| d.ident == *id)
        .expect("checked: an argument");
    let key = id.to_string();
    let arg = witness(private, &d.ty, false);
    quote!(#arg.put(&mut #into, #key, &#id)?;)
}

/// The witness that stores and reads an argument of type `ty`; with `check`, required to be
/// one that can (the one error, at the type, of an argument that cannot be stored).
pub(super) fn witness(private: &TokenStream, ty: &Type, check: bool) -> TokenStream {
    let p = respan(private.clone(), ty.span());
    let probe = quote_spanned!(ty.span()=> (&#p::durable::Probe::<#ty>::new()).witness());
    let w = quote! {{
        use #private::durable::{ViaNothing as _, ViaSerde as _};
        #probe
    }};
    if check {
        quote_spanned!(ty.span()=> #p::durable::checked::<#ty, _>(#w))
    } else {
        w
    }
}

/// A parameter of a durable function: its name is its key among the stored arguments.
pub struct Param {
    pub(super) ident: Ident,
    mutability: Option<syn::Token![mut]>,
    pub(super) ty: Type,
}

pub fn params(func: &ItemFn) -> Vec<Param> {
    func.sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(pt) => match &*pt.pat {
                Pat::Ident(pi) => Some(Param {
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
