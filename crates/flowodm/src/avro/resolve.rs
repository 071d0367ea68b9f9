//! Schema resolution: reading data written with one schema (the writer's) into a type whose
//! schema is another (the reader's), by the rules of the Avro specification.
//!
//! `Resolution::compile` compares the two schemas once and produces a plan: which writer fields
//! feed which reader fields, which writer fields to skip, which reader fields take their default,
//! which numbers to promote (int → long → float → double), how enum symbols map, and which union
//! branch each writer branch lands in. Decoding then follows the plan without looking at a
//! schema again. Subtrees that are identical in both schemas compile to [`Plan::Same`], which
//! decodes through the type's own generated decoder, so evolved data stays on the fast path.
//!
//! Incompatibilities that would fail for every datum (a reader field without default that the
//! writer lacks, a string read as an int) are errors at compile time. Ones that depend on the data
//! (an enum symbol the reader does not know and has no default for, a union branch with no
//! counterpart) are compiled into the plan and fail only when such a datum arrives.

use std::collections::HashMap;
use std::sync::Arc;

use serde_json::Value as Json;

use super::binary::{self, invalid, Reader};
use super::node::{FieldNode, Node, NodeId, SchemaTree};
use crate::error::{Error, Result};

/// How to decode one value of the reader's type from the writer's encoding.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Plan {
    /// The writer's schema for this value equals the reader's: decode directly.
    Same,
    /// A primitive the reader widens.
    Promote(Promotion),
    /// A record; the index of its plan in [`Resolution`].
    Record(usize),
    /// An array whose items follow the plan.
    Array(Box<Plan>),
    /// A map whose values follow the plan.
    Map(Box<Plan>),
    /// An enum: for each writer symbol index, the reader's symbol index (`None`: unknown symbol
    /// and no default).
    Enum(Arc<[Option<u32>]>),
    /// The writer wrote a union: for each writer branch, where it lands.
    WriterUnion(Arc<[Option<Branch>]>),
    /// The writer wrote a plain value that the reader reads as one branch of its union.
    ReaderUnion(Box<Branch>),
}

/// A writer value landing in one branch of the reader's union (or in the reader's plain type,
/// whose "branch" is 0).
#[derive(Debug, Clone, PartialEq)]
pub struct Branch {
    /// The reader's union branch index.
    pub reader_branch: u32,
    /// How to decode the value.
    pub plan: Plan,
}

/// A primitive widening allowed by the Avro specification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Promotion {
    /// `int` read as `long`.
    IntToLong,
    /// `int` read as `float`.
    IntToFloat,
    /// `int` read as `double`.
    IntToDouble,
    /// `long` read as `float`.
    LongToFloat,
    /// `long` read as `double`.
    LongToDouble,
    /// `float` read as `double`.
    FloatToDouble,
    /// `string` read as `bytes`.
    StringToBytes,
    /// `bytes` read as `string`.
    BytesToString,
}

/// One step of a record plan, in the writer's field order.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// Decode the writer's field into the reader's field with this index.
    Read {
        /// The reader's field index.
        field: u32,
        /// How to decode it.
        plan: Plan,
    },
    /// The reader has no such field: skip the writer's value.
    Skip(SkipId),
}

/// A writer schema node to skip (opaque).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SkipId(NodeId);

/// The plan of one record.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RecordPlan {
    /// What to do with each writer field, in order.
    pub steps: Vec<Step>,
    /// Reader fields the writer lacks, with their default value encoded in the reader's schema.
    pub defaults: Vec<(u32, Vec<u8>)>,
}

/// A compiled resolution of a writer schema against a reader schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Resolution {
    root: Plan,
    records: Vec<RecordPlan>,
    writer: SchemaTree,
}

impl Resolution {
    /// Compiles the plan for reading `writer` data as `reader`.
    pub(crate) fn compile(writer: &SchemaTree, reader: &SchemaTree) -> Result<Self> {
        let mut c = Compiler {
            writer,
            reader,
            records: Vec::new(),
            record_ids: HashMap::new(),
        };
        let root = c.resolve(writer.root, reader.root, "")?;
        Ok(Resolution {
            root,
            records: c.records,
            writer: writer.clone(),
        })
    }

    /// The plan of the top-level value.
    pub fn root(&self) -> &Plan {
        &self.root
    }

    /// The plan of record `index`.
    #[inline]
    pub fn record(&self, index: usize) -> &RecordPlan {
        &self.records[index]
    }

    /// Skips one value of a writer node.
    pub fn skip(&self, r: &mut Reader<'_>, id: SkipId) -> Result<()> {
        skip(&self.writer, id.0, r)
    }
}

struct Compiler<'a> {
    writer: &'a SchemaTree,
    reader: &'a SchemaTree,
    records: Vec<RecordPlan>,
    record_ids: HashMap<(NodeId, NodeId), usize>,
}

fn names_match(w: &Node, r: &Node) -> bool {
    let (Some(wn), Some(rn)) = (w.name(), r.name()) else {
        return false;
    };
    wn == rn || r.aliases().iter().any(|a| a == wn) || short(wn) == short(rn)
}

fn short(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

fn mismatch(path: &str, w: &Node, r: &Node) -> Error {
    let at = if path.is_empty() {
        "the top level"
    } else {
        path
    };
    Error::Schema {
        message: format!(
            "at {at}: data written as {} cannot be read as {}",
            w.describe(),
            r.describe()
        ),
    }
}

impl Compiler<'_> {
    fn resolve(&mut self, w: NodeId, r: NodeId, path: &str) -> Result<Plan> {
        let wn = self.writer.node(w);
        let rn = self.reader.node(r);
        use Node::*;
        let promote = |p| Ok(Plan::Promote(p));
        match (wn, rn) {
            (Union(wb), _) => {
                let wb = wb.clone();
                let mut branches = Vec::with_capacity(wb.len());
                let mut any = false;
                for b in wb {
                    let branch = self.resolve_into(b, r, path).ok();
                    any |= branch.is_some();
                    branches.push(branch);
                }
                if !any {
                    return Err(mismatch(path, wn, rn));
                }
                // All branches identical to the reader's union, in order: nothing to do.
                if let Union(rb) = rn {
                    if rb.len() == branches.len()
                        && branches.iter().enumerate().all(|(i, b)| {
                            matches!(b, Some(Branch { reader_branch, plan: Plan::Same }) if *reader_branch as usize == i)
                        })
                    {
                        return Ok(Plan::Same);
                    }
                }
                Ok(Plan::WriterUnion(branches.into()))
            }
            (_, Union(_)) => Ok(Plan::ReaderUnion(Box::new(self.resolve_into(w, r, path)?))),
            (Null, Null)
            | (Boolean, Boolean)
            | (Int, Int)
            | (Long, Long)
            | (Float, Float)
            | (Double, Double)
            | (Bytes, Bytes)
            | (String, String) => Ok(Plan::Same),
            (Int, Long) => promote(Promotion::IntToLong),
            (Int, Float) => promote(Promotion::IntToFloat),
            (Int, Double) => promote(Promotion::IntToDouble),
            (Long, Float) => promote(Promotion::LongToFloat),
            (Long, Double) => promote(Promotion::LongToDouble),
            (Float, Double) => promote(Promotion::FloatToDouble),
            (String, Bytes) => promote(Promotion::StringToBytes),
            (Bytes, String) => promote(Promotion::BytesToString),
            (Array(wi), Array(ri)) => {
                let (wi, ri) = (*wi, *ri);
                Ok(match self.resolve(wi, ri, &format!("{path}[]"))? {
                    Plan::Same => Plan::Same,
                    p => Plan::Array(Box::new(p)),
                })
            }
            (Map(wv), Map(rv)) => {
                let (wv, rv) = (*wv, *rv);
                Ok(match self.resolve(wv, rv, &format!("{path}{{}}"))? {
                    Plan::Same => Plan::Same,
                    p => Plan::Map(Box::new(p)),
                })
            }
            (Fixed(wf), Fixed(rf)) if names_match(wn, rn) && wf.size == rf.size => Ok(Plan::Same),
            (Enum(we), Enum(re)) if names_match(wn, rn) => {
                let default = re
                    .default
                    .as_ref()
                    .and_then(|d| re.symbols.iter().position(|s| s == d));
                let map: Vec<Option<u32>> = we
                    .symbols
                    .iter()
                    .map(|s| {
                        re.symbols
                            .iter()
                            .position(|x| x == s)
                            .or(default)
                            .map(|i| i as u32)
                    })
                    .collect();
                let identity = we.symbols == re.symbols;
                Ok(if identity {
                    Plan::Same
                } else {
                    Plan::Enum(map.into())
                })
            }
            (Record(_), Record(_)) if names_match(wn, rn) => self.resolve_record(w, r, path),
            _ => Err(mismatch(path, wn, rn)),
        }
    }

    /// Resolves a writer value (not a union) against a reader type that may be a union.
    fn resolve_into(&mut self, w: NodeId, r: NodeId, path: &str) -> Result<Branch> {
        let Node::Union(rb) = self.reader.node(r) else {
            return Ok(Branch {
                reader_branch: 0,
                plan: self.resolve(w, r, path)?,
            });
        };
        let rb = rb.clone();
        let wn = self.writer.node(w);
        // The first branch of the same type (or name) wins; else the first that resolves.
        let same_kind = rb.iter().position(|&b| {
            let bn = self.reader.node(b);
            std::mem::discriminant(bn) == std::mem::discriminant(wn)
                && (bn.name().is_none() || names_match(wn, bn))
        });
        let order = same_kind.into_iter().chain(0..rb.len());
        for i in order {
            if let Ok(plan) = self.resolve(w, rb[i], path) {
                return Ok(Branch {
                    reader_branch: i as u32,
                    plan,
                });
            }
        }
        Err(mismatch(path, wn, self.reader.node(r)))
    }

    fn resolve_record(&mut self, w: NodeId, r: NodeId, path: &str) -> Result<Plan> {
        if let Some(&idx) = self.record_ids.get(&(w, r)) {
            return Ok(Plan::Record(idx));
        }
        let idx = self.records.len();
        self.records.push(RecordPlan::default());
        self.record_ids.insert((w, r), idx);
        let (Node::Record(wr), Node::Record(rr)) = (self.writer.node(w), self.reader.node(r))
        else {
            unreachable!("checked by the caller");
        };
        let (wfields, rfields) = (wr.fields.clone(), rr.fields.clone());
        let mut plan = RecordPlan::default();
        let mut matched = vec![false; rfields.len()];
        for wf in &wfields {
            let found = rfields
                .iter()
                .position(|rf| rf.name == wf.name || rf.aliases.contains(&wf.name));
            match found {
                Some(i) => {
                    matched[i] = true;
                    let fpath = format!("{path}.{}", rfields[i].name);
                    let p = self.resolve(wf.node, rfields[i].node, &fpath)?;
                    plan.steps.push(Step::Read {
                        field: i as u32,
                        plan: p,
                    });
                }
                None => plan.steps.push(Step::Skip(SkipId(wf.node))),
            }
        }
        for (i, rf) in rfields.iter().enumerate() {
            if !matched[i] {
                plan.defaults.push((
                    i as u32,
                    self.default_bytes(rf, &format!("{path}.{}", rf.name))?,
                ));
            }
        }
        let identity = plan.defaults.is_empty()
            && plan.steps.len() == rfields.len()
            && plan.steps.iter().enumerate().all(
                |(i, s)| matches!(s, Step::Read { field, plan: Plan::Same } if *field as usize == i),
            );
        // A record that refers to itself keeps its plan even when identical: a reference to it
        // may already have been handed out.
        let self_referenced = self.records.len() > idx + 1 || contains_ref(&plan, idx);
        self.records[idx] = plan;
        if identity && !self_referenced {
            self.record_ids.remove(&(w, r));
            self.records.truncate(idx);
            return Ok(Plan::Same);
        }
        Ok(Plan::Record(idx))
    }

    fn default_bytes(&self, field: &FieldNode, path: &str) -> Result<Vec<u8>> {
        let Some(default) = &field.default else {
            return Err(Error::Schema {
                message: format!(
                    "at {path}: the reader's field `{}` is missing from the writer's schema and has no default",
                    field.name
                ),
            });
        };
        let mut buf = Vec::new();
        encode_json(self.reader, field.node, default, &mut buf).map_err(|e| Error::Schema {
            message: format!("at {path}: the default {default} does not fit the field: {e}"),
        })?;
        Ok(buf)
    }
}

fn contains_ref(plan: &RecordPlan, idx: usize) -> bool {
    fn walk(p: &Plan, idx: usize) -> bool {
        match p {
            Plan::Record(i) => *i == idx,
            Plan::Array(p) | Plan::Map(p) => walk(p, idx),
            Plan::ReaderUnion(b) => walk(&b.plan, idx),
            Plan::WriterUnion(bs) => bs.iter().flatten().any(|b| walk(&b.plan, idx)),
            _ => false,
        }
    }
    plan.steps
        .iter()
        .any(|s| matches!(s, Step::Read { plan, .. } if walk(plan, idx)))
}

/// Encodes a JSON default value (as written in a schema) in Avro binary for `node`.
pub(crate) fn encode_json(
    tree: &SchemaTree,
    node: NodeId,
    json: &Json,
    buf: &mut Vec<u8>,
) -> Result<()> {
    let bad = || invalid(format!("{json} is not a {}", tree.node(node).describe()));
    match tree.node(node) {
        Node::Null => json.is_null().then_some(()).ok_or_else(bad),
        Node::Boolean => {
            binary::write_bool(buf, json.as_bool().ok_or_else(bad)?);
            Ok(())
        }
        Node::Int => {
            let v = json
                .as_i64()
                .and_then(|v| i32::try_from(v).ok())
                .ok_or_else(bad)?;
            binary::write_int(buf, v);
            Ok(())
        }
        Node::Long => {
            binary::write_long(buf, json.as_i64().ok_or_else(bad)?);
            Ok(())
        }
        Node::Float => {
            binary::write_float(buf, json.as_f64().ok_or_else(bad)? as f32);
            Ok(())
        }
        Node::Double => {
            binary::write_double(buf, json.as_f64().ok_or_else(bad)?);
            Ok(())
        }
        Node::String => {
            binary::write_bytes(buf, json.as_str().ok_or_else(bad)?.as_bytes());
            Ok(())
        }
        Node::Bytes => {
            binary::write_bytes(buf, &json_bytes(json.as_str().ok_or_else(bad)?)?);
            Ok(())
        }
        Node::Fixed(f) => {
            let bytes = json_bytes(json.as_str().ok_or_else(bad)?)?;
            if bytes.len() != f.size {
                return Err(bad());
            }
            buf.extend_from_slice(&bytes);
            Ok(())
        }
        Node::Enum(e) => {
            let s = json.as_str().ok_or_else(bad)?;
            let i = e.symbols.iter().position(|x| x == s).ok_or_else(bad)?;
            binary::write_int(buf, i as i32);
            Ok(())
        }
        Node::Array(items) => {
            let items_node = *items;
            let arr = json.as_array().ok_or_else(bad)?;
            if !arr.is_empty() {
                binary::write_long(buf, arr.len() as i64);
                for v in arr {
                    encode_json(tree, items_node, v, buf)?;
                }
            }
            binary::write_long(buf, 0);
            Ok(())
        }
        Node::Map(values) => {
            let values_node = *values;
            let obj = json.as_object().ok_or_else(bad)?;
            if !obj.is_empty() {
                binary::write_long(buf, obj.len() as i64);
                for (k, v) in obj {
                    binary::write_bytes(buf, k.as_bytes());
                    encode_json(tree, values_node, v, buf)?;
                }
            }
            binary::write_long(buf, 0);
            Ok(())
        }
        Node::Union(branches) => {
            // A union's default belongs to its first branch; accept null for a null branch too.
            let branches = branches.clone();
            for (i, b) in branches.iter().enumerate() {
                let mut tmp = Vec::new();
                if encode_json(tree, *b, json, &mut tmp).is_ok() {
                    binary::write_long(buf, i as i64);
                    buf.extend_from_slice(&tmp);
                    return Ok(());
                }
                if i == 0 && !json.is_null() {
                    continue;
                }
            }
            Err(bad())
        }
        Node::Record(r) => {
            let obj = json.as_object().ok_or_else(bad)?;
            for f in &r.fields {
                let v = obj.get(&f.name).or(f.default.as_ref()).ok_or_else(bad)?;
                encode_json(tree, f.node, v, buf)?;
            }
            Ok(())
        }
    }
}

/// Avro JSON encodes bytes as a string whose code points 0–255 are the bytes.
fn json_bytes(s: &str) -> Result<Vec<u8>> {
    s.chars()
        .map(|c| u8::try_from(u32::from(c)).map_err(|_| invalid(format!("{c:?} is not a byte"))))
        .collect()
}

/// Skips one value of `node` in the writer's schema.
pub(crate) fn skip(tree: &SchemaTree, node: NodeId, r: &mut Reader<'_>) -> Result<()> {
    match tree.node(node) {
        Node::Null => Ok(()),
        Node::Boolean => r.read_bool().map(drop),
        Node::Int | Node::Long | Node::Enum(_) => r.read_long().map(drop),
        Node::Float => r.take(4, "a float").map(drop),
        Node::Double => r.take(8, "a double").map(drop),
        Node::Bytes | Node::String => r.read_bytes().map(drop),
        Node::Fixed(f) => r.take(f.size, "a fixed").map(drop),
        Node::Array(items) => {
            let items = *items;
            loop {
                let n = r.read_block_count()?;
                if n == 0 {
                    return Ok(());
                }
                for _ in 0..n {
                    skip(tree, items, r)?;
                }
            }
        }
        Node::Map(values) => {
            let values = *values;
            loop {
                let n = r.read_block_count()?;
                if n == 0 {
                    return Ok(());
                }
                for _ in 0..n {
                    r.read_bytes()?;
                    skip(tree, values, r)?;
                }
            }
        }
        Node::Union(branches) => {
            let i = r.read_long()?;
            let b = usize::try_from(i)
                .ok()
                .and_then(|i| branches.get(i))
                .ok_or_else(|| invalid(format!("union branch {i} does not exist")))?;
            skip(tree, *b, r)
        }
        Node::Record(rec) => {
            r.enter()?;
            for f in &rec.fields {
                skip(tree, f.node, r)?;
            }
            r.leave();
            Ok(())
        }
    }
}
