//! Reads Avro schema texts into a small model that keeps what the generated code must reproduce:
//! names and namespaces, docs, aliases, defaults and logical types.

use std::collections::HashMap;

use serde_json::{Map, Value as Json};

use crate::avro::full_name;
use crate::error::{Error, Result};

/// An Avro type as written in a schema.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Ty {
    Prim(Prim),
    /// A primitive with a `logicalType`.
    Logical {
        base: Prim,
        logical: String,
        precision: Option<u64>,
        scale: Option<u64>,
    },
    Array(Box<Ty>),
    Map(Box<Ty>),
    Union(Vec<Ty>),
    /// A named type, by its full name.
    Named(String),
}

pub(super) use crate::schema::Prim;

/// A record, enum or fixed.
#[derive(Debug, Clone)]
pub(super) struct Named {
    pub name: String,
    pub namespace: String,
    pub doc: Option<String>,
    pub aliases: Vec<String>,
    pub kind: NamedKind,
}

impl Named {
    pub(super) fn full_name(&self) -> String {
        full_name(&self.namespace, &self.name)
    }
}

#[derive(Debug, Clone)]
pub(super) enum NamedKind {
    Record(Vec<Field>),
    Enum {
        symbols: Vec<String>,
        default: Option<String>,
    },
    Fixed {
        size: u64,
        logical: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub(super) struct Field {
    pub name: String,
    pub ty: Ty,
    pub default: Option<Json>,
    pub doc: Option<String>,
    pub aliases: Vec<String>,
    /// `order`, when it is not the default `ascending`.
    pub order: Option<String>,
}

/// Every named type of a set of schema texts, and the root type of each text.
#[derive(Debug, Default)]
pub(super) struct SchemaSet {
    pub named: HashMap<String, Named>,
    /// Full names in the order they are defined.
    pub order: Vec<String>,
    pub roots: Vec<Ty>,
}

/// Parses schema texts; `labels` name them in errors (file names, or `schema N`).
pub(super) fn parse(texts: &[(String, String)]) -> Result<SchemaSet> {
    let mut jsons = Vec::with_capacity(texts.len());
    for (label, text) in texts {
        let json: Json = serde_json::from_str(text).map_err(|e| Error::Schema {
            message: format!("{label} is not valid JSON: {e}"),
        })?;
        jsons.push(json);
    }
    validate(texts)?;
    let mut set = SchemaSet::default();
    // References are resolved after every text is read, so a text may use a type another text
    // defines, in any order.
    let mut refs = Vec::new();
    for ((label, _), json) in texts.iter().zip(&jsons) {
        let mut p = Parser {
            set: &mut set,
            refs: &mut refs,
            label,
        };
        let root = p.ty(json, "", "")?;
        set.roots.push(root);
    }
    for (name, ns, path) in refs {
        resolve(&set, &name, &ns).ok_or_else(|| Error::Schema {
            message: format!("{path}: unknown type `{name}`"),
        })?;
    }
    resolve_all(&mut set);
    Ok(set)
}

/// Checks the texts with apache-avro, which knows every rule of the specification.
fn validate(texts: &[(String, String)]) -> Result<()> {
    let Some(((last_label, last), rest)) = texts.split_last() else {
        return Err(Error::Schema {
            message: "no schema to generate code from".into(),
        });
    };
    let others: Vec<&str> = rest.iter().map(|(_, t)| t.as_str()).collect();
    if let Err(e) = apache_avro::Schema::parse_str_with_list(last, &others) {
        let which = if rest.is_empty() {
            last_label.clone()
        } else {
            let labels: Vec<&str> = texts.iter().map(|(l, _)| l.as_str()).collect();
            labels.join(", ")
        };
        return Err(Error::Schema {
            message: format!("{which}: not a valid Avro schema: {e}"),
        });
    }
    Ok(())
}

/// The full name `name` means inside namespace `ns`, if such a type exists.
fn resolve(set: &SchemaSet, name: &str, ns: &str) -> Option<String> {
    if name.contains('.') {
        return set.named.contains_key(name).then(|| name.to_string());
    }
    let qualified = full_name(ns, name);
    if set.named.contains_key(&qualified) {
        return Some(qualified);
    }
    set.named.contains_key(name).then(|| name.to_string())
}

/// Replaces the provisional references (`name` + `\0` + namespace) by full names.
fn resolve_all(set: &mut SchemaSet) {
    fn fix(ty: &mut Ty, lookup: &dyn Fn(&str) -> String) {
        match ty {
            Ty::Named(n) => *n = lookup(n),
            Ty::Array(t) | Ty::Map(t) => fix(t, lookup),
            Ty::Union(ts) => ts.iter_mut().for_each(|t| fix(t, lookup)),
            Ty::Prim(_) | Ty::Logical { .. } => {}
        }
    }
    let known: Vec<String> = set.named.keys().cloned().collect();
    let lookup = |raw: &str| -> String {
        match raw.split_once('\0') {
            Some((name, ns)) => {
                if name.contains('.') {
                    return name.to_string();
                }
                let q = full_name(ns, name);
                if known.contains(&q) {
                    q
                } else {
                    name.to_string()
                }
            }
            None => raw.to_string(),
        }
    };
    for root in &mut set.roots {
        fix(root, &lookup);
    }
    for named in set.named.values_mut() {
        if let NamedKind::Record(fields) = &mut named.kind {
            for f in fields {
                fix(&mut f.ty, &lookup);
            }
        }
    }
}

struct Parser<'a> {
    set: &'a mut SchemaSet,
    refs: &'a mut Vec<(String, String, String)>,
    label: &'a str,
}

impl Parser<'_> {
    fn err(&self, path: &str, message: impl std::fmt::Display) -> Error {
        let at = if path.is_empty() {
            self.label.to_string()
        } else {
            format!("{} at {path}", self.label)
        };
        Error::Schema {
            message: format!("{at}: {message}"),
        }
    }

    /// Reads a type inside namespace `ns`; `path` says where it is, for errors.
    fn ty(&mut self, json: &Json, ns: &str, path: &str) -> Result<Ty> {
        match json {
            Json::String(s) => Ok(self.name_ref(s, ns, path)),
            Json::Array(items) => {
                let mut branches = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    branches.push(self.ty(item, ns, &format!("{path}[branch {i}]"))?);
                }
                Ok(Ty::Union(branches))
            }
            Json::Object(obj) => self.object(obj, ns, path),
            other => Err(self.err(path, format!("`{other}` is not an Avro type"))),
        }
    }

    fn name_ref(&mut self, s: &str, ns: &str, path: &str) -> Ty {
        match Prim::parse(s) {
            Some(p) => Ty::Prim(p),
            None => {
                self.refs
                    .push((s.to_string(), ns.to_string(), self.at(path)));
                Ty::Named(format!("{s}\0{ns}"))
            }
        }
    }

    fn at(&self, path: &str) -> String {
        if path.is_empty() {
            self.label.to_string()
        } else {
            format!("{} at {path}", self.label)
        }
    }

    fn object(&mut self, obj: &Map<String, Json>, ns: &str, path: &str) -> Result<Ty> {
        let Some(kind) = obj.get("type") else {
            return Err(self.err(path, "a type object needs a `type`"));
        };
        let kind = match kind {
            Json::String(s) => s.as_str(),
            // {"type": {...}} or {"type": [...]}: the inner type, as written.
            other => return self.ty(other, ns, path),
        };
        match kind {
            "record" | "error" | "enum" | "fixed" => self.named(obj, kind, ns, path),
            "array" => {
                let items = obj
                    .get("items")
                    .ok_or_else(|| self.err(path, "an array needs `items`"))?;
                Ok(Ty::Array(Box::new(self.ty(
                    items,
                    ns,
                    &format!("{path}[items]"),
                )?)))
            }
            "map" => {
                let values = obj
                    .get("values")
                    .ok_or_else(|| self.err(path, "a map needs `values`"))?;
                Ok(Ty::Map(Box::new(self.ty(
                    values,
                    ns,
                    &format!("{path}[values]"),
                )?)))
            }
            other => match Prim::parse(other) {
                Some(base) => match obj.get("logicalType").and_then(Json::as_str) {
                    Some(logical) => Ok(Ty::Logical {
                        base,
                        logical: logical.to_string(),
                        precision: obj.get("precision").and_then(Json::as_u64),
                        scale: obj.get("scale").and_then(Json::as_u64),
                    }),
                    None => Ok(Ty::Prim(base)),
                },
                // {"type": "SomeName"}: a reference to a named type.
                None => Ok(self.name_ref(other, ns, path)),
            },
        }
    }

    fn named(&mut self, obj: &Map<String, Json>, kind: &str, ns: &str, path: &str) -> Result<Ty> {
        let raw_name = obj
            .get("name")
            .and_then(Json::as_str)
            .ok_or_else(|| self.err(path, format!("a {kind} needs a `name`")))?;
        let (namespace, name) = match raw_name.rsplit_once('.') {
            Some((n, short)) => (n.to_string(), short.to_string()),
            None => match obj.get("namespace") {
                Some(Json::String(n)) => (n.clone(), raw_name.to_string()),
                Some(Json::Null) => (String::new(), raw_name.to_string()),
                _ => (ns.to_string(), raw_name.to_string()),
            },
        };
        let full = full_name(&namespace, &name);
        let here = if path.is_empty() {
            full.clone()
        } else {
            format!("{path} ({full})")
        };
        if self.set.named.contains_key(&full) {
            return Err(self.err(&here, format!("`{full}` is defined twice")));
        }
        let doc = obj.get("doc").and_then(Json::as_str).map(str::to_string);
        let aliases = strings(obj.get("aliases"));
        // Registered before its fields are read, so a record may refer to itself.
        let placeholder = Named {
            name: name.clone(),
            namespace: namespace.clone(),
            doc: doc.clone(),
            aliases: aliases.clone(),
            kind: NamedKind::Record(Vec::new()),
        };
        self.set.named.insert(full.clone(), placeholder);
        self.set.order.push(full.clone());
        let kind = match kind {
            "record" | "error" => {
                let Some(Json::Array(fields)) = obj.get("fields") else {
                    return Err(self.err(&here, "a record needs `fields`"));
                };
                let mut out = Vec::with_capacity(fields.len());
                for f in fields {
                    let fname = f.get("name").and_then(Json::as_str).unwrap_or_default();
                    let fpath = format!("{full}.{fname}");
                    let fty = f
                        .get("type")
                        .ok_or_else(|| self.err(&fpath, "a field needs a `type`"))?;
                    let ty = self.ty(fty, &namespace, &fpath)?;
                    out.push(Field {
                        name: fname.to_string(),
                        ty,
                        default: f.get("default").cloned(),
                        doc: f.get("doc").and_then(Json::as_str).map(str::to_string),
                        aliases: strings(f.get("aliases")),
                        order: f
                            .get("order")
                            .and_then(Json::as_str)
                            .filter(|o| *o != "ascending")
                            .map(str::to_string),
                    });
                }
                NamedKind::Record(out)
            }
            "enum" => NamedKind::Enum {
                symbols: strings(obj.get("symbols")),
                default: obj
                    .get("default")
                    .and_then(Json::as_str)
                    .map(str::to_string),
            },
            _ => NamedKind::Fixed {
                size: obj.get("size").and_then(Json::as_u64).unwrap_or_default(),
                logical: obj
                    .get("logicalType")
                    .and_then(Json::as_str)
                    .map(str::to_string),
            },
        };
        if let Some(n) = self.set.named.get_mut(&full) {
            n.kind = kind;
        }
        Ok(Ty::Named(full))
    }
}

fn strings(v: Option<&Json>) -> Vec<String> {
    match v {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(Json::as_str)
            .map(str::to_string)
            .collect(),
        _ => Vec::new(),
    }
}
