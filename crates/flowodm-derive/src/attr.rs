//! Parses `#[flowodm(...)]` container attributes.

use syn::{Attribute, LitStr, Path};

use crate::ctxt::Ctxt;

/// The settings of one `#[derive(Model)]` struct.
#[derive(Default)]
pub struct ModelAttrs {
    pub topic: Option<LitStr>,
    /// `topic` was written, even if its value did not parse (avoids a second, misleading error).
    pub topic_given: bool,
    pub subject: Option<LitStr>,
    pub key: Option<LitStr>,
    pub consumer_group: Option<LitStr>,
    pub crate_path: Option<Path>,
}

fn set_once<T>(cx: &Ctxt, slot: &mut Option<T>, value: T, path: &syn::Path, name: &str) {
    if slot.is_some() {
        cx.error_spanned_by(path, format!("duplicate flowodm attribute `{name}`"));
    } else {
        *slot = Some(value);
    }
}

fn non_empty(cx: &Ctxt, lit: LitStr, name: &str) -> LitStr {
    if lit.value().trim().is_empty() {
        cx.error_spanned_by(&lit, format!("`{name}` must not be empty"));
    }
    lit
}

impl ModelAttrs {
    pub fn parse(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = ModelAttrs::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("flowodm")) {
            let result = attr.parse_nested_meta(|meta| {
                let name = meta
                    .path
                    .get_ident()
                    .map(|i| i.to_string())
                    .unwrap_or_default();
                if name == "topic" {
                    out.topic_given = true;
                }
                match name.as_str() {
                    "topic" => {
                        let lit = non_empty(cx, meta.value()?.parse()?, "topic");
                        set_once(cx, &mut out.topic, lit, &meta.path, "topic");
                    }
                    "subject" => {
                        let lit = non_empty(cx, meta.value()?.parse()?, "subject");
                        set_once(cx, &mut out.subject, lit, &meta.path, "subject");
                    }
                    "key" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        set_once(cx, &mut out.key, lit, &meta.path, "key");
                    }
                    "consumer_group" => {
                        let lit = non_empty(cx, meta.value()?.parse()?, "consumer_group");
                        set_once(cx, &mut out.consumer_group, lit, &meta.path, "consumer_group");
                    }
                    "crate" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        match lit.parse::<Path>() {
                            Ok(path) => set_once(cx, &mut out.crate_path, path, &meta.path, "crate"),
                            Err(_) => cx.error_spanned_by(&lit, "`crate` must be a path, such as \"::flowodm\""),
                        }
                    }
                    _ => {
                        // Skip the value, if any, so one unknown key does not hide later errors.
                        if meta.input.peek(syn::Token![=]) {
                            let _: syn::Expr = meta.value()?.parse()?;
                        }
                        let path = &meta.path;
                        cx.error_spanned_by(
                            path,
                            format!(
                                "unknown flowodm attribute `{}`; expected one of: topic, subject, key, consumer_group, crate",
                                quote::quote!(#path).to_string().replace(' ', "")
                            ),
                        );
                    }
                }
                Ok(())
            });
            if let Err(e) = result {
                cx.syn_error(e);
            }
        }
        out
    }
}
