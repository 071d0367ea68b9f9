//! Compares a derived schema with the input schemas it was generated from.
//!
//! Parsing Canonical Form keeps only what decides the binary encoding: it drops defaults,
//! logical types, docs and aliases. So besides the canonical forms (computed by apache-avro),
//! both schemas are brought to a *normal form* written here: every named type defined in full
//! at its first use and by full name afterwards (types of other files inlined, as the derive
//! inlines them), primitives as plain names, and of the other attributes exactly those that
//! matter to readers and writers and that the derive writes: defaults, logical types with their
//! precision and scale, enum defaults, docs and aliases. Properties outside the Avro
//! specification (`connect.name`, ...) are left out; a field `order` must be `ascending`.

use std::collections::{HashMap, HashSet};

use serde_json::{json, Map, Value as Json};

use crate::{corpus_dir, Case};

/// The schema texts of a case, in order.
pub fn texts(case: &Case) -> Vec<String> {
    case.files
        .iter()
        .map(|f| {
            let path = corpus_dir().join(f);
            std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
        })
        .collect()
}

/// Checks that `derived` (the JSON of the main type's schema) is the case's main schema:
/// same canonical form, same normal form, and the same schema to
/// [`flowodm::avro::compare_schemas`].
pub fn check(case: &Case, derived: &str) -> Result<(), String> {
    let texts = texts(case);
    let jsons: Vec<Json> = texts
        .iter()
        .map(|t| serde_json::from_str(t).map_err(|e| e.to_string()))
        .collect::<Result<_, _>>()?;
    let want = normal_form(&jsons);
    let derived_json: Json = serde_json::from_str(derived).map_err(|e| e.to_string())?;
    let got = normal_form(std::slice::from_ref(&derived_json));
    if want != got {
        return Err(format!(
            "normal forms differ:\n  derived: {got}\n  input:   {want}"
        ));
    }
    // The input's normal form is a standalone schema: the main schema with the types of the
    // other files inlined.
    let standalone = want.to_string();
    let canonical = |text: &str| {
        apache_avro::Schema::parse_str(text)
            .map(|s| s.canonical_form())
            .map_err(|e| format!("not a valid schema: {e}\n{text}"))
    };
    let (cw, cg) = (canonical(&standalone)?, canonical(derived)?);
    if cw != cg {
        return Err(format!(
            "canonical forms differ:\n  derived: {cg}\n  input:   {cw}"
        ));
    }
    flowodm::avro::compare_schemas(derived, &standalone)
}

/// The normal form of the last of `schemas`, which may use the named types of the others.
pub fn normal_form(schemas: &[Json]) -> Json {
    let mut n = Normalizer::default();
    for s in schemas {
        n.collect(s, "");
    }
    let main = schemas.last().expect("at least one schema");
    n.norm(main, "")
}

#[derive(Default)]
struct Normalizer {
    /// Definitions by full name, with their namespace.
    defs: HashMap<String, (Map<String, Json>, String)>,
    written: HashSet<String>,
}

const PRIMITIVES: &[&str] = &[
    "null", "boolean", "int", "long", "float", "double", "bytes", "string",
];

/// The full name and namespace of a named type's definition inside namespace `ns`.
fn name_of(obj: &Map<String, Json>, ns: &str) -> (String, String) {
    let name = obj["name"].as_str().expect("a named type has a name");
    if let Some((space, _)) = name.rsplit_once('.') {
        return (name.to_string(), space.to_string());
    }
    let space = match obj.get("namespace") {
        Some(Json::String(s)) => s.clone(),
        Some(Json::Null) => String::new(),
        _ => ns.to_string(),
    };
    (full(&space, name), space)
}

fn full(ns: &str, name: &str) -> String {
    if ns.is_empty() {
        name.to_string()
    } else {
        format!("{ns}.{name}")
    }
}

/// A doc as the derive reads it back from `///` lines: each line trimmed, empty means none.
fn doc(v: Option<&Json>) -> Option<Json> {
    let text = v?.as_str()?.replace("\r\n", "\n").replace('\r', "\n");
    let lines: Vec<&str> = text.trim().lines().map(str::trim).collect();
    let joined = lines.join("\n");
    (!joined.trim().is_empty()).then(|| Json::from(joined.trim()))
}

fn aliases(v: Option<&Json>) -> Option<Json> {
    match v {
        Some(Json::Array(a)) if !a.is_empty() => Some(Json::Array(a.clone())),
        _ => None,
    }
}

impl Normalizer {
    fn collect(&mut self, v: &Json, ns: &str) {
        match v {
            Json::Array(items) => items.iter().for_each(|i| self.collect(i, ns)),
            Json::Object(obj) => match obj.get("type") {
                Some(Json::String(t))
                    if ["record", "error", "enum", "fixed"].contains(&t.as_str()) =>
                {
                    let (full, space) = name_of(obj, ns);
                    if let Some(Json::Array(fields)) = obj.get("fields") {
                        for f in fields {
                            self.collect(&f["type"], &space);
                        }
                    }
                    self.defs.insert(full, (obj.clone(), space));
                }
                Some(Json::String(t)) if t == "array" => self.collect(&obj["items"], ns),
                Some(Json::String(t)) if t == "map" => self.collect(&obj["values"], ns),
                Some(other) => self.collect(other, ns),
                None => {}
            },
            _ => {}
        }
    }

    fn resolve(&self, name: &str, ns: &str) -> String {
        if name.contains('.') {
            return name.to_string();
        }
        let q = full(ns, name);
        if self.defs.contains_key(&q) {
            q
        } else {
            name.to_string()
        }
    }

    fn norm(&mut self, v: &Json, ns: &str) -> Json {
        match v {
            Json::String(s) if PRIMITIVES.contains(&s.as_str()) => v.clone(),
            Json::String(s) => {
                let full = self.resolve(s, ns);
                self.named(&full)
            }
            Json::Array(items) => Json::Array(items.iter().map(|i| self.norm(i, ns)).collect()),
            Json::Object(obj) => {
                let t = &obj["type"];
                let Json::String(t) = t else {
                    return self.norm(t, ns);
                };
                match t.as_str() {
                    "record" | "error" | "enum" | "fixed" => {
                        let (full, _) = name_of(obj, ns);
                        self.named(&full)
                    }
                    "array" => json!({"type": "array", "items": self.norm(&obj["items"], ns)}),
                    "map" => json!({"type": "map", "values": self.norm(&obj["values"], ns)}),
                    p if PRIMITIVES.contains(&p) => match obj.get("logicalType") {
                        None => Json::from(p),
                        Some(l) => {
                            let mut out = Map::new();
                            out.insert("type".into(), Json::from(p));
                            out.insert("logicalType".into(), l.clone());
                            if l == "decimal" {
                                out.insert("precision".into(), obj["precision"].clone());
                                // The specification's default scale.
                                let scale = obj.get("scale").cloned().unwrap_or(Json::from(0));
                                out.insert("scale".into(), scale);
                            }
                            Json::Object(out)
                        }
                    },
                    name => {
                        let full = self.resolve(name, ns);
                        self.named(&full)
                    }
                }
            }
            other => panic!("not an Avro type: {other}"),
        }
    }

    /// A named type: in full the first time, by full name afterwards.
    fn named(&mut self, full_name: &str) -> Json {
        if !self.written.insert(full_name.to_string()) {
            return Json::from(full_name);
        }
        let (obj, space) = self
            .defs
            .get(full_name)
            .cloned()
            .unwrap_or_else(|| panic!("unknown type `{full_name}`"));
        let kind = obj["type"].as_str().expect("named types have a type");
        let mut out = Map::new();
        out.insert("name".into(), Json::from(full_name));
        out.insert(
            "type".into(),
            Json::from(if kind == "error" { "record" } else { kind }),
        );
        if let Some(d) = doc(obj.get("doc")) {
            out.insert("doc".into(), d);
        }
        if let Some(a) = aliases(obj.get("aliases")) {
            out.insert("aliases".into(), a);
        }
        match kind {
            "record" | "error" => {
                let mut fields = Vec::new();
                for f in obj["fields"].as_array().expect("a record has fields") {
                    let mut nf = Map::new();
                    nf.insert("name".into(), f["name"].clone());
                    nf.insert("type".into(), self.norm(&f["type"], &space));
                    if let Some(d) = f.get("default") {
                        nf.insert("default".into(), d.clone());
                    }
                    if let Some(d) = doc(f.get("doc")) {
                        nf.insert("doc".into(), d);
                    }
                    if let Some(a) = aliases(f.get("aliases")) {
                        nf.insert("aliases".into(), a);
                    }
                    if let Some(o) = f.get("order") {
                        assert_eq!(o, "ascending", "the derive writes no sort order");
                    }
                    fields.push(Json::Object(nf));
                }
                out.insert("fields".into(), Json::Array(fields));
            }
            "enum" => {
                out.insert("symbols".into(), obj["symbols"].clone());
                if let Some(d) = obj.get("default") {
                    out.insert("default".into(), d.clone());
                }
            }
            _ => {
                out.insert("size".into(), obj["size"].clone());
                if let Some(l) = obj.get("logicalType") {
                    out.insert("logicalType".into(), l.clone());
                }
            }
        }
        Json::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_form_inlines_other_files_and_resolves_names() {
        let money = json!({"type": "record", "name": "Money", "namespace": "a",
            "fields": [{"name": "v", "type": {"type": "string"}, "doc": "  x\n   y "}]});
        let order = json!({"type": "record", "name": "Order", "namespace": "b",
            "fields": [{"name": "m", "type": "a.Money"}, {"name": "n", "type": "a.Money"},
                       {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 3},
                        "connect.name": "ignored"}]});
        let got = normal_form(&[money, order]);
        assert_eq!(
            got,
            json!({"type": "record", "name": "b.Order", "fields": [
                {"name": "m", "type": {"type": "record", "name": "a.Money",
                    "fields": [{"name": "v", "type": "string", "doc": "x\ny"}]}},
                {"name": "n", "type": "a.Money"},
                {"name": "d", "type": {"type": "bytes", "logicalType": "decimal", "precision": 3, "scale": 0}}
            ]})
        );
    }

    #[test]
    fn normal_forms_differ_on_defaults_that_canonical_forms_ignore() {
        let a = json!({"type": "record", "name": "R", "fields": [{"name": "x", "type": "int", "default": 1}]});
        let b = json!({"type": "record", "name": "R", "fields": [{"name": "x", "type": "int", "default": 2}]});
        assert_ne!(normal_form(&[a]), normal_form(&[b]));
    }
}
