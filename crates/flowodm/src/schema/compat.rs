//! Local compatibility checks: schema resolution between a writer's and a reader's schema, and
//! the seven compatibility levels built on it.

use std::collections::HashSet;
use std::fmt;

use apache_avro::Schema;

use super::load::{AvroSchema, Names, Origin};
use super::shape::{describe, view, Shape, View};
use crate::registry::CompatibilityLevel;

/// Why data written with one schema cannot be read with another.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum IncompatibilityKind {
    /// The reader expects a type the writer's values cannot be read as.
    TypeChanged {
        /// The writer's type.
        writer: String,
        /// The reader's type.
        reader: String,
    },
    /// The reader has a field the writer does not write, and no default for it.
    FieldWithoutDefault {
        /// The reader's field.
        field: String,
    },
    /// A named type (record, enum, fixed) has another name, and the reader has no alias for the
    /// writer's name.
    NameChanged {
        /// The writer's full name.
        writer: String,
        /// The reader's full name.
        reader: String,
    },
    /// The writer's enum has symbols the reader's lacks, and the reader's enum has no default.
    EnumSymbolsMissing {
        /// The writer's symbols the reader does not know.
        symbols: Vec<String>,
    },
    /// A fixed type changed size.
    FixedSizeChanged {
        /// The writer's size.
        writer: usize,
        /// The reader's size.
        reader: usize,
    },
    /// A branch of the writer's union cannot be read by the reader.
    UnionBranchUnreadable {
        /// The writer's branch.
        branch: String,
        /// The reader's type.
        reader: String,
    },
    /// The reader's union has no branch for the writer's type.
    NoUnionBranch {
        /// The writer's type.
        writer: String,
        /// The reader's union.
        reader: String,
    },
    /// The logical type changed (for example `timestamp-millis` to `timestamp-micros`, or a
    /// decimal's precision or scale), so the same bytes would mean another value.
    LogicalTypeChanged {
        /// The writer's logical type.
        writer: String,
        /// The reader's logical type.
        reader: String,
    },
    /// A reference to a named type that neither schema defines.
    UnknownType {
        /// The name.
        name: String,
    },
}

impl IncompatibilityKind {
    /// What changed, naming the reader's and writer's schemas with the labels given.
    fn describe(&self, reader: &str, writer: &str) -> String {
        match self {
            IncompatibilityKind::TypeChanged {
                writer: w,
                reader: r,
            } => format!(
                "type changed: {writer} has {w}, {reader} has {r}, and {w} cannot be read as {r}"
            ),
            IncompatibilityKind::FieldWithoutDefault { field } => format!(
                "field `{field}` is in {reader} without a default, and {writer} does not have it, \
                 so there is no value to read it from"
            ),
            IncompatibilityKind::NameChanged {
                writer: w,
                reader: r,
            } => format!(
                "type renamed: {writer} calls it `{w}`, {reader} calls it `{r}` and has no alias \
                 `{w}`"
            ),
            IncompatibilityKind::EnumSymbolsMissing { symbols } => format!(
                "enum symbol(s) {} are in {writer} but not in {reader}, whose enum has no default",
                symbols
                    .iter()
                    .map(|s| format!("`{s}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            IncompatibilityKind::FixedSizeChanged {
                writer: w,
                reader: r,
            } => format!("fixed size changed: {writer} has {w} bytes, {reader} has {r}"),
            IncompatibilityKind::UnionBranchUnreadable { branch, reader: r } => {
                format!("{writer} may write {branch} here, and {reader} ({r}) cannot read it")
            }
            IncompatibilityKind::NoUnionBranch {
                writer: w,
                reader: r,
            } => format!("{writer} writes {w}, and {reader}'s {r} has no branch that reads it"),
            IncompatibilityKind::LogicalTypeChanged {
                writer: w,
                reader: r,
            } => format!(
                "logical type changed: {writer} has {w}, {reader} has {r}, so the same bytes \
                 would mean another value"
            ),
            IncompatibilityKind::UnknownType { name } => {
                format!("`{name}` is used but not defined")
            }
        }
    }
}

/// One reason two schemas are not compatible.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Incompatibility {
    /// Where: the record name and field names down to the problem, such as
    /// `OrderEvent.payload.status`; `[]` stands for array items and `{}` for map values.
    pub path: String,
    /// What is wrong, as data.
    pub kind: IncompatibilityKind,
    /// What changed, in words, naming the schemas.
    pub message: String,
    /// Who cannot read what.
    pub breaks: Breaks,
    /// The earlier schema this reason is about (its file, its registry version).
    pub against: String,
}

impl fmt::Display for Incompatibility {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let why = match self.breaks {
            Breaks::NewReaders => format!(
                "consumers using the new schema cannot read data written with {}",
                self.against
            ),
            Breaks::OldReaders => format!(
                "consumers still using {} cannot read data written with the new schema",
                self.against
            ),
        };
        write!(f, "{}: {} ({why})", self.path, self.message)
    }
}

/// Which readers an incompatibility breaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Breaks {
    /// Readers on the new schema cannot read data written with an earlier one (a backward
    /// incompatibility).
    NewReaders,
    /// Readers on an earlier schema cannot read data written with the new one (a forward
    /// incompatibility).
    OldReaders,
}

/// The verdict of a local compatibility check, with every reason found.
///
/// ```
/// use flowodm::registry::CompatibilityLevel;
/// use flowodm::schema::{check_compatibility, AvroSchema};
///
/// let v1 = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[
///     {"name":"id","type":"string"}]}"#).unwrap();
/// let v2 = AvroSchema::parse(r#"{"type":"record","name":"Order","fields":[
///     {"name":"id","type":"string"},{"name":"total","type":"double"}]}"#).unwrap();
///
/// let report = check_compatibility(&v2, &[v1], CompatibilityLevel::Backward);
/// assert!(!report.is_compatible());
/// let reason = &report.incompatibilities[0];
/// assert_eq!(reason.path, "Order.total");
/// assert!(reason.message.contains("without a default"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CompatibilityReport {
    /// The level checked.
    pub level: CompatibilityLevel,
    /// The earlier schemas the new one was compared with, named as in the reasons.
    pub checked: Vec<String>,
    /// Every reason the new schema breaks the level; empty when it is compatible.
    pub incompatibilities: Vec<Incompatibility>,
}

impl CompatibilityReport {
    /// Whether the new schema meets the level.
    pub fn is_compatible(&self) -> bool {
        self.incompatibilities.is_empty()
    }
}

impl fmt::Display for CompatibilityReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_compatible() {
            write!(f, "compatible ({}", self.level)?;
        } else {
            write!(f, "NOT compatible ({}", self.level)?;
        }
        if self.checked.is_empty() {
            f.write_str("; no earlier schema to compare with)")?;
        } else {
            write!(f, "; compared with {})", self.checked.join(", "))?;
        }
        for i in &self.incompatibilities {
            write!(f, "\n  - {i}")?;
        }
        Ok(())
    }
}

/// Checks `new` against the earlier schemas `previous` (oldest first) at `level`, by the Avro
/// schema resolution rules.
///
/// Reasons name each earlier schema by its [`Origin`] (a file, `subject v3`); schemas parsed
/// from text are "the previous schema", or "earlier schema #n" (counting from 1, oldest first)
/// when several are checked.
///
/// Backward levels check that `new` can read what the earlier schemas wrote; forward levels that
/// the earlier schemas can read what `new` writes; full levels both. Plain levels compare with
/// the last of `previous` only, `_TRANSITIVE` levels with all of them; `NONE` with none. With no
/// earlier schema, everything is compatible.
pub fn check_compatibility(
    new: &AvroSchema,
    previous: &[AvroSchema],
    level: CompatibilityLevel,
) -> CompatibilityReport {
    use CompatibilityLevel as L;
    let scope: &[AvroSchema] = match level {
        L::None => &[],
        L::Backward | L::Forward | L::Full => match previous.split_last() {
            Some((last, _)) => std::slice::from_ref(last),
            None => &[],
        },
        L::BackwardTransitive | L::ForwardTransitive | L::FullTransitive => previous,
    };
    let backward = matches!(
        level,
        L::Backward | L::BackwardTransitive | L::Full | L::FullTransitive
    );
    let forward = matches!(
        level,
        L::Forward | L::ForwardTransitive | L::Full | L::FullTransitive
    );
    let mut report = CompatibilityReport {
        level,
        checked: Vec::new(),
        incompatibilities: Vec::new(),
    };
    for (i, old) in scope.iter().enumerate().rev() {
        let label = match old.origin() {
            Origin::Text if scope.len() == 1 => "the previous schema".to_string(),
            Origin::Text => format!("earlier schema #{}", i + 1),
            o => o.to_string(),
        };
        report.checked.push(label.clone());
        if backward {
            for issue in resolve(old, new) {
                report.incompatibilities.push(Incompatibility {
                    message: issue.kind.describe("the new schema", &label),
                    path: issue.path,
                    kind: issue.kind,
                    breaks: Breaks::NewReaders,
                    against: label.clone(),
                });
            }
        }
        if forward {
            for issue in resolve(new, old) {
                report.incompatibilities.push(Incompatibility {
                    message: issue.kind.describe(&label, "the new schema"),
                    path: issue.path,
                    kind: issue.kind,
                    breaks: Breaks::OldReaders,
                    against: label.clone(),
                });
            }
        }
    }
    report
}

/// Whether data written with `writer` can be read with `reader`: every reason it cannot.
///
/// ```
/// use flowodm::schema::{can_read, AvroSchema};
/// let int = AvroSchema::parse(r#""int""#).unwrap();
/// let long = AvroSchema::parse(r#""long""#).unwrap();
/// assert!(can_read(&int, &long).is_empty());
/// assert!(can_read(&long, &int)[0].contains("cannot be read as int"));
/// ```
pub fn can_read(writer: &AvroSchema, reader: &AvroSchema) -> Vec<String> {
    resolve(writer, reader)
        .into_iter()
        .map(|i| {
            format!(
                "{}: {}",
                i.path,
                i.kind.describe("the reader", "the writer")
            )
        })
        .collect()
}

pub(crate) struct Issue {
    pub path: String,
    pub kind: IncompatibilityKind,
}

/// Walks `writer` and `reader` together and lists what the reader cannot read.
pub(crate) fn resolve(writer: &AvroSchema, reader: &AvroSchema) -> Vec<Issue> {
    let mut r = Resolver {
        wn: writer.names(),
        rn: reader.names(),
        seen: HashSet::new(),
        out: Vec::new(),
    };
    let path = root_path(reader.root(), reader.names());
    r.check(writer.root(), reader.root(), &path);
    r.out
}

/// The path of the top-level type: its short name, or `<root>`.
pub(crate) fn root_path(s: &Schema, names: &Names) -> String {
    view(s, names)
        .and_then(|v| v.name().map(|n| n.name().to_string()))
        .unwrap_or_else(|| "<root>".into())
}

struct Resolver<'a> {
    wn: &'a Names,
    rn: &'a Names,
    /// Record pairs being checked further up (a recursive type meets itself again).
    seen: HashSet<(String, String)>,
    out: Vec<Issue>,
}

/// Whether a reader's named type accepts the writer's: the same unqualified name (as the
/// specification says), or a reader alias naming the writer's full name.
fn names_match(w: &View<'_>, r: &View<'_>) -> bool {
    match (w.name(), r.name()) {
        (Some(wn), Some(rn)) => wn.name() == rn.name() || r.aliases().contains(&wn.fullname(None)),
        _ => false,
    }
}

impl<'a> Resolver<'a> {
    fn push(&mut self, path: &str, kind: IncompatibilityKind) {
        self.out.push(Issue {
            path: path.to_string(),
            kind,
        });
    }

    fn unknown(&mut self, s: &Schema, path: &str) {
        let name = match s {
            Schema::Ref { name } => name.fullname(None),
            _ => "?".into(),
        };
        self.push(path, IncompatibilityKind::UnknownType { name });
    }

    /// The branch of the reader's union that a writer value of this shape lands in: the first
    /// that matches it exactly, else the first it can be promoted to.
    fn select_branch(&self, w: &View<'_>, branches: &'a [Schema]) -> Option<&'a Schema> {
        let exact = |r: &View<'_>| match (w.shape, r.shape) {
            (Shape::Prim(a), Shape::Prim(b)) => a == b,
            (Shape::Array(_), Shape::Array(_)) | (Shape::Map(_), Shape::Map(_)) => true,
            (Shape::Record(_), Shape::Record(_))
            | (Shape::Enum(_), Shape::Enum(_))
            | (Shape::Fixed(_), Shape::Fixed(_)) => names_match(w, r),
            _ => false,
        };
        let promotable = |r: &View<'_>| match (w.shape, r.shape) {
            (Shape::Prim(a), Shape::Prim(b)) => a.promotes_to(b),
            _ => false,
        };
        let views: Vec<(&'a Schema, Option<View<'a>>)> =
            branches.iter().map(|b| (b, view(b, self.rn))).collect();
        views
            .iter()
            .find(|(_, v)| v.as_ref().is_some_and(exact))
            .or_else(|| {
                views
                    .iter()
                    .find(|(_, v)| v.as_ref().is_some_and(promotable))
            })
            .map(|(b, _)| *b)
    }

    /// Whether a writer value of shape `w` could be read as `r` at all (the top-level test of
    /// resolution, before looking inside).
    fn shallow_match(&self, w: &View<'_>, r: &View<'_>) -> bool {
        match (w.shape, r.shape) {
            (Shape::Prim(a), Shape::Prim(b)) => a == b || a.promotes_to(b),
            (Shape::Array(_), Shape::Array(_)) | (Shape::Map(_), Shape::Map(_)) => true,
            (Shape::Record(_), Shape::Record(_))
            | (Shape::Enum(_), Shape::Enum(_))
            | (Shape::Fixed(_), Shape::Fixed(_)) => names_match(w, r),
            (_, Shape::Union(branches)) => self.select_branch(w, branches).is_some(),
            _ => false,
        }
    }

    fn check(&mut self, ws: &'a Schema, rs: &'a Schema, path: &str) {
        let Some(w) = view(ws, self.wn) else {
            return self.unknown(ws, path);
        };
        let Some(r) = view(rs, self.rn) else {
            return self.unknown(rs, path);
        };
        match (w.shape, r.shape) {
            (Shape::Union(wb), _) => {
                for branch in wb {
                    let Some(bv) = view(branch, self.wn) else {
                        self.unknown(branch, path);
                        continue;
                    };
                    if self.shallow_match(&bv, &r) {
                        self.check(branch, rs, path);
                    } else {
                        let kind = IncompatibilityKind::UnionBranchUnreadable {
                            branch: describe(branch, self.wn),
                            reader: describe(rs, self.rn),
                        };
                        self.push(path, kind);
                    }
                }
                return;
            }
            (_, Shape::Union(rb)) => {
                match self.select_branch(&w, rb) {
                    Some(chosen) => self.check(ws, chosen, path),
                    None => {
                        let kind = IncompatibilityKind::NoUnionBranch {
                            writer: describe(ws, self.wn),
                            reader: describe(rs, self.rn),
                        };
                        self.push(path, kind);
                    }
                }
                return;
            }
            (Shape::Prim(a), Shape::Prim(b)) if a == b || a.promotes_to(b) => {}
            (Shape::Array(wi), Shape::Array(ri)) => {
                self.check(wi, ri, &format!("{path}[]"));
            }
            (Shape::Map(wv), Shape::Map(rv)) => {
                self.check(wv, rv, &format!("{path}{{}}"));
            }
            (Shape::Record(wr), Shape::Record(rr)) => {
                if !names_match(&w, &r) {
                    return self.renamed(&w, &r, path);
                }
                let key = (wr.name.fullname(None), rr.name.fullname(None));
                if !self.seen.insert(key.clone()) {
                    return;
                }
                for rf in &rr.fields {
                    let field_path = format!("{path}.{}", rf.name);
                    let found = std::iter::once(&rf.name)
                        .chain(rf.aliases.iter())
                        .find_map(|n| wr.fields.iter().find(|wf| &wf.name == n));
                    match found {
                        Some(wf) => self.check(&wf.schema, &rf.schema, &field_path),
                        None if rf.default.is_none() => self.push(
                            &field_path,
                            IncompatibilityKind::FieldWithoutDefault {
                                field: rf.name.clone(),
                            },
                        ),
                        None => {}
                    }
                }
                self.seen.remove(&key);
            }
            (Shape::Enum(we), Shape::Enum(re)) => {
                if !names_match(&w, &r) {
                    return self.renamed(&w, &r, path);
                }
                let missing: Vec<String> = we
                    .symbols
                    .iter()
                    .filter(|s| !re.symbols.contains(s))
                    .cloned()
                    .collect();
                if !missing.is_empty() && re.default.is_none() {
                    self.push(
                        path,
                        IncompatibilityKind::EnumSymbolsMissing { symbols: missing },
                    );
                }
            }
            (Shape::Fixed(wf), Shape::Fixed(rf)) => {
                if !names_match(&w, &r) {
                    return self.renamed(&w, &r, path);
                }
                if wf.size != rf.size {
                    return self.push(
                        path,
                        IncompatibilityKind::FixedSizeChanged {
                            writer: wf.size,
                            reader: rf.size,
                        },
                    );
                }
            }
            _ => {
                return self.push(
                    path,
                    IncompatibilityKind::TypeChanged {
                        writer: describe(ws, self.wn),
                        reader: describe(rs, self.rn),
                    },
                )
            }
        }
        if let (Some(wl), Some(rl)) = (w.logical(), r.logical()) {
            if wl != rl {
                self.push(
                    path,
                    IncompatibilityKind::LogicalTypeChanged {
                        writer: wl.to_string(),
                        reader: rl.to_string(),
                    },
                );
            }
        }
    }

    fn renamed(&mut self, w: &View<'_>, r: &View<'_>, path: &str) {
        let full = |v: &View<'_>| v.name().map(|n| n.fullname(None)).unwrap_or_default();
        self.push(
            path,
            IncompatibilityKind::NameChanged {
                writer: full(w),
                reader: full(r),
            },
        );
    }
}
