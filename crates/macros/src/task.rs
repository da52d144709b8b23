//! `#[runyard::task(...)]` on a function.

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::parse::Parser;
use syn::punctuated::Punctuated;
use syn::spanned::Spanned;
use syn::{Expr, ExprLit, FnArg, ItemFn, Lit, Meta, ReturnType, Token, Type};

#[derive(Default)]
struct Args {
    name: Option<String>,
    kind: Option<(String, proc_macro2::Span)>,
    description: Option<String>,
    max_attempts: Option<u32>,
    backoff: Option<String>,
    timeout: Option<String>,
    isolate: bool,
    worker_concurrency: Option<u32>,
    queue_concurrency: Option<u32>,
    rate: Option<String>,
}

const KNOWN: &str = "name, kind, description, max_attempts, backoff, timeout, isolate, \
     worker_concurrency, queue_concurrency, rate";

fn lit_str(e: &Expr, key: &str) -> syn::Result<String> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Str(s), ..
        }) => Ok(s.value()),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes a string, e.g. {key} = \"...\""),
        )),
    }
}

fn lit_u32(e: &Expr, key: &str) -> syn::Result<u32> {
    match e {
        Expr::Lit(ExprLit {
            lit: Lit::Int(i), ..
        }) => i.base10_parse(),
        other => Err(syn::Error::new(
            other.span(),
            format!("`{key}` takes an integer"),
        )),
    }
}

fn parse_args(args: TokenStream) -> syn::Result<Args> {
    let metas = Punctuated::<Meta, Token![,]>::parse_terminated.parse2(args)?;
    let mut out = Args::default();
    for meta in metas {
        let key = meta
            .path()
            .get_ident()
            .map(|i| i.to_string())
            .unwrap_or_default();
        match (&meta, key.as_str()) {
            (Meta::Path(_), "isolate") => out.isolate = true,
            (Meta::NameValue(nv), k) => {
                let v = &nv.value;
                match k {
                    "name" => out.name = Some(lit_str(v, k)?),
                    "kind" => out.kind = Some((lit_str(v, k)?, v.span())),
                    "description" => out.description = Some(lit_str(v, k)?),
                    "max_attempts" => {
                        let n = lit_u32(v, k)?;
                        if n == 0 {
                            return Err(syn::Error::new(v.span(), "max_attempts must be >= 1"));
                        }
                        out.max_attempts = Some(n);
                    }
                    "backoff" => {
                        let s = lit_str(v, k)?;
                        s.parse::<runyard_core::Backoff>()
                            .map_err(|e| syn::Error::new(v.span(), e.to_string()))?;
                        out.backoff = Some(s);
                    }
                    "timeout" => {
                        let s = lit_str(v, k)?;
                        runyard_core::parse_positive_duration(&s)
                            .map_err(|e| syn::Error::new(v.span(), e.to_string()))?;
                        out.timeout = Some(s);
                    }
                    "isolate" => match v {
                        Expr::Lit(ExprLit {
                            lit: Lit::Bool(b), ..
                        }) => out.isolate = b.value,
                        other => {
                            return Err(syn::Error::new(
                                other.span(),
                                "`isolate` takes true or false",
                            ))
                        }
                    },
                    "worker_concurrency" => {
                        let n = lit_u32(v, k)?;
                        if n == 0 {
                            return Err(syn::Error::new(
                                v.span(),
                                "worker_concurrency must be >= 1",
                            ));
                        }
                        out.worker_concurrency = Some(n);
                    }
                    "queue_concurrency" => {
                        let n = lit_u32(v, k)?;
                        if n == 0 {
                            return Err(syn::Error::new(
                                v.span(),
                                "queue_concurrency must be >= 1 (the most attempts of this task at \
                                 once across every worker of a queue; to stop a task, pause it)",
                            ));
                        }
                        out.queue_concurrency = Some(n);
                    }
                    "rate" => {
                        let s = lit_str(v, k).map_err(|e| {
                            syn::Error::new(
                                e.span(),
                                "`rate` takes a string, e.g. rate = \"10/s\" (COUNT/s, COUNT/m or COUNT/h)",
                            )
                        })?;
                        s.parse::<runyard_core::Rate>()
                            .map_err(|e| syn::Error::new(v.span(), e.to_string()))?;
                        out.rate = Some(s);
                    }
                    // Renamed, so that it is never taken for a limit per
                    // queue (which two engines on one queue would share).
                    "concurrency" => {
                        return Err(syn::Error::new(
                            meta.path().span(),
                            "`concurrency` is now `worker_concurrency` (the most attempts of this task one engine runs at once)",
                        ))
                    }
                    _ => {
                        return Err(syn::Error::new(
                            meta.path().span(),
                            format!("unknown task option `{k}`; expected one of: {KNOWN}"),
                        ))
                    }
                }
            }
            _ => {
                return Err(syn::Error::new(
                    meta.span(),
                    format!("unknown task option `{key}`; expected one of: {KNOWN}"),
                ))
            }
        }
    }
    Ok(out)
}

/// Whether a type is `&Context` / `Context` (the last path segment named `Context`).
fn is_context(ty: &Type) -> bool {
    let inner = match ty {
        Type::Reference(r) => &*r.elem,
        other => other,
    };
    matches!(inner, Type::Path(p) if p.path.segments.last().is_some_and(|s| s.ident == "Context"))
}

/// `Result<T, E>` → `T`; anything else is not a result.
fn result_ok_type(ret: &ReturnType) -> Option<Type> {
    let ReturnType::Type(_, ty) = ret else {
        return None;
    };
    let Type::Path(p) = &**ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

pub(crate) fn expand(args: TokenStream, item: TokenStream) -> syn::Result<TokenStream> {
    let args = parse_args(args)?;
    let func: ItemFn = syn::parse2(item)?;
    let sig = &func.sig;
    let fn_name = &sig.ident;
    let vis = &func.vis;
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "a task function cannot be generic",
        ));
    }
    let is_async = sig.asyncness.is_some();
    let name = args.name.clone().unwrap_or_else(|| fn_name.to_string());
    let doc = crate::doc_of(&func.attrs);
    let description = args
        .description
        .clone()
        .unwrap_or_else(|| doc.lines().next().unwrap_or("").to_string());

    // Inputs: (params)? then (ctx)?
    let mut params_ty: Option<Type> = None;
    let mut has_ctx = false;
    for (i, arg) in sig.inputs.iter().enumerate() {
        let FnArg::Typed(pt) = arg else {
            return Err(syn::Error::new(
                arg.span(),
                "a task is a free function, not a method",
            ));
        };
        if is_context(&pt.ty) {
            if is_async && matches!(*pt.ty, Type::Reference(_)) {
                return Err(syn::Error::new(
                    pt.ty.span(),
                    "an async task takes its context by value: `ctx: Context`",
                ));
            }
            if !is_async && !matches!(*pt.ty, Type::Reference(_)) {
                return Err(syn::Error::new(
                    pt.ty.span(),
                    "a sync task takes its context by reference: `ctx: &Context`",
                ));
            }
            has_ctx = true;
        } else if i == 0 && params_ty.is_none() {
            params_ty = Some((*pt.ty).clone());
        } else {
            return Err(syn::Error::new(
                pt.span(),
                "a task function takes its parameters, then optionally its context: `fn(params: P, ctx: &Context)`",
            ));
        }
    }
    let params_ty = params_ty.unwrap_or_else(|| syn::parse_quote!(()));
    let call_args = match (sig.inputs.len(), has_ctx) {
        (0, _) => quote!(),
        (1, true) => quote!(ctx),
        (1, false) => quote!(params),
        _ => quote!(params, ctx),
    };
    let (output_ty, fallible) = match result_ok_type(&sig.output) {
        Some(t) => (t, true),
        None => match &sig.output {
            ReturnType::Default => (syn::parse_quote!(()), false),
            ReturnType::Type(_, t) => ((**t).clone(), false),
        },
    };
    let r = quote!(::runyard);
    let result = if fallible {
        quote!(match __value {
            ::core::result::Result::Ok(v) => ::core::result::Result::Ok(v),
            ::core::result::Result::Err(e) =>
                ::core::result::Result::Err(::core::convert::From::from(e)),
        })
    } else {
        quote!(::core::result::Result::Ok(__value))
    };

    // One `defaults()` holds every per-task setting: a new one is a
    // setter here and a field of `TaskDefaults`.
    let mut setters = Vec::new();
    if args.max_attempts.is_some() || args.backoff.is_some() {
        let max = match args.max_attempts {
            Some(n) => quote!(#n),
            None => quote!(#r::__private::RetryPolicy::DEFAULT.max_attempts),
        };
        let backoff = match &args.backoff {
            Some(s) => {
                quote!(<#r::__private::Backoff as ::core::str::FromStr>::from_str(#s).expect("checked at compile time"))
            }
            None => quote!(#r::__private::RetryPolicy::DEFAULT.backoff),
        };
        setters.push(
            quote!(.policy(#r::__private::RetryPolicy { max_attempts: #max, backoff: #backoff })),
        );
    }
    if let Some(s) = &args.timeout {
        setters.push(
            quote!(.timeout(#r::__private::parse_duration(#s).expect("checked at compile time"))),
        );
    }
    if args.isolate {
        setters.push(quote!(.isolate(true)));
    }
    if let Some(n) = args.worker_concurrency {
        setters.push(quote!(.worker_concurrency(#n)));
    }
    if let Some(n) = args.queue_concurrency {
        setters.push(quote!(.queue_concurrency(#n)));
    }
    if let Some(s) = &args.rate {
        setters.push(
            quote!(.rate(<#r::__private::Rate as ::core::str::FromStr>::from_str(#s).expect("checked at compile time"))),
        );
    }
    let defaults = (!setters.is_empty()).then(|| {
        quote! {
            fn defaults(&self) -> #r::__private::TaskDefaults {
                #r::__private::TaskDefaults::new() #(#setters)*
            }
        }
    });

    let job_doc = format!(
        "A job of the `{name}` task with these parameters; options by the builder (`{fn_name}::job(params).max_attempts(3)`)."
    );
    let task_trait = if is_async {
        quote!(#r::AsyncTask)
    } else {
        quote!(#r::Task)
    };
    // Spanned at the function's name, so that a job with the wrong
    // parameters is told where the task is defined.
    let job_fn = quote_spanned! {fn_name.span()=>
        impl #fn_name {
            #[doc = #job_doc]
            #[allow(dead_code)]
            #vis fn job(params: #params_ty) -> #r::JobSpec {
                <Self as #task_trait>::job(params)
            }
        }
    };

    let (trait_impl, def) = if is_async {
        if let Some((k, span)) = &args.kind {
            if k != "async" {
                return Err(syn::Error::new(
                    *span,
                    "an `async fn` task is of kind \"async\"",
                ));
            }
        }
        (
            quote! {
                impl #r::AsyncTask for #fn_name {
                    const NAME: &'static str = #name;
                    const DESCRIPTION: &'static str = #description;
                    type Params = #params_ty;
                    type Output = #output_ty;
                    #defaults
                    fn run(&self, params: #params_ty, ctx: #r::Context)
                        -> impl ::core::future::Future<Output = ::core::result::Result<#output_ty, #r::TaskError>> + ::core::marker::Send
                    {
                        let _ = &ctx;
                        async move {
                            let __value = #fn_name(#call_args).await;
                            #result
                        }
                    }
                }
            },
            quote!(#r::TaskDef::from_async(#fn_name {})),
        )
    } else {
        let kind = match args.kind.as_ref().map(|(k, s)| (k.as_str(), *s)) {
            None | Some(("cpu", _)) => quote!(#r::TaskKind::Cpu),
            Some(("blocking", _)) => quote!(#r::TaskKind::Blocking),
            Some(("async", s)) => {
                return Err(syn::Error::new(s, "kind \"async\" needs an `async fn`"))
            }
            Some((_, s)) => {
                return Err(syn::Error::new(
                    s,
                    "kind is \"cpu\" or \"blocking\" (or an `async fn`)",
                ))
            }
        };
        (
            quote! {
                impl #r::Task for #fn_name {
                    const NAME: &'static str = #name;
                    const KIND: #r::TaskKind = #kind;
                    const DESCRIPTION: &'static str = #description;
                    type Params = #params_ty;
                    type Output = #output_ty;
                    #defaults
                    fn run(&self, params: #params_ty, ctx: &#r::Context) -> ::core::result::Result<#output_ty, #r::TaskError> {
                        let _ = (&params, ctx);
                        let __value = #fn_name(#call_args);
                        #result
                    }
                }
            },
            quote!(#r::TaskDef::from_task(#fn_name {})),
        )
    };

    let make = format_ident!("__runyard_make_{}", fn_name);
    let struct_doc =
        format!("The `{name}` task (defined by `#[runyard::task]` on `fn {fn_name}`).");
    Ok(quote! {
        #func

        #[doc = #struct_doc]
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, Default)]
        #vis struct #fn_name {}

        #trait_impl

        #job_fn

        #[doc(hidden)]
        #[allow(non_snake_case)]
        fn #make() -> #r::TaskDef {
            #def.with_origin(::core::concat!(::core::file!(), ":", ::core::line!()))
        }

        #r::__private::inventory::submit! {
            #r::__private::Registration::new(#make)
        }
    })
}
