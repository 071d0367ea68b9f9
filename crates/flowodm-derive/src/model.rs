//! Expands `#[derive(Model)]`: the `Model` impl (Kafka settings and key) and the `Avro` impl of
//! the record.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput};

use crate::attr::ContainerAttrs;
use crate::ctxt::Ctxt;

pub fn krate(attrs: &ContainerAttrs) -> TokenStream {
    attrs
        .crate_path
        .as_ref()
        .map(|p| quote!(#p))
        .unwrap_or_else(|| quote!(::flowodm))
}

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let attrs = ContainerAttrs::parse(&cx, &input.attrs, true);
    let krate = krate(&attrs);

    // An enum with data is a union model: several record types on one topic, each message
    // decoded into the variant whose record name matches the writer's schema.
    let is_union = matches!(&input.data, Data::Enum(e)
        if e.variants.iter().any(|v| !matches!(v.fields, syn::Fields::Unit)));
    if !matches!(input.data, Data::Struct(_)) && !is_union {
        cx.error_spanned_by(
            &input.ident,
            "#[derive(Model)] needs a struct with named fields, or an enum whose variants hold the record types of one topic",
        );
        return cx.check().map(|()| TokenStream::new());
    }
    if let (true, Some(key)) = (is_union, &attrs.key) {
        cx.error_spanned_by(
            key,
            "a union model has no key field; give keys with OutRecord::key",
        );
    }
    if !attrs.topic_given {
        cx.error_spanned_by(
            &input.ident,
            "missing the model's topic: add #[flowodm(topic = \"...\")]",
        );
    }
    let fields = if is_union {
        None
    } else {
        crate::avro::fields(&cx, input, &attrs)
    };

    // The key must name a field of the struct that is in the schema.
    let key_field = match (&attrs.key, &fields) {
        (Some(key), Some(fields)) => {
            let found = fields.iter().find(|f| *f.ident == key.value());
            match found {
                None => {
                    let names: Vec<String> = fields.iter().map(|f| f.ident.to_string()).collect();
                    cx.error_spanned_by(
                        key,
                        format!(
                            "`key` names no field of `{}`; its fields are: {}",
                            input.ident,
                            names.join(", ")
                        ),
                    );
                }
                Some(f) if f.attrs.skip => {
                    cx.error_spanned_by(key, "the key field cannot be skipped")
                }
                Some(_) => {}
            }
            found
        }
        _ => None,
    };
    let avro = if is_union {
        crate::avro::expand(&cx, input, &attrs, &krate)
    } else {
        fields
            .as_ref()
            .map(|f| crate::avro::expand_record_for_model(input, &attrs, f, &krate))
    };

    cx.check()?;
    let avro = avro.expect("expanded when there are no errors");

    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let topic = attrs.topic.as_ref().expect("checked above");
    let opt = |lit: &Option<syn::LitStr>| match lit {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    };
    let subject = opt(&attrs.subject);
    let key_name = opt(&attrs.key);
    let group = opt(&attrs.consumer_group);
    // Spanned at the field's type, so a type that cannot be a key is reported there.
    let (key_body, write_key_body) = match key_field {
        Some(f) => {
            let field = f.ident;
            let ty = f.ty;
            (
                quote_spanned!(ty.span()=> <#ty as #krate::__private::KeyField>::key_bytes(&self.#field)),
                quote_spanned!(ty.span()=> <#ty as #krate::__private::KeyField>::write_key(&self.#field, buf)),
            )
        }
        None => (
            quote!(::core::option::Option::None),
            quote!({
                let _ = buf;
                false
            }),
        ),
    };

    // The file is embedded with include_str!, so editing it rebuilds the model.
    let schema_file = attrs.schema_file.as_ref().map(|path| {
        quote! {
            const SCHEMA_FILE: ::core::option::Option<#krate::SchemaFile> =
                ::core::option::Option::Some(#krate::SchemaFile {
                    path: #path,
                    contents: ::core::include_str!(::core::concat!(::core::env!("CARGO_MANIFEST_DIR"), "/", #path)),
                });
        }
    });

    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications, clippy::all)]
        const _: () = {
            #avro

            #[automatically_derived]
            impl #impl_generics #krate::Model for #ident #ty_generics #where_clause {
                const SETTINGS: #krate::ModelSettings = #krate::ModelSettings {
                    topic: #topic,
                    subject: #subject,
                    key_field: #key_name,
                    consumer_group: #group,
                };

                #schema_file

                fn key(&self) -> ::core::option::Option<::std::vec::Vec<u8>> {
                    #key_body
                }

                fn write_key(&self, buf: &mut ::std::vec::Vec<u8>) -> bool {
                    #write_key_body
                }
            }
        };
    })
}

/// Expands `#[derive(Avro)]`.
pub fn expand_avro(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let attrs = ContainerAttrs::parse(&cx, &input.attrs, false);
    let krate = krate(&attrs);
    let avro = crate::avro::expand(&cx, input, &attrs, &krate);
    cx.check()?;
    let avro = avro.expect("expanded when there are no errors");
    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications, clippy::all)]
        const _: () = {
            #avro
        };
    })
}
