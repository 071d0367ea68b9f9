//! Expands `#[derive(Model)]`.

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Data, DeriveInput, Fields};

use crate::attr::ModelAttrs;
use crate::ctxt::Ctxt;

pub fn expand(input: &DeriveInput) -> syn::Result<TokenStream> {
    let cx = Ctxt::default();
    let attrs = ModelAttrs::parse(&cx, &input.attrs);

    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => Some(&named.named),
            _ => {
                cx.error_spanned_by(
                    &input.ident,
                    "#[derive(Model)] needs a struct with named fields",
                );
                None
            }
        },
        _ => {
            cx.error_spanned_by(
                &input.ident,
                "#[derive(Model)] needs a struct with named fields",
            );
            None
        }
    };

    if !attrs.topic_given {
        cx.error_spanned_by(
            &input.ident,
            "missing the model's topic: add #[flowodm(topic = \"...\")]",
        );
    }

    // The key must name a field of the struct.
    let key_field = match (&attrs.key, fields) {
        (Some(key), Some(fields)) => {
            let found = fields
                .iter()
                .find(|f| f.ident.as_ref().is_some_and(|i| *i == key.value()));
            if found.is_none() {
                let names: Vec<String> = fields
                    .iter()
                    .filter_map(|f| f.ident.as_ref().map(|i| i.to_string()))
                    .collect();
                cx.error_spanned_by(
                    key,
                    format!(
                        "`key` names no field of `{}`; its fields are: {}",
                        input.ident,
                        names.join(", ")
                    ),
                );
            }
            found
        }
        _ => None,
    };

    cx.check()?;

    let krate = attrs
        .crate_path
        .map(|p| quote!(#p))
        .unwrap_or_else(|| quote!(::flowodm));
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    let topic = attrs.topic.expect("checked above");
    let opt = |lit: &Option<syn::LitStr>| match lit {
        Some(l) => quote!(::core::option::Option::Some(#l)),
        None => quote!(::core::option::Option::None),
    };
    let subject = opt(&attrs.subject);
    let key_name = opt(&attrs.key);
    let group = opt(&attrs.consumer_group);
    // Spanned at the field's type, so a type that cannot be a key is reported there.
    let key_body = match key_field {
        Some(f) => {
            let field = f.ident.as_ref().expect("named field");
            let ty = &f.ty;
            quote_spanned!(ty.span()=> <#ty as #krate::__private::KeyField>::key_bytes(&self.#field))
        }
        None => quote!(::core::option::Option::None),
    };

    Ok(quote! {
        #[doc(hidden)]
        #[allow(non_upper_case_globals, unused_attributes, unused_qualifications)]
        const _: () = {
            #[automatically_derived]
            impl #impl_generics #krate::Model for #ident #ty_generics #where_clause {
                const SETTINGS: #krate::ModelSettings = #krate::ModelSettings {
                    topic: #topic,
                    subject: #subject,
                    key_field: #key_name,
                    consumer_group: #group,
                };

                fn key(&self) -> ::core::option::Option<::std::vec::Vec<u8>> {
                    #key_body
                }
            }
        };
    })
}
