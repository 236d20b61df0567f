//! The enqueue of a durable function with `unique = ...` or `unique_key = ...`: the key's
//! expression, then `enqueue_unique` in place of `enqueue` (see the sketch in `durable.rs`).

use proc_macro2::{Ident, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::policy::duration_tokens;
use super::tokens::respan;

// Input:
//     #[retry(mode = "durable", unique = (id), unique_for = "1h")]
//     async fn push(id: Id, body: Body) -> Result<T, E> { BODY(id, body) }
// Output:
//     async fn push(id: Id, body: Body) -> Result<CorrelationId, StoreError> {
//         static __RETRY_SITE: Site = Site::new(NAME, false, "durable", module_path!(), file!(), line!());
//         fn __retry_durable(__retry_job: Job) -> BoxFuture<'static, Verdict> { .. }
//         let mut __retry_out = ArgsOut::new();
//         { use ..; (&Probe::<Id>::new()).witness() }.put(&mut __retry_out, "id", &id)?;
//         { use ..; (&Probe::<Body>::new()).witness() }.put(&mut __retry_out, "body", &body)?;
//         let __retry_key = {
//             let mut __retry_key = ArgsOut::new();
//             { use ..; (&Probe::<Id>::new()).witness() }.put(&mut __retry_key, "id", &id)?;
//             key_of_args(&__retry_key)
//         };
//         enqueue_unique(NAME, __retry_out, __retry_key, Some(Duration::new(3600u64, 0u32))).await
//     }
// `unique = "args"` keys by `key_of_args(&__retry_out)`, `unique_key = EXPR` by
// `key_of_value(&(EXPR))`; without `unique_for` the last argument is `None`. A sync function
// calls `enqueue_unique_blocking`.
/// The expansion's enqueue with a key: the arguments stored (`put`), the key's expression,
/// then `enqueue_unique(NAME, args, key, keep_for)`. `put_into(name, map)` writes the storing
/// of the argument `name` into `map`.
pub fn store(
    unique: &crate::unique::Unique,
    private: &TokenStream,
    name: &TokenStream,
    args_out: &Ident,
    put: &[TokenStream],
    is_async: bool,
    put_into: &dyn Fn(&Ident, &Ident) -> TokenStream,
) -> TokenStream {
    let key_out = Ident::new("__retry_key", Span::mixed_site());
    let key = match &unique.key {
        crate::unique::UniqueKey::Args => {
            quote!(let #key_out = #private::durable::key_of_args(&#args_out);)
        }
        crate::unique::UniqueKey::Named(names) => {
            let puts = names.iter().map(|n| put_into(n, &key_out));
            quote! {
                let #key_out = {
                    let mut #key_out = #private::durable::ArgsOut::new();
                    #(#puts)*
                    #private::durable::key_of_args(&#key_out)
                };
            }
        }
        crate::unique::UniqueKey::Expr(e) => {
            let p = respan(private.clone(), e.span());
            quote_spanned!(e.span()=> let #key_out = #p::durable::key_of_value(&(#e));)
        }
    };
    let keep_for = if let Some(d) = &unique.keep_for {
        let d = duration_tokens(d);
        quote!(::core::option::Option::Some(#d))
    } else {
        quote!(::core::option::Option::None)
    };
    let enqueue = if is_async {
        quote!(#private::durable::enqueue_unique(#name, #args_out, #key_out, #keep_for).await)
    } else {
        quote!(#private::durable::enqueue_unique_blocking(#name, #args_out, #key_out, #keep_for))
    };
    quote! {
        #[allow(unused_mut)]
        let mut #args_out = #private::durable::ArgsOut::new();
        #(#put)*
        #key
        #enqueue
    }
}
