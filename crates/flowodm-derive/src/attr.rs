//! Parses `#[flowodm(...)]` attributes on containers, fields and variants, and doc comments.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Attribute, Expr, ExprLit, Lit, LitStr, Path};

use crate::ctxt::Ctxt;

/// Container attributes: Kafka settings (for `Model`) and Avro naming (for both derives).
#[derive(Default)]
pub struct ContainerAttrs {
    pub topic: Option<LitStr>,
    /// `topic` was written, even if its value did not parse (avoids a second, misleading error).
    pub topic_given: bool,
    pub subject: Option<LitStr>,
    pub key: Option<LitStr>,
    pub consumer_group: Option<LitStr>,
    pub schema_file: Option<LitStr>,
    pub crate_path: Option<Path>,
    pub name: Option<LitStr>,
    pub namespace: Option<LitStr>,
    pub rename_all: Option<(RenameRule, Span)>,
    pub aliases: Vec<LitStr>,
    pub doc: Option<String>,
}

/// Field attributes.
#[derive(Default)]
pub struct FieldAttrs {
    pub rename: Option<LitStr>,
    /// `micros`: dates and times with microsecond precision.
    pub micros: Option<Span>,
    /// `decimal(precision = P, scale = S)`.
    pub decimal: Option<(u64, u64, Span)>,
    pub default: Option<DefaultValue>,
    pub aliases: Vec<LitStr>,
    pub skip: bool,
    pub doc: Option<String>,
}

/// Variant attributes (unit-only enums).
#[derive(Default)]
pub struct VariantAttrs {
    pub rename: Option<LitStr>,
    pub default: bool,
    pub aliases: Vec<LitStr>,
}

/// A field default, as JSON text checked at compile time.
pub struct DefaultValue {
    pub json: String,
    pub span: Span,
}

#[derive(Clone, Copy)]
pub enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
}

impl RenameRule {
    fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            _ => return None,
        })
    }

    pub fn apply(self, name: &str) -> String {
        use heck::{ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};
        match self {
            RenameRule::Lower => name.to_lowercase(),
            RenameRule::Upper => name.to_uppercase(),
            RenameRule::Pascal => name.to_upper_camel_case(),
            RenameRule::Camel => name.to_lower_camel_case(),
            RenameRule::Snake => name.to_snake_case(),
            RenameRule::ScreamingSnake => name.to_shouty_snake_case(),
        }
    }
}

fn set_once<T>(cx: &Ctxt, slot: &mut Option<T>, value: T, path: &Path, name: &str) {
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

/// An Avro name: starts with a letter or `_`, then letters, digits and `_`.
fn valid_avro_name(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn avro_name(cx: &Ctxt, lit: LitStr, what: &str) -> LitStr {
    if !valid_avro_name(&lit.value()) {
        cx.error_spanned_by(
            &lit,
            format!("`{}` is not a valid Avro {what}: use letters, digits and `_`, not starting with a digit", lit.value()),
        );
    }
    lit
}

fn avro_namespace(cx: &Ctxt, lit: LitStr) -> LitStr {
    let v = lit.value();
    if !v.is_empty() && !v.split('.').all(valid_avro_name) {
        cx.error_spanned_by(
            &lit,
            format!("`{v}` is not a valid Avro namespace: dot-separated names such as \"com.example.orders\""),
        );
    }
    lit
}

fn unknown(
    cx: &Ctxt,
    meta: &syn::meta::ParseNestedMeta,
    place: &str,
    expected: &str,
) -> syn::Result<()> {
    // Consume the value, if any, so one unknown key does not hide later errors.
    if meta.input.peek(syn::Token![=]) {
        let _: Expr = meta.value()?.parse()?;
    } else if meta.input.peek(syn::token::Paren) {
        let _ = meta.parse_nested_meta(|m| {
            if m.input.peek(syn::Token![=]) {
                let _: Expr = m.value()?.parse()?;
            }
            Ok(())
        });
    }
    let path = &meta.path;
    cx.error_spanned_by(
        path,
        format!(
            "unknown flowodm {place} attribute `{}`; expected one of: {expected}",
            quote::quote!(#path).to_string().replace(' ', "")
        ),
    );
    Ok(())
}

fn ident_of(meta: &syn::meta::ParseNestedMeta) -> String {
    meta.path
        .get_ident()
        .map(|i| i.to_string())
        .unwrap_or_default()
}

/// Reads the text of `///` doc comments.
pub fn doc_of(attrs: &[Attribute]) -> Option<String> {
    let lines: Vec<String> = attrs
        .iter()
        .filter(|a| a.path().is_ident("doc"))
        .filter_map(|a| match &a.meta {
            syn::Meta::NameValue(nv) => match &nv.value {
                Expr::Lit(ExprLit {
                    lit: Lit::Str(s), ..
                }) => Some(s.value().trim().to_string()),
                _ => None,
            },
            _ => None,
        })
        .collect();
    let text = lines.join("\n").trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn flowodm_attrs(attrs: &[Attribute]) -> impl Iterator<Item = &Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("flowodm"))
}

const CONTAINER_KEYS: &str =
    "topic, subject, key, consumer_group, schema_file, name, namespace, rename_all, alias, crate";

impl ContainerAttrs {
    /// `model`: whether Kafka settings (topic, key, ...) are allowed here.
    pub fn parse(cx: &Ctxt, attrs: &[Attribute], model: bool) -> Self {
        let mut out = ContainerAttrs {
            doc: doc_of(attrs),
            ..ContainerAttrs::default()
        };
        for attr in flowodm_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                let name = ident_of(&meta);
                let kafka_setting = matches!(name.as_str(), "topic" | "subject" | "key" | "consumer_group" | "schema_file");
                if kafka_setting && !model {
                    cx.error_spanned_by(
                        &meta.path,
                        format!("`{name}` is a Kafka setting of a model: use #[derive(Model)] on the type that is sent to a topic"),
                    );
                    let _: Expr = meta.value()?.parse()?;
                    return Ok(());
                }
                match name.as_str() {
                    "topic" => {
                        out.topic_given = true;
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
                    "schema_file" => {
                        let lit = non_empty(cx, meta.value()?.parse()?, "schema_file");
                        if let Ok(dir) = std::env::var("CARGO_MANIFEST_DIR") {
                            if !std::path::Path::new(&dir).join(lit.value()).is_file() {
                                cx.error_spanned_by(
                                    &lit,
                                    format!("schema file `{}` not found; the path is relative to the crate's directory (where Cargo.toml is)", lit.value()),
                                );
                            }
                        }
                        set_once(cx, &mut out.schema_file, lit, &meta.path, "schema_file");
                    }
                    "name" => {
                        let lit = avro_name(cx, meta.value()?.parse()?, "name");
                        set_once(cx, &mut out.name, lit, &meta.path, "name");
                    }
                    "namespace" => {
                        let lit = avro_namespace(cx, meta.value()?.parse()?);
                        set_once(cx, &mut out.namespace, lit, &meta.path, "namespace");
                    }
                    "rename_all" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        match RenameRule::parse(&lit.value()) {
                            Some(rule) => set_once(cx, &mut out.rename_all, (rule, lit.span()), &meta.path, "rename_all"),
                            None => cx.error_spanned_by(
                                &lit,
                                "unknown rename rule; expected one of: lowercase, UPPERCASE, PascalCase, camelCase, snake_case, SCREAMING_SNAKE_CASE",
                            ),
                        }
                    }
                    "alias" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        out.aliases.push(lit);
                    }
                    "crate" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        match lit.parse::<Path>() {
                            Ok(path) => set_once(cx, &mut out.crate_path, path, &meta.path, "crate"),
                            Err(_) => cx.error_spanned_by(&lit, "`crate` must be a path, such as \"::flowodm\""),
                        }
                    }
                    _ => unknown(cx, &meta, "container", CONTAINER_KEYS)?,
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

impl FieldAttrs {
    pub fn parse(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = FieldAttrs {
            doc: doc_of(attrs),
            ..FieldAttrs::default()
        };
        for attr in flowodm_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                match ident_of(&meta).as_str() {
                    "rename" => {
                        let lit = avro_name(cx, meta.value()?.parse()?, "field name");
                        set_once(cx, &mut out.rename, lit, &meta.path, "rename");
                    }
                    "alias" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        out.aliases.push(lit);
                    }
                    "skip" => {
                        if out.skip {
                            cx.error_spanned_by(&meta.path, "duplicate flowodm attribute `skip`");
                        }
                        out.skip = true;
                    }
                    "default" => {
                        let expr: Expr = meta.value()?.parse()?;
                        if let Some(d) = default_json(cx, &expr) {
                            set_once(cx, &mut out.default, d, &meta.path, "default");
                        }
                    }
                    "micros" => {
                        if out.micros.is_some() {
                            cx.error_spanned_by(&meta.path, "duplicate flowodm attribute `micros`");
                        }
                        out.micros = Some(meta.path.span());
                    }
                    "decimal" => {
                        let (mut precision, mut scale) = (None, None);
                        meta.parse_nested_meta(|m| {
                            let lit: syn::LitInt = m.value()?.parse()?;
                            let v: u64 = lit.base10_parse()?;
                            if m.path.is_ident("precision") {
                                precision = Some((v, lit));
                            } else if m.path.is_ident("scale") {
                                scale = Some((v, lit));
                            } else {
                                cx.error_spanned_by(&m.path, "expected `precision` or `scale`");
                            }
                            Ok(())
                        })?;
                        match (precision, scale) {
                            (Some((p, plit)), Some((s, slit))) => {
                                if p == 0 || p > 38 {
                                    cx.error_spanned_by(
                                        &plit,
                                        "a decimal's precision is 1 to 38 digits",
                                    );
                                } else if s > p {
                                    cx.error_spanned_by(
                                        &slit,
                                        "a decimal's scale cannot exceed its precision",
                                    );
                                } else if s > 28 {
                                    cx.error_spanned_by(
                                        &slit,
                                        "rust_decimal holds at most 28 fractional digits",
                                    );
                                }
                                out.decimal = Some((p, s, meta.path.span()));
                            }
                            _ => cx.error_spanned_by(
                                &meta.path,
                                "write the decimal as decimal(precision = P, scale = S)",
                            ),
                        }
                    }
                    _ => unknown(
                        cx,
                        &meta,
                        "field",
                        "rename, alias, default, skip, micros, decimal",
                    )?,
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

impl VariantAttrs {
    pub fn parse(cx: &Ctxt, attrs: &[Attribute]) -> Self {
        let mut out = VariantAttrs::default();
        for attr in flowodm_attrs(attrs) {
            let result = attr.parse_nested_meta(|meta| {
                match ident_of(&meta).as_str() {
                    "rename" => {
                        let lit = avro_name(cx, meta.value()?.parse()?, "enum symbol");
                        set_once(cx, &mut out.rename, lit, &meta.path, "rename");
                    }
                    "alias" => {
                        let lit: LitStr = meta.value()?.parse()?;
                        out.aliases.push(lit);
                    }
                    "default" => {
                        if out.default {
                            cx.error_spanned_by(
                                &meta.path,
                                "duplicate flowodm attribute `default`",
                            );
                        }
                        out.default = true;
                    }
                    _ => unknown(cx, &meta, "variant", "rename, alias, default")?,
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

/// A default written as a Rust literal (`"USD"`, `1`, `2.5`, `true`, `-3`), or as JSON text
/// with `json!` style: `default = r#"{"a": 1}"#` is a string; use `default_json` for JSON.
fn default_json(cx: &Ctxt, expr: &Expr) -> Option<DefaultValue> {
    let span = syn::spanned::Spanned::span(expr);
    let json = match expr {
        Expr::Lit(ExprLit { lit, .. }) => match lit {
            Lit::Str(s) => serde_json_string(&s.value()),
            Lit::Int(i) => i.base10_digits().to_string(),
            Lit::Float(f) => f.base10_digits().to_string(),
            Lit::Bool(b) => b.value.to_string(),
            _ => {
                cx.error_spanned_by(expr, "a default must be a string, number or bool literal");
                return None;
            }
        },
        Expr::Unary(u) if matches!(u.op, syn::UnOp::Neg(_)) => match &*u.expr {
            Expr::Lit(ExprLit {
                lit: Lit::Int(i), ..
            }) => format!("-{}", i.base10_digits()),
            Expr::Lit(ExprLit {
                lit: Lit::Float(f), ..
            }) => format!("-{}", f.base10_digits()),
            _ => {
                cx.error_spanned_by(expr, "a default must be a string, number or bool literal");
                return None;
            }
        },
        _ => {
            cx.error_spanned_by(expr, "a default must be a string, number or bool literal");
            return None;
        }
    };
    Some(DefaultValue { json, span })
}

fn serde_json_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
