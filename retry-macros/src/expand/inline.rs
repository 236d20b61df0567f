//! `mode = "inline"`: the attempt loop in the caller, and the first attempt of
//! `persist = "on_failure"`.

use proc_macro2::{Ident, Span, TokenStream};
use quote::quote;

use super::parts::Parts;
use super::policy::{policy_tokens, timeout_maker};
use crate::plan::Plan;

/// The inline executor's set-up and first attempt, shared by the inline loop and the first
/// attempt of `persist = "on_failure"`.
pub struct InlineCall {
    /// The setup, the hooks and context, and `let mut __retry_call = Call::new(..)`.
    pub prelude: TokenStream,
    /// The call's name.
    pub call: Ident,
    /// One attempt: its value, or with a timeout its `Outcome`.
    pub attempt: TokenStream,
    /// Whether `attempt` is an `Outcome` (a timeout) rather than the function's value.
    pub outcome: bool,
    /// The wait before the next attempt, of `__retry_wait`.
    pub wait: TokenStream,
    /// A sync call: the whole call, `__retry_call.run(|| BODY)` (see `Call::run`).
    pub run: Option<TokenStream>,
}

pub fn call(plan: &Plan, p: &Parts) -> InlineCall {
    let is_async = plan.is_async;
    let Parts { private, lets, .. } = p;
    let (policy, constant) = policy_tokens(&plan.policy, private);
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
    let hooks = p.hooks(plan, false);
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
    let (clock, attempt, outcome, wait_expr, run) = if is_async {
        let fake_return = p.fake_return();
        let body = p.body(&quote!(#(#lets)* #fake_return));
        let body = quote!(async #body);
        let (attempt, outcome) = plan.policy.timeout.as_ref().map_or_else(
            || (quote!(#call.attempt_async(#body).await), false),
            |(_, key)| {
                let maker = timeout_maker(private, *key);
                (quote!(#call.attempt_timeout(#maker, #body).await), true)
            },
        );
        (
            quote!(#private::TokioClock),
            attempt,
            outcome,
            quote!(#call.wait(#wait).await),
            None,
        )
    } else {
        let body = p.body(&quote!(#(#lets)*));
        let closure = quote!(|| #body);
        (
            quote!(#private::SyncClock),
            quote!(#call.attempt(#closure)),
            false,
            quote!(#call.wait(#wait)),
            Some(quote!(#call.run(#closure))),
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
        run,
    }
}

// Input:
//     #[retry(max = 2)]
//     async fn get(&self, id: Id) -> Result<T, E> { BODY(id) }
// Output:
//     async fn get(&self, id: Id) -> Result<T, E> {
//         static __RETRY_SITE: Site = Site::new(NAME, true, "inline", module_path!(), file!(), line!());
//         let __retry_r = Returns::<<Result<T, E> as RetryResult>::Itself>::named();
//         static __RETRY_SETUP: Setup = Setup { site: &__RETRY_SITE, policy: Policy::new().max_retries(Some(2)) };
//         let __retry_setup: &Setup = &__RETRY_SETUP;
//         let mut __retry_call = Call::<_, TokioClock, _, _>::new(__retry_r, __retry_setup,
//             (hooks({ use ..; (&ErrorFormatOf(__retry_r)).error_format() }).with_type(Hook(type_name::<Self>)),
//              CallCtx::starting()));
//         loop {
//             let __retry_out = __retry_call.attempt_async(async { let id = fresh(&id); BODY(id) }).await;
//             match __retry_call.after(__retry_out) {
//                 Loop::Return(__retry_done) => break __retry_done,
//                 Loop::Wait(__retry_wait) => __retry_call.wait(__retry_wait).await,
//             }
//         }
//     }
// (`BODY(id)` stands for the user's statements, after an unreachable `return` of the declared
// type.) A sync function has the same set-up, its hooks and context locals the call borrows,
// `(&hooks, &ctx)`, and in place of the loop `__retry_call.run(|| { ...; BODY })`: the first
// attempt inline, the retries and their blocking waits out of line; the setup is a
// `let` when a duration is an expression. A test (`sketches.rs`) checks that every call
// shown here, with its arguments, is in the real expansion.
pub fn body(plan: &Plan, p: &Parts) -> TokenStream {
    let InlineCall {
        prelude,
        call,
        attempt,
        outcome,
        wait: wait_expr,
        run,
    } = call(plan, p);
    let (private, site) = (&p.private, &p.site);
    let mixed = Span::mixed_site();
    let out = Ident::new("__retry_out", mixed);
    let done = Ident::new("__retry_done", mixed);
    let wait = Ident::new("__retry_wait", mixed);
    let after = if outcome {
        quote!(after_outcome)
    } else {
        quote!(after)
    };
    if !plan.is_async {
        // A sync call runs in `Call::run`: the first attempt here, the retries out of line.
        let run = run.unwrap_or_else(|| unreachable!("a sync call has `run`"));
        return quote! {
            {
                #site
                #prelude
                #run
            }
        };
    }
    quote! {
        {
            #site
            #prelude
            loop {
                let #out = #attempt;
                match #call.#after(#out) {
                    #private::Loop::Return(#done) => break #done,
                    #private::Loop::Wait(#wait) => #wait_expr,
                }
            }
        }
    }
}
