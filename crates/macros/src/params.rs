//! `#[derive(Params)]`: validation and description of a parameter struct.

use proc_macro2::TokenStream;
use quote::quote;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Expr, ExprLit, Fields, Lit, Meta, Token, Type};

#[derive(Default)]
struct FieldArgs {
    min: Option<Expr>,
    max: Option<Expr>,
    min_len: Option<Expr>,
    max_len: Option<Expr>,
    one_of: Option<Vec<Expr>>,
    nested: bool,
    /// `type = "..."`: the type as people name it, where the Rust type
    /// says little (an untagged enum, a type of the task's own).
    type_label: Option<String>,
}

enum SerdeDefault {
    None,
    Default,
    Path(syn::ExprPath),
}

struct SerdeField {
    rename: Option<String>,
    default: SerdeDefault,
    skip: bool,
    /// `with = "module"` or `serialize_with = "function"`: how the field's
    /// value is written, so its default is shown the same way (a duration
    /// as `"2s"`, not `{"secs": 2, "nanos": 0}`).
    serialize: Option<syn::ExprPath>,
}

/// One `key` or `key = value` of `#[param(...)]`. Not a `syn::Meta`,
/// because `type` is a keyword and a `Meta`'s path cannot be one.
struct FieldArg {
    key: syn::Ident,
    value: Option<Expr>,
}

impl syn::parse::Parse for FieldArg {
    fn parse(input: syn::parse::ParseStream<'_>) -> syn::Result<FieldArg> {
        let key = input.call(<syn::Ident as syn::ext::IdentExt>::parse_any)?;
        let value = if input.peek(Token![=]) {
            input.parse::<Token![=]>()?;
            Some(input.parse()?)
        } else {
            None
        };
        Ok(FieldArg { key, value })
    }
}

fn parse_field_args(attrs: &[syn::Attribute]) -> syn::Result<FieldArgs> {
    let mut out = FieldArgs::default();
    for a in attrs.iter().filter(|a| a.path().is_ident("param")) {
        let args = a.parse_args_with(Punctuated::<FieldArg, Token![,]>::parse_terminated)?;
        for arg in args {
            let key = arg.key.to_string();
            match (arg.value, key.as_str()) {
                (None, "nested") => out.nested = true,
                (Some(v), "min") => out.min = Some(v),
                (Some(v), "max") => out.max = Some(v),
                (Some(v), "min_len") => out.min_len = Some(v),
                (Some(v), "max_len") => out.max_len = Some(v),
                (Some(v), "type") => match &v {
                    Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) if !s.value().trim().is_empty() => out.type_label = Some(s.value()),
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "type takes the type as people name it: type = \"string or list of strings\"",
                        ))
                    }
                },
                (Some(v), "one_of") => match &v {
                    Expr::Array(arr) => out.one_of = Some(arr.elems.iter().cloned().collect()),
                    other => return Err(syn::Error::new(other.span(), "one_of takes a list: one_of = [\"a\", \"b\"]")),
                },
                _ => {
                    return Err(syn::Error::new(
                        arg.key.span(),
                        format!("unknown constraint `{key}`; expected min, max, min_len, max_len, one_of, nested or type"),
                    ))
                }
            }
        }
    }
    Ok(out)
}

fn parse_serde_field(attrs: &[syn::Attribute]) -> syn::Result<SerdeField> {
    let mut out = SerdeField {
        rename: None,
        default: SerdeDefault::None,
        skip: false,
        serialize: None,
    };
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let Ok(metas) = a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
            continue;
        };
        for m in metas {
            match &m {
                Meta::Path(p) if p.is_ident("default") => out.default = SerdeDefault::Default,
                Meta::Path(p) if p.is_ident("skip") || p.is_ident("skip_deserializing") => {
                    out.skip = true
                }
                Meta::NameValue(nv) if nv.path.is_ident("default") => {
                    if let Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) = &nv.value
                    {
                        out.default = SerdeDefault::Path(s.parse()?);
                    }
                }
                Meta::NameValue(nv)
                    if nv.path.is_ident("with") || nv.path.is_ident("serialize_with") =>
                {
                    if let Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) = &nv.value
                    {
                        let text = if nv.path.is_ident("with") {
                            format!("{}::serialize", s.value())
                        } else {
                            s.value()
                        };
                        out.serialize = Some(syn::parse_str(&text)?);
                    }
                }
                Meta::NameValue(nv) if nv.path.is_ident("rename") => {
                    if let Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) = &nv.value
                    {
                        out.rename = Some(s.value());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(out)
}

/// `#[serde(default)]` and `#[serde(rename_all = "...")]` on the struct.
fn container_serde(attrs: &[syn::Attribute]) -> (bool, Option<String>) {
    let mut default = false;
    let mut rename_all = None;
    for a in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let Ok(metas) = a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated) else {
            continue;
        };
        for m in metas {
            match &m {
                Meta::Path(p) if p.is_ident("default") => default = true,
                Meta::NameValue(nv) if nv.path.is_ident("rename_all") => {
                    if let Expr::Lit(ExprLit {
                        lit: Lit::Str(s), ..
                    }) = &nv.value
                    {
                        rename_all = Some(s.value());
                    }
                }
                _ => {}
            }
        }
    }
    (default, rename_all)
}

/// `#[param(check = path)]` on the struct: functions `fn(&Self) -> Result<(), Violation>`
/// for constraints that span fields, run after the fields' own.
fn container_checks(attrs: &[syn::Attribute]) -> syn::Result<Vec<syn::ExprPath>> {
    let mut out = Vec::new();
    for a in attrs.iter().filter(|a| a.path().is_ident("param")) {
        let metas = a.parse_args_with(Punctuated::<Meta, Token![,]>::parse_terminated)?;
        for m in metas {
            match &m {
                Meta::NameValue(nv) if nv.path.is_ident("check") => match &nv.value {
                    Expr::Path(p) => out.push(p.clone()),
                    other => {
                        return Err(syn::Error::new(
                            other.span(),
                            "check takes a function path: #[param(check = my_check)]",
                        ))
                    }
                },
                _ => {
                    return Err(syn::Error::new(
                        m.span(),
                        "on a struct, #[param(...)] takes `check = function`",
                    ))
                }
            }
        }
    }
    Ok(out)
}

fn rename(name: &str, rule: Option<&str>) -> String {
    let words: Vec<&str> = name.split('_').filter(|w| !w.is_empty()).collect();
    let cap = |w: &str| {
        let mut c = w.chars();
        c.next()
            .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
            .unwrap_or_default()
    };
    match rule {
        Some("lowercase") => name.to_lowercase(),
        Some("UPPERCASE") => name.to_uppercase(),
        Some("camelCase") => words
            .iter()
            .enumerate()
            .map(|(i, w)| if i == 0 { w.to_string() } else { cap(w) })
            .collect(),
        Some("PascalCase") => words.iter().map(|w| cap(w)).collect(),
        Some("kebab-case") => words.join("-"),
        Some("SCREAMING_SNAKE_CASE") => name.to_uppercase(),
        Some("SCREAMING-KEBAB-CASE") => words.join("-").to_uppercase(),
        _ => name.to_string(),
    }
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

fn expr_text(e: &Expr) -> String {
    let s = quote!(#e).to_string();
    s.replace(' ', "")
}

pub(crate) fn expand(item: TokenStream) -> syn::Result<TokenStream> {
    let input: DeriveInput = syn::parse2(item)?;
    let ident = &input.ident;
    if !input.generics.params.is_empty() {
        return Err(syn::Error::new(
            input.generics.span(),
            "#[derive(Params)] does not support generic structs",
        ));
    }
    let Data::Struct(data) = &input.data else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Params)] is for structs with named fields",
        ));
    };
    let Fields::Named(fields) = &data.fields else {
        return Err(syn::Error::new(
            input.span(),
            "#[derive(Params)] is for structs with named fields",
        ));
    };
    let (container_default, rename_all) = container_serde(&input.attrs);
    let container_checks = container_checks(&input.attrs)?;
    let r = quote!(::runyard);

    let mut checks = Vec::new();
    let mut schema_fields = Vec::new();
    for f in &fields.named {
        let fident = f.ident.as_ref().expect("named");
        let serde = parse_serde_field(&f.attrs)?;
        if serde.skip {
            continue;
        }
        let args = parse_field_args(&f.attrs)?;
        let name = serde
            .rename
            .clone()
            .unwrap_or_else(|| rename(&fident.to_string(), rename_all.as_deref()));
        let ty = &f.ty;
        let optional = is_option(ty);

        let mut constraints: Vec<String> = Vec::new();
        let mut conds = Vec::new();
        if let Some(min) = &args.min {
            let c = format!(">= {}", expr_text(min));
            conds.push(quote!(if !(*__v >= #min) { return ::core::result::Result::Err(#r::__private::Violation::new(#name, #c, __v)); }));
            constraints.push(c);
        }
        if let Some(max) = &args.max {
            let c = format!("<= {}", expr_text(max));
            conds.push(quote!(if !(*__v <= #max) { return ::core::result::Result::Err(#r::__private::Violation::new(#name, #c, __v)); }));
            constraints.push(c);
        }
        if let Some(n) = &args.min_len {
            let c = format!("at least {} long", expr_text(n));
            conds.push(quote!(if !(__v.len() >= #n) { return ::core::result::Result::Err(#r::__private::Violation::new(#name, #c, __v)); }));
            constraints.push(c);
        }
        if let Some(n) = &args.max_len {
            let c = format!("at most {} long", expr_text(n));
            conds.push(quote!(if !(__v.len() <= #n) { return ::core::result::Result::Err(#r::__private::Violation::new(#name, #c, __v)); }));
            constraints.push(c);
        }
        if let Some(list) = &args.one_of {
            let c = format!(
                "one of {}",
                list.iter().map(expr_text).collect::<Vec<_>>().join(", ")
            );
            conds.push(quote!(if ![#(#list),*].iter().any(|__o| __v == __o) { return ::core::result::Result::Err(#r::__private::Violation::new(#name, #c, __v)); }));
            constraints.push(c);
        }
        if args.nested {
            conds.push(quote!(#r::__private::Params::validate(__v).map_err(|e| e.within(#name))?;));
        }
        if !conds.is_empty() {
            checks.push(if optional {
                quote!(if let ::core::option::Option::Some(__v) = &self.#fident { #(#conds)* })
            } else {
                quote!({ let __v = &self.#fident; #(#conds)* })
            });
        }

        let ty_text = crate::type_text(ty);
        let type_label = match &args.type_label {
            Some(l) => quote!(::core::option::Option::Some(#l.to_string())),
            None => quote!(::core::option::Option::None),
        };
        let doc = crate::doc_of(&f.attrs);
        let to_value = |v: TokenStream| match &serde.serialize {
            Some(f) => quote!(#f(&#v, #r::__private::serde_json::value::Serializer).ok()),
            None => quote!(#r::__private::serde_json::to_value(#v).ok()),
        };
        let (required, default) = match &serde.default {
            SerdeDefault::Default => (
                false,
                to_value(quote!(<#ty as ::core::default::Default>::default())),
            ),
            SerdeDefault::Path(p) => (false, to_value(quote!(#p()))),
            SerdeDefault::None if container_default => (
                false,
                quote!(__defaults.as_ref().and_then(|d| d.get(#name).cloned())),
            ),
            SerdeDefault::None if optional => (false, quote!(::core::option::Option::None)),
            SerdeDefault::None => (true, quote!(::core::option::Option::None)),
        };
        schema_fields.push(quote! {
            #r::__private::FieldSchema {
                name: #name.to_string(),
                ty: #ty_text.to_string(),
                type_label: #type_label,
                required: #required,
                default: #default,
                constraints: ::std::vec![#(#constraints.to_string()),*],
                doc: #doc.to_string(),
            }
        });
    }
    let defaults = if container_default {
        quote!(let __defaults: ::core::option::Option<#r::__private::serde_json::Value> = #r::__private::serde_json::to_value(<#ident as ::core::default::Default>::default()).ok();)
    } else {
        quote!()
    };
    Ok(quote! {
        impl #r::__private::Params for #ident {
            fn validate(&self) -> ::core::result::Result<(), #r::__private::Violation> {
                #(#checks)*
                #(#container_checks(self)?;)*
                ::core::result::Result::Ok(())
            }

            fn schema() -> #r::__private::ParamSchema {
                #defaults
                #r::__private::ParamSchema {
                    fields: ::std::vec![#(#schema_fields),*],
                    free_form: false,
                }
            }
        }
    })
}
