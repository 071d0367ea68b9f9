//! Maps the parsed schemas to Rust items the derives turn back into the same schemas, and
//! refuses what the derives cannot express.

use std::collections::{BTreeSet, HashMap, HashSet};

use serde_json::Value as Json;

use super::names::{self, Rule};
use super::parse::{Field, Named, NamedKind, Prim, SchemaSet, Ty};
use crate::error::{Error, Result};

/// One generated struct or enum.
#[derive(Debug)]
pub(super) struct Item {
    pub name: String,
    pub doc: Option<String>,
    pub derive: &'static str,
    /// `#[flowodm(...)]` arguments of the container.
    pub attrs: Vec<String>,
    /// Clippy lints the item would trip for reasons the schema decides.
    pub allows: Vec<&'static str>,
    pub body: Body,
}

#[derive(Debug)]
pub(super) enum Body {
    Struct(Vec<FieldOut>),
    UnitEnum(Vec<VariantOut>),
    /// Variants and the type each holds (`None`: the `null` branch).
    DataEnum(Vec<(String, Option<String>)>),
}

#[derive(Debug)]
pub(super) struct FieldOut {
    pub doc: Option<String>,
    pub attrs: Vec<String>,
    pub ident: String,
    pub ty: String,
}

#[derive(Debug)]
pub(super) struct VariantOut {
    pub ident: String,
    pub attrs: Vec<String>,
}

/// Everything to print: the items in schema order, and the `use` paths they need.
#[derive(Debug)]
pub(super) struct Output {
    pub items: Vec<Item>,
    pub imports: BTreeSet<&'static str>,
}

/// What the caller asked for besides the types.
#[derive(Debug, Default, Clone)]
pub(super) struct Settings {
    pub topic: Option<String>,
    pub key: Option<String>,
}

/// An alternative encoding chosen by a field attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Adapter {
    Micros,
    Decimal(u64, u64),
}

impl Adapter {
    fn attr(self) -> String {
        match self {
            Adapter::Micros => "micros".into(),
            Adapter::Decimal(p, s) => format!("decimal(precision = {p}, scale = {s})"),
        }
    }
}

struct Mapped {
    rust: String,
    adapter: Option<Adapter>,
}

impl Mapped {
    fn plain(rust: impl Into<String>) -> Self {
        Mapped {
            rust: rust.into(),
            adapter: None,
        }
    }
}

/// Where a type appears: for errors, for naming the enums of unions, and for the namespace a
/// `[u8; N]` takes.
#[derive(Clone)]
struct Ctx {
    path: String,
    namespace: String,
    hint: String,
    /// Whether a record here is stored inline (not behind a `Vec` or a map), so that a record
    /// containing itself here needs a `Box`.
    inline: bool,
}

impl Ctx {
    fn child(&self, path: &str, hint: &str, inline: bool) -> Ctx {
        Ctx {
            path: format!("{}{path}", self.path),
            namespace: self.namespace.clone(),
            hint: format!("{}{hint}", self.hint),
            inline: self.inline && inline,
        }
    }
}

fn fail(path: &str, message: impl std::fmt::Display) -> Error {
    Error::Schema {
        message: format!("{path}: {message}"),
    }
}

pub(super) fn map(set: &SchemaSet, settings: &Settings) -> Result<Output> {
    let mut m = Mapper {
        set,
        type_names: HashMap::new(),
        taken: names::RESERVED_TYPES
            .iter()
            .map(|s| s.to_string())
            .collect(),
        done: HashSet::new(),
        stack: Vec::new(),
        items: Vec::new(),
        imports: BTreeSet::new(),
        model: None,
    };
    m.name_types();
    // The main schema first, so its type leads the file and the types it uses follow in the
    // order it uses them; then what the other schemas define that it does not use.
    let main = set.roots.len() - 1;
    for i in std::iter::once(main).chain(0..main) {
        let root = &set.roots[i];
        let is_main = i == main;
        match root {
            Ty::Named(full) => {
                m.named(full)?;
                if is_main {
                    m.model = m.items.iter().position(|it| {
                        it.as_ref()
                            .is_some_and(|it| Some(&it.name) == m.type_names.get(full))
                    });
                    if settings.topic.is_some() && !is_record(set, root) {
                        return Err(fail(
                            full,
                            "a model for a topic is a record or a union of records, not an enum or a fixed",
                        ));
                    }
                }
            }
            Ty::Union(branches) => {
                let label = if is_main { "the main schema" } else { "a schema" };
                if settings.topic.is_some() && is_main && !branches.iter().all(|b| is_record(set, b)) {
                    return Err(fail(
                        label,
                        "a union model for a topic holds records only",
                    ));
                }
                let hint = branches
                    .iter()
                    // A fixed branch has no type name of its own: variant_name falls back.
                    .map(|b| variant_name(b, &m.type_names))
                    .collect::<Vec<_>>()
                    .join("Or");
                let ctx = Ctx {
                    path: label.to_string(),
                    namespace: String::new(),
                    hint,
                    inline: true,
                };
                let before = m.items.len();
                m.data_enum(branches, &ctx)?;
                if is_main {
                    m.model = Some(before);
                }
            }
            other => {
                return Err(fail(
                    if is_main { "the main schema" } else { "a schema" },
                    format!(
                        "its root is {}, which has no type to generate; generate from a record, enum or union",
                        describe(other)
                    ),
                ))
            }
        }
    }
    let mut items: Vec<Item> = m.items.into_iter().flatten().collect();
    if let Some(topic) = &settings.topic {
        let model = m.model.expect("the main schema produced an item");
        let record = match set.roots.last() {
            Some(Ty::Named(full)) => set.named.get(full),
            _ => None,
        };
        apply_model(&mut items[model], topic, settings.key.as_deref(), record)?;
    } else if settings.key.is_some() {
        return Err(Error::Schema {
            message: "a key field needs a topic: the key belongs to the model of that topic".into(),
        });
    }
    Ok(Output {
        items,
        imports: m.imports,
    })
}

/// Turns the main item into a `Model` of `topic`; `record` is the main record, if it is one.
fn apply_model(
    item: &mut Item,
    topic: &str,
    key: Option<&str>,
    record: Option<&Named>,
) -> Result<()> {
    if topic.trim().is_empty() {
        return Err(Error::Schema {
            message: "the topic must not be empty".into(),
        });
    }
    let mut attrs = vec![format!("topic = {}", lit(topic))];
    if let Some(key) = key {
        let (Body::Struct(fields), Some(NamedKind::Record(avro_fields))) =
            (&item.body, record.map(|r| &r.kind))
        else {
            return Err(Error::Schema {
                message: "a union model has no key field".into(),
            });
        };
        // The key is given as the Avro field name; the derive wants the Rust field.
        let Some(pos) = avro_fields.iter().position(|f| f.name == key) else {
            let names: Vec<&str> = avro_fields.iter().map(|f| f.name.as_str()).collect();
            return Err(Error::Schema {
                message: format!(
                    "the key `{key}` is not a field of `{}`; its fields are: {}",
                    item.name,
                    names.join(", ")
                ),
            });
        };
        let ty = &fields[pos].ty;
        let inner = ty
            .strip_prefix("Option<")
            .and_then(|t| t.strip_suffix('>'))
            .unwrap_or(ty);
        if !["String", "bool", "i32", "i64"].contains(&inner) {
            return Err(Error::Schema {
                message: format!(
                    "the key `{key}` is a `{ty}`, which cannot key messages; a key field is a string, int, long or boolean (or one of them or null)"
                ),
            });
        }
        attrs.push(format!("key = {}", lit(&fields[pos].ident)));
    }
    attrs.append(&mut item.attrs);
    item.attrs = attrs;
    item.derive = "Debug, Clone, PartialEq, flowodm::Model";
    Ok(())
}

/// `["null", T]`: an `Option<T>`.
fn is_option_union(ty: &Ty) -> bool {
    matches!(ty, Ty::Union(b) if b.len() == 2 && b[0] == Ty::Prim(Prim::Null))
}

fn is_record(set: &SchemaSet, ty: &Ty) -> bool {
    matches!(ty, Ty::Named(n) if matches!(set.named[n].kind, NamedKind::Record(_)))
}

fn describe(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => format!("`{}`", p.name()),
        Ty::Logical { base, logical, .. } => format!("`{}` ({logical})", base.name()),
        Ty::Array(_) => "an array".into(),
        Ty::Map(_) => "a map".into(),
        Ty::Union(_) => "a union".into(),
        Ty::Named(n) => format!("`{n}`"),
    }
}

/// A Rust string literal.
fn lit(s: &str) -> String {
    format!("{s:?}")
}

/// The variant name of a union branch.
fn variant_name(ty: &Ty, type_names: &HashMap<String, String>) -> String {
    match ty {
        Ty::Prim(p) => names::type_ident(p.name()),
        Ty::Logical { logical, .. } => names::type_ident(logical),
        Ty::Array(_) => "Array".into(),
        Ty::Map(_) => "Map".into(),
        Ty::Union(_) => "Union".into(),
        // A fixed has no Rust type name: its short name (`fixed_16` gives `Fixed16`).
        Ty::Named(n) => type_names
            .get(n)
            .cloned()
            .unwrap_or_else(|| names::type_ident(n.rsplit('.').next().unwrap_or(n))),
    }
}

/// A default as the literal the derive's `default = ...` accepts, when there is one.
fn default_literal(v: &Json) -> Option<String> {
    match v {
        Json::String(s) => Some(lit(s)),
        Json::Bool(b) => Some(b.to_string()),
        Json::Number(n) => {
            if n.is_i64() || n.is_u64() {
                Some(n.to_string())
            } else {
                // `{:?}` is the shortest text that reads back as the same f64, and a valid Rust
                // float literal (`1.0`, `1e-7`).
                n.as_f64().map(|f| format!("{f:?}"))
            }
        }
        Json::Null | Json::Array(_) | Json::Object(_) => None,
    }
}

struct Mapper<'a> {
    set: &'a SchemaSet,
    /// Rust names of the named types, by full name.
    type_names: HashMap<String, String>,
    taken: HashSet<String>,
    /// Named types already mapped (or being mapped).
    done: HashSet<String>,
    /// Records being mapped: a reference back to one of them goes through a `Box`.
    stack: Vec<String>,
    /// Items in schema order; a record's slot is taken before its fields are mapped.
    items: Vec<Option<Item>>,
    imports: BTreeSet<&'static str>,
    model: Option<usize>,
}

impl Mapper<'_> {
    /// Names every record and enum first, so their names win over those of union enums.
    fn name_types(&mut self) {
        for full in &self.set.order {
            let named = &self.set.named[full];
            if matches!(named.kind, NamedKind::Fixed { .. }) {
                continue;
            }
            let short = names::type_ident(&named.name);
            let long = names::type_ident(&full.replace('.', "_"));
            let name = names::unique(
                &mut self.taken,
                short.clone(),
                &[long, format!("{short}Type")],
            );
            self.type_names.insert(full.clone(), name);
        }
    }

    fn named(&mut self, full: &str) -> Result<()> {
        if !self.done.insert(full.to_string()) {
            return Ok(());
        }
        let named = &self.set.named[full];
        match &named.kind {
            NamedKind::Record(fields) => {
                let slot = self.items.len();
                self.items.push(None);
                self.stack.push(full.to_string());
                let item = self.record(full, named, fields)?;
                self.stack.pop();
                self.items[slot] = Some(item);
            }
            NamedKind::Enum { symbols, default } => {
                let item = self.unit_enum(full, named, symbols, default.as_deref())?;
                self.items.push(Some(item));
            }
            NamedKind::Fixed { .. } => {}
        }
        Ok(())
    }

    fn container_attrs(&self, full: &str, named: &Named) -> Vec<String> {
        let mut attrs = Vec::new();
        let rust = &self.type_names[full];
        if *rust != named.name {
            attrs.push(format!("name = {}", lit(&named.name)));
        }
        if !named.namespace.is_empty() {
            attrs.push(format!("namespace = {}", lit(&named.namespace)));
        }
        attrs
    }

    fn record(&mut self, full: &str, named: &Named, fields: &[Field]) -> Result<Item> {
        let rust_name = self.type_names[full].clone();
        let mut outs = Vec::with_capacity(fields.len());
        let mut taken = HashSet::new();
        let mut pairs = Vec::with_capacity(fields.len());
        for f in fields {
            let path = format!("{full}.{}", f.name);
            let ctx = Ctx {
                path: path.clone(),
                namespace: named.namespace.clone(),
                hint: format!("{rust_name}{}", names::type_ident(&f.name)),
                inline: true,
            };
            let (ident, raw) = names::field_ident(&f.name);
            // Names that had to be escaped or made unique get their own `rename`; only the
            // others choose the `rename_all` rule.
            let plain = !taken.contains(&raw) && !names::suffixed(&f.name, &raw);
            let (ident, raw) = if taken.contains(&raw) {
                let raw = names::unique(&mut taken, format!("{raw}_"), &[]);
                (raw.clone(), raw)
            } else {
                taken.insert(raw.clone());
                (ident, raw)
            };
            let out = self.field(f, &ctx, ident)?;
            pairs.push((raw, f.name.clone(), plain));
            outs.push(out);
        }
        let regular: Vec<(String, String)> = pairs
            .iter()
            .filter(|(_, _, plain)| *plain)
            .map(|(raw, avro, _)| (raw.clone(), avro.clone()))
            .collect();
        let rule = names::best_rule(&regular);
        for (out, (raw, avro, _)) in outs.iter_mut().zip(&pairs) {
            let implied = rule.map_or_else(|| raw.clone(), |r| r.apply(raw));
            if implied != *avro {
                out.attrs.insert(0, format!("rename = {}", lit(avro)));
            }
        }
        let mut attrs = self.container_attrs(full, named);
        if let Some(rule) = rule {
            attrs.push(format!("rename_all = {}", lit(rule.as_str())));
        }
        attrs.extend(named.aliases.iter().map(|a| format!("alias = {}", lit(a))));
        Ok(Item {
            name: rust_name,
            doc: named.doc.clone(),
            derive: "Debug, Clone, PartialEq, flowodm::Avro",
            attrs,
            allows: Vec::new(),
            body: Body::Struct(outs),
        })
    }

    fn field(&mut self, f: &Field, ctx: &Ctx, ident: String) -> Result<FieldOut> {
        if let Some(order) = &f.order {
            return Err(fail(
                &ctx.path,
                format!("the derive cannot express the sort order `{order}`; remove `order` or make it \"ascending\""),
            ));
        }
        let mut attrs = Vec::new();
        // ["null", T] with default null: an Option, which the derive defaults to null.
        let option_default = f.default == Some(Json::Null) && is_option_union(&f.ty);
        let mapped = if option_default {
            self.ty(&f.ty, ctx)?
        } else {
            let mapped = match &f.ty {
                Ty::Union(branches) => {
                    let name = self.data_enum(branches, ctx)?;
                    Mapped::plain(name)
                }
                other => self.ty(other, ctx)?,
            };
            match &f.default {
                None => {}
                Some(v) => match default_literal(v) {
                    Some(l) => attrs.push(format!("default = {l}")),
                    None => {
                        let why = if v.is_null() {
                            "a null default needs the type [\"null\", T], which becomes an Option"
                        } else {
                            "the derive writes defaults as string, number or bool literals"
                        };
                        return Err(fail(
                            &ctx.path,
                            format!("cannot express the default {v}: {why}"),
                        ));
                    }
                },
            }
            mapped
        };
        if let Some(a) = mapped.adapter {
            attrs.push(a.attr());
        }
        attrs.extend(f.aliases.iter().map(|a| format!("alias = {}", lit(a))));
        Ok(FieldOut {
            doc: f.doc.clone(),
            attrs,
            ident,
            ty: mapped.rust,
        })
    }

    fn ty(&mut self, ty: &Ty, ctx: &Ctx) -> Result<Mapped> {
        Ok(match ty {
            Ty::Prim(p) => Mapped::plain(match p {
                Prim::Null => {
                    return Err(fail(
                        &ctx.path,
                        "`null` on its own has no Rust type; use it in a union",
                    ))
                }
                Prim::Boolean => "bool",
                Prim::Int => "i32",
                Prim::Long => "i64",
                Prim::Float => "f32",
                Prim::Double => "f64",
                Prim::Bytes => "Vec<u8>",
                Prim::String => "String",
            }),
            Ty::Logical {
                base,
                logical,
                precision,
                scale,
            } => self.logical(*base, logical, *precision, *scale, ctx)?,
            Ty::Array(items) => {
                let inner = self.ty(items, &ctx.child("[items]", "Item", false))?;
                Mapped {
                    rust: format!("Vec<{}>", inner.rust),
                    adapter: inner.adapter,
                }
            }
            Ty::Map(values) => {
                let inner = self.ty(values, &ctx.child("[values]", "Value", false))?;
                if let Some(a) = inner.adapter {
                    return Err(fail(
                        &format!("{}[values]", ctx.path),
                        format!(
                            "the values of a map cannot carry #[flowodm({})]: the derive applies it through Option and Vec only",
                            a.attr()
                        ),
                    ));
                }
                self.imports.insert("std::collections::HashMap");
                Mapped::plain(format!("HashMap<String, {}>", inner.rust))
            }
            Ty::Union(branches) => {
                if is_option_union(ty) {
                    let inner = self.ty(&branches[1], &ctx.child("[branch 1]", "", true))?;
                    Mapped {
                        rust: format!("Option<{}>", inner.rust),
                        adapter: inner.adapter,
                    }
                } else {
                    Mapped::plain(self.data_enum(branches, ctx)?)
                }
            }
            Ty::Named(full) => self.named_ref(full, ctx)?,
        })
    }

    fn named_ref(&mut self, full: &str, ctx: &Ctx) -> Result<Mapped> {
        let named = &self.set.named[full];
        if let NamedKind::Fixed { size, logical } = &named.kind {
            return fixed(named, *size, logical.as_deref(), ctx).map(Mapped::plain);
        }
        let on_stack = ctx.inline && self.stack.iter().any(|s| s == full);
        self.named(full)?;
        let rust = self.type_names[full].clone();
        Ok(Mapped::plain(if on_stack {
            format!("Box<{rust}>")
        } else {
            rust
        }))
    }

    fn logical(
        &mut self,
        base: Prim,
        logical: &str,
        precision: Option<u64>,
        scale: Option<u64>,
        ctx: &Ctx,
    ) -> Result<Mapped> {
        let micros = |rust: &str| Mapped {
            rust: rust.to_string(),
            adapter: Some(Adapter::Micros),
        };
        let (rust, imports): (Mapped, &[&'static str]) = match (base, logical) {
            (Prim::Int, "date") => (Mapped::plain("NaiveDate"), &["chrono::NaiveDate"]),
            (Prim::Int, "time-millis") => (Mapped::plain("NaiveTime"), &["chrono::NaiveTime"]),
            (Prim::Long, "time-micros") => (micros("NaiveTime"), &["chrono::NaiveTime"]),
            (Prim::Long, "timestamp-millis") => (
                Mapped::plain("DateTime<Utc>"),
                &["chrono::DateTime", "chrono::Utc"],
            ),
            (Prim::Long, "timestamp-micros") => {
                (micros("DateTime<Utc>"), &["chrono::DateTime", "chrono::Utc"])
            }
            (Prim::Long, "local-timestamp-millis") => (
                Mapped::plain("NaiveDateTime"),
                &["chrono::NaiveDateTime"],
            ),
            (Prim::Long, "local-timestamp-micros") => {
                (micros("NaiveDateTime"), &["chrono::NaiveDateTime"])
            }
            (Prim::String, "uuid") => (Mapped::plain("Uuid"), &["uuid::Uuid"]),
            (Prim::Bytes, "decimal") => {
                let p = precision.unwrap_or(0);
                let s = scale.unwrap_or(0);
                if p == 0 || p > 38 || s > p || s > 28 {
                    return Err(fail(
                        &ctx.path,
                        format!("decimal({p}, {s}) does not fit rust_decimal::Decimal: the derive takes a precision of 1 to 38 digits and a scale of at most 28 and at most the precision"),
                    ));
                }
                (
                    Mapped {
                        rust: "Decimal".into(),
                        adapter: Some(Adapter::Decimal(p, s)),
                    },
                    &["rust_decimal::Decimal"],
                )
            }
            _ => {
                return Err(fail(
                    &ctx.path,
                    format!(
                        "the logical type `{logical}` on `{}` has no Rust mapping in the derive; supported: date and time-millis (int), time-micros, timestamp-millis/micros and local-timestamp-millis/micros (long), uuid (string), decimal (bytes)",
                        base.name()
                    ),
                ))
            }
        };
        self.imports.extend(imports.iter().copied());
        Ok(rust)
    }

    /// An enum with one variant per union branch; returns its name.
    fn data_enum(&mut self, branches: &[Ty], ctx: &Ctx) -> Result<String> {
        if !branches.iter().any(|b| *b != Ty::Prim(Prim::Null)) {
            return Err(fail(&ctx.path, "a union of null alone has no Rust type"));
        }
        // The hint is made of UpperCamelCase parts already.
        let name = names::unique(
            &mut self.taken,
            ctx.hint.clone(),
            &[format!("{}Union", ctx.hint)],
        );
        let slot = self.items.len();
        self.items.push(None);
        let mut variants = Vec::with_capacity(branches.len());
        let mut variant_names = HashSet::new();
        for (i, b) in branches.iter().enumerate() {
            let vname = names::unique(&mut variant_names, variant_name(b, &self.type_names), &[]);
            if *b == Ty::Prim(Prim::Null) {
                variants.push((vname, None));
                continue;
            }
            let bctx = Ctx {
                path: format!("{}[branch {i}]", ctx.path),
                namespace: ctx.namespace.clone(),
                hint: format!("{name}{vname}"),
                inline: ctx.inline,
            };
            let mapped = self.ty(b, &bctx)?;
            if let Some(a) = mapped.adapter {
                return Err(fail(
                    &bctx.path,
                    format!(
                        "a union branch cannot carry #[flowodm({})]: the derive applies it to fields (through Option and Vec) only",
                        a.attr()
                    ),
                ));
            }
            variants.push((vname, Some(mapped.rust)));
        }
        let mut allows = Vec::new();
        // A record variant may be much larger than the others; boxing it would be a choice
        // for the user, not the schema.
        if branches.iter().any(|b| is_record(self.set, b)) {
            allows.push("clippy::large_enum_variant");
        }
        let idents: Vec<&str> = variants.iter().map(|(v, _)| v.as_str()).collect();
        if names::shared_word(&name, &idents) {
            allows.push("clippy::enum_variant_names");
        }
        self.items[slot] = Some(Item {
            name: name.clone(),
            doc: None,
            derive: "Debug, Clone, PartialEq, flowodm::Avro",
            attrs: Vec::new(),
            allows,
            body: Body::DataEnum(variants),
        });
        Ok(name)
    }

    fn unit_enum(
        &mut self,
        full: &str,
        named: &Named,
        symbols: &[String],
        default: Option<&str>,
    ) -> Result<Item> {
        let mut taken = HashSet::new();
        let mut pairs = Vec::with_capacity(symbols.len());
        for s in symbols {
            let ident = names::unique(&mut taken, names::type_ident(s), &[]);
            pairs.push((ident, s.clone()));
        }
        let rule = names::best_rule(&pairs);
        let variants = pairs
            .iter()
            .map(|(ident, symbol)| {
                let mut attrs = Vec::new();
                let implied = rule.map_or_else(|| ident.clone(), |r| r.apply(ident));
                if implied != *symbol {
                    attrs.push(format!("rename = {}", lit(symbol)));
                }
                if default == Some(symbol.as_str()) {
                    attrs.push("default".into());
                }
                VariantOut {
                    ident: ident.clone(),
                    attrs,
                }
            })
            .collect();
        let mut attrs = self.container_attrs(full, named);
        if let Some(rule) = rule {
            attrs.push(format!("rename_all = {}", lit(Rule::as_str(rule))));
        }
        attrs.extend(named.aliases.iter().map(|a| format!("alias = {}", lit(a))));
        let name = self.type_names[full].clone();
        let idents: Vec<&str> = pairs.iter().map(|(v, _)| v.as_str()).collect();
        let allows = if names::shared_word(&name, &idents) {
            vec!["clippy::enum_variant_names"]
        } else {
            Vec::new()
        };
        Ok(Item {
            name,
            doc: named.doc.clone(),
            derive: "Debug, Clone, Copy, PartialEq, Eq, Hash, flowodm::Avro",
            attrs,
            allows,
            body: Body::UnitEnum(variants),
        })
    }
}

/// `[u8; N]`, when the fixed is what the derive writes for it: named `fixed_N` in the enclosing
/// namespace, without doc, aliases or logical type.
fn fixed(named: &Named, size: u64, logical: Option<&str>, ctx: &Ctx) -> Result<String> {
    let full = named.full_name();
    let why = if let Some(l) = logical {
        Some(format!(
            "the logical type `{l}` on a fixed has no Rust mapping in the derive"
        ))
    } else if named.name != format!("fixed_{size}") || named.namespace != ctx.namespace {
        let expected = crate::avro::full_name(&ctx.namespace, &format!("fixed_{size}"));
        Some(format!(
            "the derive writes [u8; {size}] as a fixed named `{expected}` (`fixed_<size>` in the enclosing namespace); rename the fixed to that to generate [u8; {size}]"
        ))
    } else if named.doc.is_some() || !named.aliases.is_empty() {
        Some("the derive writes a fixed without doc or aliases".to_string())
    } else {
        None
    };
    match why {
        Some(why) => Err(fail(
            &ctx.path,
            format!("cannot express the fixed `{full}`: {why}"),
        )),
        None => Ok(format!("[u8; {size}]")),
    }
}
