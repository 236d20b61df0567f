//! Rewriting the function into calls of the runtime: the entry point (parse, plan, expand)
//! and the wrapper function every mode shares; each mode's body is in its own file.

mod companion;
mod durable;
mod inline;
mod parts;
mod policy;
#[cfg(test)]
mod sketches;
mod spawned;
mod tokens;
mod unique;

use proc_macro2::TokenStream;
use quote::quote;
use syn::{ItemFn, ReturnType, Type};

use crate::attr::{Args, Errors};
use crate::plan::{Mode, Plan};
use crate::valid;
use parts::Parts;

/// The whole macro: parse, check, expand. On any error the function is emitted unchanged
/// beside the errors, so the rest of the crate still type-checks.
pub fn retry(args: TokenStream, item: &TokenStream) -> TokenStream {
    let mut errors = Errors::default();
    let args = Args::parse(args, &mut errors);
    let Ok(func) = syn::parse2::<ItemFn>(item.clone()) else {
        errors.push(valid::not_a_function(item.clone()));
        let errs = errors.finish().err().map(|e| e.to_compile_error());
        return quote!(#errs #item);
    };
    match valid::plan(args, &func.sig, errors) {
        Ok(plan) => expand(&plan, func),
        Err(e) => {
            let errs = e.to_compile_error();
            quote!(#errs #item)
        }
    }
}

/// The function rewritten as the plan says: the user's attributes and visibility, the
/// signature with the mode's return type, the mode's body, and the lints the rewrite would
/// trigger allowed on the wrapper only.
fn expand(plan: &Plan, mut func: ItemFn) -> TokenStream {
    // Read before `Parts` rebinds the parameters' patterns.
    let params = durable::params(&func);
    let p = Parts::new(plan, &mut func);
    let ret = match plan.mode {
        Mode::Inline => None,
        Mode::Handoff | Mode::Background => Some(spawned::return_type(plan, &p)),
        Mode::Durable { persist } => Some(durable::return_type(persist, &p)),
    };
    if let Some(ty) = ret {
        set_return(&mut func, ty);
    }
    let body = match plan.mode {
        Mode::Inline => inline::body(plan, &p),
        Mode::Handoff | Mode::Background => {
            if plan.mode == Mode::Background {
                func.sig.asyncness = None;
            }
            spawned::body(plan, &p)
        }
        Mode::Durable { persist } => durable::body(plan, persist, &p, &params),
    };
    let companion = match plan.mode {
        Mode::Durable { .. } => companion::companion(&func, &p, &params),
        _ => TokenStream::new(),
    };
    let attrs = &func.attrs;
    let vis = &func.vis;
    let sig = &func.sig;
    let allow = p
        .by_value_args
        .then(|| quote!(#[allow(clippy::needless_pass_by_value)]));
    // The return type the mode writes (`HandleFor<..>`, `OutcomeFor<..>`) spans the user's,
    // so that an error about it is at the user's; it is the macro's, not theirs to simplify.
    let allow_type = plan
        .mode
        .wraps_return()
        .then(|| quote!(#[allow(clippy::type_complexity)]));
    quote! {
        #(#attrs)*
        #allow
        #allow_type
        #vis #sig #body
        #companion
    }
}

/// Gives the function the return type `ty`, keeping the user's `->` (or, without one, an
/// arrow at the function's name).
fn set_return(func: &mut ItemFn, ty: Type) {
    let arrow = match &func.sig.output {
        ReturnType::Type(arrow, _) => *arrow,
        ReturnType::Default => syn::Token![->](func.sig.ident.span()),
    };
    func.sig.output = ReturnType::Type(arrow, Box::new(ty));
}

#[cfg(test)]
mod tests {
    use quote::quote;

    /// The expansion as text, spaces removed.
    fn expanded(args: proc_macro2::TokenStream, item: &proc_macro2::TokenStream) -> String {
        super::retry(args, item).to_string().replace(' ', "")
    }

    #[test]
    fn timeout_none_sets_the_policys_timeout_to_duration_max_in_durable_mode() {
        let item = quote!(
            fn send(to: String) -> Result<(), String> {
                Ok(())
            }
        );
        let none = expanded(quote!(mode = "durable", timeout = "none"), &item);
        assert!(
            none.contains(".timeout(::core::option::Option::Some(::core::time::Duration::MAX))"),
            "{none}"
        );
        assert!(!none.contains("compile_error"), "{none}");
        assert!(
            !none.contains("timeout_error"),
            "no limit, so no timed-out error: {none}"
        );
        let default = expanded(quote!(mode = "durable"), &item);
        assert!(!default.contains("Duration::MAX"), "{default}");
        let inline = expanded(quote!(timeout = "none"), &item);
        assert!(inline.contains("compile_error"), "{inline}");
        assert!(inline.contains(r#"isfor`mode=\"durable\"`"#), "{inline}");
    }
}
