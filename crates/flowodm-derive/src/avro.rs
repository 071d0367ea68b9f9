//! Expands the `Avro` impl: the schema, the encoder, the decoder and the resolving decoder of a
//! struct (an Avro record) or of an enum of unit variants (an Avro enum).

use proc_macro2::TokenStream;
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields, Type};

use crate::attr::{ContainerAttrs, FieldAttrs, VariantAttrs};
use crate::ctxt::Ctxt;

/// One record field as the derive sees it.
pub struct FieldInfo<'a> {
    pub ident: &'a syn::Ident,
    pub ty: &'a Type,
    pub attrs: FieldAttrs,
    pub avro_name: String,
}

/// The struct's named fields with their attributes, or an error for other shapes.
pub fn fields<'a>(
    cx: &Ctxt,
    input: &'a DeriveInput,
    container: &ContainerAttrs,
) -> Option<Vec<FieldInfo<'a>>> {
    let Data::Struct(s) = &input.data else {
        return None;
    };
    let Fields::Named(named) = &s.fields else {
        cx.error_spanned_by(&input.ident, "a record needs a struct with named fields");
        return None;
    };
    let mut out = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for f in &named.named {
        let ident = f.ident.as_ref().expect("named field");
        let attrs = FieldAttrs::parse(cx, &f.attrs);
        let raw = ident.to_string();
        let raw = raw.strip_prefix("r#").unwrap_or(&raw).to_string();
        let avro_name = match (&attrs.rename, container.rename_all) {
            (Some(r), _) => r.value(),
            (None, Some((rule, _))) => rule.apply(&raw),
            (None, None) => raw,
        };
        if attrs.skip && (attrs.rename.is_some() || attrs.default.is_some()) {
            cx.error_spanned_by(
                ident,
                "a skipped field is not in the schema: `skip` cannot go with `rename` or `default`",
            );
        }
        if let (Some(d), true) = (&attrs.default, is_option(&f.ty)) {
            cx.syn_error(syn::Error::new(
                d.span,
                "an Option field defaults to null; Avro requires a union's default to match its first branch (\"null\")",
            ));
        }
        if !attrs.skip {
            if let Some(prev) = seen.insert(avro_name.clone(), ident) {
                cx.error_spanned_by(
                    ident,
                    format!(
                        "two fields are named `{avro_name}` in the schema (the other is `{prev}`)"
                    ),
                );
            }
        }
        out.push(FieldInfo {
            ident,
            ty: &f.ty,
            attrs,
            avro_name,
        });
    }
    Some(out)
}

fn is_option(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none()
        && p.path.segments.last().is_some_and(|s| s.ident == "Option"))
}

fn aliases_tokens(aliases: &[syn::LitStr]) -> TokenStream {
    quote!(&[#(#aliases),*])
}

fn opt_str(s: &Option<String>) -> TokenStream {
    match s {
        Some(s) => quote!(::core::option::Option::Some(#s)),
        None => quote!(::core::option::Option::None),
    }
}

/// The Avro name and namespace of the type.
fn names(input: &DeriveInput, container: &ContainerAttrs) -> (String, String) {
    let name = container
        .name
        .as_ref()
        .map(|n| n.value())
        .unwrap_or_else(|| input.ident.to_string());
    let namespace = container
        .namespace
        .as_ref()
        .map(|n| n.value())
        .unwrap_or_default();
    (name, namespace)
}

/// Expands the `Avro` impl for `input`, or records errors in `cx`.
pub fn expand(
    cx: &Ctxt,
    input: &DeriveInput,
    container: &ContainerAttrs,
    krate: &TokenStream,
) -> Option<TokenStream> {
    match &input.data {
        Data::Struct(_) => {
            let fields = fields(cx, input, container)?;
            Some(expand_record(input, container, &fields, krate))
        }
        Data::Enum(e) => expand_enum(cx, input, container, e, krate),
        Data::Union(_) => {
            cx.error_spanned_by(&input.ident, "Avro types are structs or enums, not unions");
            None
        }
    }
}

/// The record impl for a model whose fields were already parsed.
pub fn expand_record_for_model(
    input: &DeriveInput,
    container: &ContainerAttrs,
    fields: &[FieldInfo<'_>],
    krate: &TokenStream,
) -> TokenStream {
    expand_record(input, container, fields, krate)
}

fn expand_record(
    input: &DeriveInput,
    container: &ContainerAttrs,
    fields: &[FieldInfo<'_>],
    krate: &TokenStream,
) -> TokenStream {
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let (name, namespace) = names(input, container);
    let full = if namespace.is_empty() {
        name.clone()
    } else {
        format!("{namespace}.{name}")
    };
    let doc = opt_str(&container.doc);
    let aliases = aliases_tokens(&container.aliases);
    let p = quote!(#krate::__private);

    let live: Vec<&FieldInfo> = fields.iter().filter(|f| !f.attrs.skip).collect();

    let field_schemas = live.iter().map(|f| {
        let ty = f.ty;
        let n = &f.avro_name;
        let default = match (&f.attrs.default, is_option(f.ty)) {
            (Some(d), _) => {
                let j = &d.json;
                quote!(::core::option::Option::Some(#j))
            }
            (None, true) => quote!(::core::option::Option::Some("null")),
            (None, false) => quote!(::core::option::Option::None),
        };
        let fdoc = opt_str(&f.attrs.doc);
        let faliases = aliases_tokens(&f.attrs.aliases);
        quote_spanned!(ty.span()=> #p::field_json(#n, <#ty as #p::Avro>::schema(cx), #default, #fdoc, #faliases))
    });

    let encodes = live.iter().map(|f| {
        let fi = f.ident;
        let ty = f.ty;
        quote_spanned!(ty.span()=> <#ty as #p::Avro>::encode(&self.#fi, buf)?;)
    });

    let skipped_inits = fields.iter().filter(|f| f.attrs.skip).map(|f| {
        let fi = f.ident;
        let ty = f.ty;
        quote_spanned!(ty.span()=> #fi: <#ty as ::core::default::Default>::default())
    });
    let skipped_inits: Vec<TokenStream> = skipped_inits.collect();

    let decodes = live.iter().map(|f| {
        let fi = f.ident;
        let ty = f.ty;
        quote!(#fi: <#ty as #p::Avro>::decode(r)?)
    });

    let slots: Vec<_> = live
        .iter()
        .enumerate()
        .map(|(i, _)| format_ident!("__f{}", i))
        .collect();
    let slot_decls = live.iter().zip(&slots).map(|(f, s)| {
        let ty = f.ty;
        quote!(let mut #s: ::core::option::Option<#ty> = ::core::option::Option::None;)
    });
    let step_arms = live.iter().zip(&slots).enumerate().map(|(i, (f, s))| {
        let ty = f.ty;
        let i = i as u32;
        quote!(#p::Step::Read { field: #i, plan } => #s = ::core::option::Option::Some(#p::decode_with::<#ty>(r, plan, res)?),)
    });
    let default_arms = live.iter().zip(&slots).enumerate().map(|(i, (f, s))| {
        let ty = f.ty;
        let i = i as u32;
        quote!(#i => #s = ::core::option::Option::Some(<#ty as #p::Avro>::decode(&mut d)?),)
    });
    let finals = live.iter().zip(&slots).map(|(f, s)| {
        let fi = f.ident;
        let n = &f.avro_name;
        quote!(#fi: #s.ok_or_else(|| #p::missing_field(#full, #n))?)
    });

    quote! {
        #[automatically_derived]
        impl #impl_generics #p::Avro for #ident #ty_generics #where_clause {
            fn schema(cx: &mut #p::SchemaContext) -> #p::Json {
                #p::record_json(cx, #name, #namespace, #doc, #aliases, |cx| ::std::vec![#(#field_schemas),*])
            }

            #[inline]
            fn encode(&self, buf: &mut ::std::vec::Vec<u8>) -> #p::Result<()> {
                #(#encodes)*
                ::core::result::Result::Ok(())
            }

            #[inline]
            fn decode(r: &mut #p::Reader<'_>) -> #p::Result<Self> {
                r.enter()?;
                let value = Self { #(#decodes,)* #(#skipped_inits,)* };
                r.leave();
                ::core::result::Result::Ok(value)
            }

            fn decode_resolved(r: &mut #p::Reader<'_>, plan: &#p::Plan, res: &#p::Resolution) -> #p::Result<Self> {
                let #p::Plan::Record(index) = plan else {
                    return ::core::result::Result::Err(#p::unexpected_plan::<Self>(plan));
                };
                let record = res.record(*index);
                r.enter()?;
                #(#slot_decls)*
                for step in &record.steps {
                    match step {
                        #(#step_arms)*
                        #p::Step::Skip(node) => res.skip(r, *node)?,
                        other => return ::core::result::Result::Err(#p::bad_step::<Self>(other)),
                    }
                }
                for (field, bytes) in &record.defaults {
                    let mut d = #p::Reader::new(bytes);
                    match *field {
                        #(#default_arms)*
                        other => return ::core::result::Result::Err(#p::bad_field::<Self>(other)),
                    }
                }
                r.leave();
                ::core::result::Result::Ok(Self { #(#finals,)* #(#skipped_inits,)* })
            }
        }
    }
}

fn expand_enum(
    cx: &Ctxt,
    input: &DeriveInput,
    container: &ContainerAttrs,
    e: &syn::DataEnum,
    krate: &TokenStream,
) -> Option<TokenStream> {
    let ident = &input.ident;
    let p = quote!(#krate::__private);
    if e.variants.is_empty() {
        cx.error_spanned_by(ident, "an Avro enum needs at least one variant");
        return None;
    }
    let mut symbols = Vec::new();
    let mut variants = Vec::new();
    let mut default: Option<String> = None;
    for v in &e.variants {
        if !matches!(v.fields, Fields::Unit) {
            cx.error_spanned_by(
                v,
                "only enums of unit variants are supported: they map to an Avro enum",
            );
            continue;
        }
        let attrs = VariantAttrs::parse(cx, &v.attrs);
        let symbol = match (&attrs.rename, container.rename_all) {
            (Some(r), _) => r.value(),
            (None, Some((rule, _))) => rule.apply(&v.ident.to_string()),
            (None, None) => v.ident.to_string(),
        };
        if symbols.contains(&symbol) {
            cx.error_spanned_by(v, format!("two variants have the symbol `{symbol}`"));
        }
        if attrs.default {
            if default.is_some() {
                cx.error_spanned_by(v, "only one variant can be the default");
            }
            default = Some(symbol.clone());
        }
        symbols.push(symbol);
        variants.push(&v.ident);
    }
    let (name, namespace) = names(input, container);
    let doc = opt_str(&container.doc);
    let aliases = aliases_tokens(&container.aliases);
    let default = opt_str(&default);
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let indices: Vec<i32> = (0..variants.len() as i32).collect();
    let uindices: Vec<u32> = (0..variants.len() as u32).collect();
    Some(quote! {
        #[automatically_derived]
        impl #impl_generics #p::Avro for #ident #ty_generics #where_clause {
            fn schema(cx: &mut #p::SchemaContext) -> #p::Json {
                #p::enum_json(cx, #name, #namespace, #doc, #aliases, &[#(#symbols),*], #default)
            }

            #[inline]
            fn encode(&self, buf: &mut ::std::vec::Vec<u8>) -> #p::Result<()> {
                let index: i32 = match self { #(Self::#variants => #indices,)* };
                #p::write_int(buf, index);
                ::core::result::Result::Ok(())
            }

            #[inline]
            fn decode(r: &mut #p::Reader<'_>) -> #p::Result<Self> {
                match r.read_int()? {
                    #(#indices => ::core::result::Result::Ok(Self::#variants),)*
                    other => ::core::result::Result::Err(#p::bad_symbol::<Self>(other as i64)),
                }
            }

            fn decode_resolved(r: &mut #p::Reader<'_>, plan: &#p::Plan, _res: &#p::Resolution) -> #p::Result<Self> {
                let #p::Plan::Enum(map) = plan else {
                    return ::core::result::Result::Err(#p::unexpected_plan::<Self>(plan));
                };
                let written = r.read_int()?;
                let index = usize::try_from(written).ok().and_then(|i| map.get(i).copied());
                match index {
                    #(::core::option::Option::Some(::core::option::Option::Some(#uindices)) => ::core::result::Result::Ok(Self::#variants),)*
                    _ => ::core::result::Result::Err(#p::bad_symbol::<Self>(written as i64)),
                }
            }
        }
    })
}
