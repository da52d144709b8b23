//! Procedural macros for runyard: `#[runyard::task]` and
//! `#[derive(runyard::Params)]`. Use them through the `runyard` crate.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod params;
mod task;

/// Defines a task from a function and registers it at link time.
///
/// See the `runyard` crate's documentation of `task` for the options.
#[proc_macro_attribute]
pub fn task(args: TokenStream, item: TokenStream) -> TokenStream {
    task::expand(args.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Derives `runyard::Params`: constraints from `#[param(...)]` (`min`,
/// `max`, `min_len`, `max_len`, `one_of = [...]`, `nested`), the field
/// descriptions for `runyard describe` from types, doc comments and serde's
/// defaults. `#[param(type = "string or list of strings")]` names a field's
/// type for people where the Rust type says little (an untagged enum).
#[proc_macro_derive(Params, attributes(param))]
pub fn derive_params(item: TokenStream) -> TokenStream {
    params::expand(item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// The doc comment's lines, joined.
fn doc_of(attrs: &[syn::Attribute]) -> String {
    let mut lines = Vec::new();
    for a in attrs {
        if !a.path().is_ident("doc") {
            continue;
        }
        if let syn::Meta::NameValue(nv) = &a.meta {
            if let syn::Expr::Lit(syn::ExprLit {
                lit: syn::Lit::Str(s),
                ..
            }) = &nv.value
            {
                lines.push(s.value().trim().to_string());
            }
        }
    }
    lines.join("\n").trim().to_string()
}

/// A type as people write it: `Option<String>`, not `Option < String >`.
fn type_text(ty: &syn::Type) -> String {
    let s = quote::quote!(#ty).to_string();
    s.replace(" < ", "<")
        .replace("< ", "<")
        .replace(" >", ">")
        .replace(" ,", ",")
        .replace(" :: ", "::")
        .replace(":: ", "::")
        .replace("& ", "&")
        .replace(" ;", ";")
        .replace("[ ", "[")
        .replace(" ]", "]")
}
