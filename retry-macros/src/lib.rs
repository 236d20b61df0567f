//! The `#[retry]` attribute. Depend on `retry-runtime`, which re-exports it and documents
//! every key; this crate only parses, checks and rewrites.

mod attr;
mod expand;
mod plan;
mod unique;
mod valid;

use proc_macro::TokenStream;

/// Makes a function retry on failure. See the `retry-runtime` crate for the keys.
#[proc_macro_attribute]
pub fn retry(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::retry(args.into(), &item.into()).into()
}
