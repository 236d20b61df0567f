//! The companion of a durable function: a type of the function's own name whose `call`
//! takes the function's arguments and makes a typed `DurableCall`, to enqueue in a store or
//! inside the caller's transaction, now or later. A braced struct lives in the type namespace
//! only, so it coexists with the function (a value), and `use m::push;` imports both.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::ItemFn;

use super::durable::{witness, Param};
use super::parts::Parts;

// Input:
//     #[retry(mode = "durable")]
//     pub async fn push(id: Id, note: String) -> Result<T, E> { BODY(id, note) }
// Output, beside the function (checked by the test below):
//     pub struct push {}
//     impl push {
//         pub fn call(id: Id, note: String) -> DurableCall<Self> {
//             DurableCall::__build(|__retry_out: &mut ArgsOut| {
//                 { use ..; (&Probe::<Id>::new()).witness() }.put(__retry_out, "id", &id)?;
//                 { use ..; (&Probe::<String>::new()).witness() }.put(__retry_out, "note", &note)?;
//                 Ok(())
//             })
//         }
//     }
//     impl DurableFn for push { const NAME: &'static str = NAME; }
// An argument that cannot be stored is reported once, by the function's own expansion; its
// witness here stores nothing and reports nothing more.
pub fn companion(func: &ItemFn, p: &Parts, params: &[Param]) -> TokenStream {
    let Parts {
        krate,
        private,
        name,
        ..
    } = p;
    let vis = &func.vis;
    let ident = &func.sig.ident;
    let out = syn::Ident::new("__retry_out", Span::mixed_site());
    let args = params.iter().map(|d| {
        let (id, ty) = (&d.ident, &d.ty);
        quote!(#id: #ty)
    });
    let put = params.iter().map(|d| {
        let id = &d.ident;
        let key = id.to_string();
        let arg = witness(private, &d.ty, false);
        quote!(#arg.put(#out, #key, &#id)?;)
    });
    let shown = ident.to_string();
    let shown = shown.strip_prefix("r#").unwrap_or(&shown);
    let doc = format!(
        "Typed calls of the durable function [`{shown}()`]({shown}()): \
         `{shown}::call(..)` takes its arguments and returns a \
         `DurableCall` to enqueue in the default store, in a store, or inside a transaction \
         of the caller's, at once, at a time or after a delay."
    );
    let call_doc = format!(
        "A call of [`{shown}()`]({shown}()) with these arguments, checked by the compiler and \
         not yet stored: enqueue it with `.enqueue()`, `.enqueue_in(&tx)`, ..."
    );
    let call = quote_spanned!(ident.span()=> call);
    quote! {
        #[doc = #doc]
        #[allow(non_camel_case_types, dead_code)]
        #vis struct #ident {}

        #[allow(dead_code)]
        impl #ident {
            #[doc = #call_doc]
            #[allow(clippy::needless_pass_by_value, clippy::too_many_arguments)]
            #vis fn #call(#(#args),*) -> #krate::durable::DurableCall<Self> {
                #krate::durable::DurableCall::__build(|#out: &mut #private::durable::ArgsOut| {
                    #(#put)*
                    ::core::result::Result::Ok(())
                })
            }
        }

        impl #krate::durable::DurableFn for #ident {
            const NAME: &'static str = #name;
        }
    }
}

#[cfg(test)]
mod tests {
    use quote::quote;

    #[test]
    fn the_companion_has_the_functions_name_visibility_and_argument_types() {
        let item = quote!(
            pub(crate) async fn push(id: u64, mut note: String) -> Result<(), String> {
                note.push('!');
                Ok(())
            }
        );
        let out = super::super::retry(quote!(mode = "durable"), &item)
            .to_string()
            .replace(' ', "");
        for part in [
            "pub(crate)structpush{}",
            "implpush{",
            "pub(crate)fncall(id:u64,note:String)->::retry_runtime::durable::DurableCall<Self>",
            "::retry_runtime::durable::DurableCall::__build(|__retry_out:&mut::retry_runtime::__private::durable::ArgsOut|",
            ".put(__retry_out,\"id\",&id)?;",
            ".put(__retry_out,\"note\",&note)?;",
            "impl::retry_runtime::durable::DurableFnforpush{constNAME:&'staticstr=::core::concat!(::core::module_path!(),\"::push\");}",
        ] {
            assert!(out.contains(part), "{part} in {out}");
        }
        let inline = super::super::retry(quote!(max = 3), &item).to_string();
        assert!(
            !inline.contains("DurableFn"),
            "only durable functions have one"
        );
    }
}
