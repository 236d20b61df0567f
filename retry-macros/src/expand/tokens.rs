//! Token surgery the expansion needs: moving spans onto the user's tokens, renaming `self`.

use proc_macro2::{Ident, Span, TokenStream, TokenTree};
use quote::{quote_spanned, ToTokens};
use syn::Type;

/// Gives every token of `tokens` the span `span`, so an error in it points at the user's token.
pub fn respan(tokens: TokenStream, span: Span) -> TokenStream {
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
pub fn edge_spans(ty: &Type, fallback: Span) -> (Span, Span) {
    let mut tokens = ty.to_token_stream().into_iter();
    let first = tokens.next().map_or(fallback, |t| t.span());
    let last = tokens.last().map_or(first, |t| t.span());
    (first, last)
}

/// The type `alias<ret>` of a function whose return type the mode replaces, spanning the
/// return type: an error about it is at the return type, once.
pub fn around_ret(alias: TokenStream, ret: &Type, ret_span: Span) -> Type {
    let (first, last) = edge_spans(ret, ret_span);
    let alias = respan(alias, first);
    let open = quote_spanned!(first=> <);
    let close = quote_spanned!(last=> >);
    syn::parse_quote!(#alias #open #ret #close)
}

/// Replaces the receiver `self` with `__retry_self` (not `self::` paths).
pub fn replace_self(tokens: TokenStream) -> TokenStream {
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

/// Whether `name` appears in `tokens`, as an identifier or inside a literal (an inline
/// format argument such as `"{id}"`).
pub fn mentions(tokens: &TokenStream, name: &str) -> bool {
    tokens.clone().into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == name,
        TokenTree::Literal(l) => l.to_string().contains(name),
        TokenTree::Group(g) => mentions(&g.stream(), name),
        TokenTree::Punct(_) => false,
    })
}
