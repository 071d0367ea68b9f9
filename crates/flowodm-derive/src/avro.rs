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
        if let (Some(_), Some((_, _, span))) = (attrs.micros, attrs.decimal) {
            cx.syn_error(syn::Error::new(
                span,
                "`micros` and `decimal` cannot go together",
            ));
        }
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

impl FieldInfo<'_> {
    /// The path whose functions encode and decode this field: the type's own `Avro` impl, or
    /// the adapter its attributes choose.
    fn codec(&self, p: &TokenStream) -> TokenStream {
        let ty = self.ty;
        match self.adapter(p) {
            Some(a) => quote_spanned!(ty.span()=> <#a as #p::AvroAdapter<#ty>>),
            None => quote_spanned!(ty.span()=> <#ty as #p::Avro>),
        }
    }

    fn adapter(&self, p: &TokenStream) -> Option<TokenStream> {
        if self.attrs.micros.is_some() {
            return Some(quote!(#p::Micros));
        }
        self.attrs.decimal.map(|(precision, scale, _)| {
            let precision = precision as usize;
            let scale = scale as u32;
            quote!(#p::DecimalBytes<#precision, #scale>)
        })
    }

    /// Decodes the field following a plan.
    fn decode_with(&self, p: &TokenStream) -> TokenStream {
        let ty = self.ty;
        match self.adapter(p) {
            Some(a) => quote_spanned!(ty.span()=> #p::decode_adapted::<#a, #ty>(r, plan, res)),
            None => quote_spanned!(ty.span()=> #p::decode_with::<#ty>(r, plan, res)),
        }
    }
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
        let codec = f.codec(&p);
        quote_spanned!(ty.span()=> #p::field_json(#n, #codec::schema(cx), #default, #fdoc, #faliases))
    });

    let encodes = live.iter().map(|f| {
        let fi = f.ident;
        let codec = f.codec(&p);
        quote!(#codec::encode(&self.#fi, buf)?;)
    });

    let skipped_inits = fields.iter().filter(|f| f.attrs.skip).map(|f| {
        let fi = f.ident;
        let ty = f.ty;
        quote_spanned!(ty.span()=> #fi: <#ty as ::core::default::Default>::default())
    });
    let skipped_inits: Vec<TokenStream> = skipped_inits.collect();

    let decodes = live.iter().map(|f| {
        let fi = f.ident;
        let codec = f.codec(&p);
        quote!(#fi: #codec::decode(r)?)
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
        let i = i as u32;
        let decode = f.decode_with(&p);
        quote!(#p::Step::Read { field: #i, plan } => #s = ::core::option::Option::Some(#decode?),)
    });
    let default_arms = live.iter().zip(&slots).enumerate().map(|(i, (f, s))| {
        let i = i as u32;
        let codec = f.codec(&p);
        quote!(#i => #s = ::core::option::Option::Some(#codec::decode(&mut d)?),)
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
    if e.variants.iter().any(|v| !matches!(v.fields, Fields::Unit)) {
        return expand_union(cx, input, container, e, krate);
    }
    let mut symbols = Vec::new();
    let mut variants = Vec::new();
    let mut default: Option<String> = None;
    for v in &e.variants {
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

/// An enum with data: an Avro union. A unit variant is `null` (at most one), a newtype variant
/// `V(T)` is `T`'s schema, a struct variant `V { .. }` is a record named `V` in the enum's
/// namespace.
fn expand_union(
    cx: &Ctxt,
    input: &DeriveInput,
    container: &ContainerAttrs,
    e: &syn::DataEnum,
    krate: &TokenStream,
) -> Option<TokenStream> {
    let ident = &input.ident;
    let p = quote!(#krate::__private);
    if !input.generics.params.is_empty() {
        cx.error_spanned_by(
            &input.generics,
            "an enum with data (an Avro union) cannot be generic",
        );
        return None;
    }
    let (_, namespace) = names(input, container);
    let mut helpers = Vec::new();
    let mut schemas = Vec::new();
    let mut encodes = Vec::new();
    let mut decodes = Vec::new();
    let mut resolved = Vec::new();
    let mut units = 0;
    for (i, v) in e.variants.iter().enumerate() {
        let attrs = VariantAttrs::parse(cx, &v.attrs);
        if attrs.default {
            cx.error_spanned_by(
                v,
                "`default` applies to enums of unit variants (Avro enums), not to unions",
            );
        }
        let vi = &v.ident;
        let idx = i as i64;
        let bi = i as u32;
        match &v.fields {
            Fields::Unit => {
                units += 1;
                if units > 1 {
                    cx.error_spanned_by(v, "a union holds null once: at most one unit variant");
                }
                schemas.push(quote!(#p::Json::from("null")));
                encodes.push(quote!(Self::#vi => #p::write_long(buf, #idx),));
                decodes.push(quote!(#idx => ::core::result::Result::Ok(Self::#vi),));
                resolved.push(quote!(#bi => ::core::result::Result::Ok(Self::#vi),));
            }
            Fields::Unnamed(u) if u.unnamed.len() == 1 => {
                let ty = &u.unnamed[0].ty;
                schemas.push(quote_spanned!(ty.span()=> <#ty as #p::Avro>::schema(cx)));
                encodes.push(quote!(Self::#vi(v) => { #p::write_long(buf, #idx); <#ty as #p::Avro>::encode(v, buf)?; }));
                decodes.push(quote!(#idx => ::core::result::Result::Ok(Self::#vi(<#ty as #p::Avro>::decode(r)?)),));
                resolved.push(quote!(#bi => ::core::result::Result::Ok(Self::#vi(#p::decode_with::<#ty>(r, plan, res)?)),));
            }
            Fields::Unnamed(_) => {
                cx.error_spanned_by(v, "a tuple variant of an Avro union holds exactly one value: use V(T) or V { .. }");
            }
            Fields::Named(named) => {
                // A hidden struct carries the variant's record schema and codec.
                let helper = format_ident!("__FlowodmVariant{}", vi);
                let name = v.ident.to_string();
                let fields = &named.named;
                let synthetic: DeriveInput = syn::parse_quote! {
                    #[flowodm(name = #name, namespace = #namespace)]
                    struct #helper { #fields }
                };
                let vattrs = ContainerAttrs::parse(cx, &synthetic.attrs, false);
                let Some(infos) = self::fields(cx, &synthetic, &vattrs) else {
                    continue;
                };
                let record = expand_record(&synthetic, &vattrs, &infos, krate);
                let field_idents: Vec<&syn::Ident> = fields
                    .iter()
                    .map(|f| f.ident.as_ref().expect("named"))
                    .collect();
                let codecs: Vec<TokenStream> = infos
                    .iter()
                    .filter(|f| !f.attrs.skip)
                    .map(|f| f.codec(&p))
                    .collect();
                let live: Vec<&syn::Ident> = infos
                    .iter()
                    .filter(|f| !f.attrs.skip)
                    .map(|f| f.ident)
                    .collect();
                // The emitted struct keeps only the field names and types: the attributes were
                // read above, and nothing derives on it to accept them.
                let plain = fields.iter().map(|f| {
                    let (fi, ty) = (&f.ident, &f.ty);
                    quote!(#fi: #ty)
                });
                helpers.push(quote! {
                    #[allow(non_camel_case_types, dead_code)]
                    struct #helper { #(#plain,)* }
                    #record
                });
                schemas.push(quote!(<#helper as #p::Avro>::schema(cx)));
                encodes.push(quote!(Self::#vi { #(#field_idents,)* } => {
                    #p::write_long(buf, #idx);
                    #(#codecs::encode(#live, buf)?;)*
                    let _ = (#(&#field_idents,)*);
                }));
                decodes.push(quote!(#idx => {
                    let v = <#helper as #p::Avro>::decode(r)?;
                    ::core::result::Result::Ok(Self::#vi { #(#field_idents: v.#field_idents,)* })
                }));
                resolved.push(quote!(#bi => {
                    let v = #p::decode_with::<#helper>(r, plan, res)?;
                    ::core::result::Result::Ok(Self::#vi { #(#field_idents: v.#field_idents,)* })
                }));
            }
        }
    }
    Some(quote! {
        #(#helpers)*

        #[automatically_derived]
        impl #p::Avro for #ident {
            const IS_UNION: bool = true;

            fn schema(cx: &mut #p::SchemaContext) -> #p::Json {
                #p::Json::Array(::std::vec![#(#schemas),*])
            }

            fn encode(&self, buf: &mut ::std::vec::Vec<u8>) -> #p::Result<()> {
                match self {
                    #(#encodes)*
                }
                ::core::result::Result::Ok(())
            }

            fn decode(r: &mut #p::Reader<'_>) -> #p::Result<Self> {
                match r.read_long()? {
                    #(#decodes)*
                    other => ::core::result::Result::Err(#p::bad_branch::<Self>(other)),
                }
            }

            fn decode_resolved(r: &mut #p::Reader<'_>, plan: &#p::Plan, res: &#p::Resolution) -> #p::Result<Self> {
                let (branch, plan) = #p::union_branch::<Self>(r, plan)?;
                match branch {
                    #(#resolved)*
                    other => ::core::result::Result::Err(#p::bad_branch::<Self>(other as i64)),
                }
            }
        }
    })
}
