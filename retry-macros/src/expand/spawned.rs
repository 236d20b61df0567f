//! `mode = "background"` and `mode = "handoff"`: attempts that run on a task or the blocking
//! pool, after the call has returned.

use proc_macro2::{Ident, TokenStream};
use quote::quote;
use syn::Type;

use super::parts::Parts;
use super::tokens::{around_ret, edge_spans, respan};
use crate::plan::{Mode, Plan};

/// The return type: a handle of the user's (`HandleFor<..>`), or with `mode = "handoff"` the
/// call's outcome (`HandoffFor<..>`).
pub fn return_type(plan: &Plan, p: &Parts) -> Type {
    let krate = &p.krate;
    let alias = if plan.mode == Mode::Handoff {
        quote!(#krate::HandoffFor)
    } else {
        quote!(#krate::HandleFor)
    };
    around_ret(alias, &p.ret, p.ret_span)
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
//                    hooks: hooks({ use ..; (&ErrorFormatOf(__retry_r)).error_format() })
//                        .with_on_done({ let __retry_hook = on_done(__retry_r, log); .. __retry_hook.slot() }),
//                    timed_out: None },
//             async_attempts(__retry_r, move || { .. let id = fresh(&id); async move { BODY(id) } }))
//     }
// `mode = "handoff"` keeps `async` and returns `HandoffFor<..>` from `handoff(..).await`; a
// sync body's maker returns a closure `move || { BODY }` run on the blocking pool. A test
// (`sketches.rs`) checks the calls shown here against the real expansion.
pub fn body(plan: &Plan, p: &Parts) -> TokenStream {
    let is_async = plan.is_async;
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
    let spec = p.spec(plan, true);
    // The executor and the return-type marker it takes carry the return type's span: a
    // return type whose value or error cannot move to the task (`Box<dyn Error>` without
    // `Send`) is reported there.
    let (first, _) = edge_spans(&p.ret, p.ret_span);
    let r = respan(quote!(__retry_r), first);
    let (executor, wait) = match (plan.mode, is_async) {
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
