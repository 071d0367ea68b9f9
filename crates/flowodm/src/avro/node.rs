//! A compact, index-based form of a parsed Avro schema, the input of schema resolution and of
//! skipping.
//!
//! Schemas are parsed and validated by `apache-avro`; this module flattens the result into a
//! vector of nodes where named types appear once and references (also recursive ones) are plain
//! indices. Logical types are reduced to the physical type that carries them, which is what the
//! binary encoding and schema resolution look at.

use std::collections::{BTreeMap, HashMap};

use apache_avro::schema::{InnerDecimalSchema, Name, UuidSchema};
use apache_avro::Schema;
use serde_json::Value as Json;

use crate::error::{Error, Result};

/// The index of a node in a [`SchemaTree`].
pub(crate) type NodeId = usize;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Node {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
    Array(NodeId),
    Map(NodeId),
    Union(Vec<NodeId>),
    Record(RecordNode),
    Enum(EnumNode),
    Fixed(FixedNode),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RecordNode {
    pub name: String,
    pub aliases: Vec<String>,
    pub fields: Vec<FieldNode>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FieldNode {
    pub name: String,
    pub aliases: Vec<String>,
    pub node: NodeId,
    pub default: Option<Json>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnumNode {
    pub name: String,
    pub aliases: Vec<String>,
    pub symbols: Vec<String>,
    pub default: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FixedNode {
    pub name: String,
    pub aliases: Vec<String>,
    pub size: usize,
}

impl Node {
    /// The full name of a named type.
    pub fn name(&self) -> Option<&str> {
        match self {
            Node::Record(r) => Some(&r.name),
            Node::Enum(e) => Some(&e.name),
            Node::Fixed(f) => Some(&f.name),
            _ => None,
        }
    }

    /// The aliases of a named type (full names).
    pub fn aliases(&self) -> &[String] {
        match self {
            Node::Record(r) => &r.aliases,
            Node::Enum(e) => &e.aliases,
            Node::Fixed(f) => &f.aliases,
            _ => &[],
        }
    }

    /// A short description for error messages.
    pub fn describe(&self) -> String {
        match self {
            Node::Null => "null".into(),
            Node::Boolean => "boolean".into(),
            Node::Int => "int".into(),
            Node::Long => "long".into(),
            Node::Float => "float".into(),
            Node::Double => "double".into(),
            Node::Bytes => "bytes".into(),
            Node::String => "string".into(),
            Node::Array(_) => "array".into(),
            Node::Map(_) => "map".into(),
            Node::Union(_) => "union".into(),
            Node::Record(r) => format!("record {}", r.name),
            Node::Enum(e) => format!("enum {}", e.name),
            Node::Fixed(f) => format!("fixed {}", f.name),
        }
    }
}

/// A parsed schema as a vector of nodes; `root` is the top-level type.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SchemaTree {
    pub nodes: Vec<Node>,
    pub root: NodeId,
}

impl SchemaTree {
    /// Parses and validates Avro schema JSON.
    pub fn parse(json: &str) -> Result<Self> {
        let schema = Schema::parse_str(json).map_err(|e| Error::Schema {
            message: e.to_string(),
        })?;
        Self::from_schema(&schema)
    }

    /// Parses Avro schema JSON that uses named types defined in `references` (the texts of
    /// the schemas it refers to, in any order).
    pub fn parse_with_references(json: &str, references: &[String]) -> Result<Self> {
        if references.is_empty() {
            return Self::parse(json);
        }
        let (schema, others) =
            Schema::parse_str_with_list(json, references).map_err(|e| Error::Schema {
                message: e.to_string(),
            })?;
        Self::build(&schema, &others)
    }

    /// Flattens an `apache-avro` schema.
    pub fn from_schema(schema: &Schema) -> Result<Self> {
        Self::build(schema, &[])
    }

    /// Flattens `schema`, whose references to named types may be defined in `others`: those
    /// types are added where they are first used, so `others` may come in any order.
    fn build(schema: &Schema, others: &[Schema]) -> Result<Self> {
        let mut b = Builder::default();
        for other in others {
            collect_names(other, &mut b.elsewhere);
        }
        let root = b.add(schema)?;
        if let Some(name) = b.unresolved.first() {
            return Err(Error::Schema {
                message: format!("the schema refers to `{name}`, which it does not define"),
            });
        }
        Ok(SchemaTree {
            nodes: b.nodes,
            root,
        })
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }
}

#[derive(Default)]
struct Builder {
    nodes: Vec<Node>,
    named: HashMap<String, NodeId>,
    /// References to names that were never defined (Avro needs a definition before use).
    unresolved: Vec<String>,
    /// Named types defined by other schemas (schema references), by full name.
    elsewhere: BTreeMap<String, Schema>,
}

/// Records every named type `schema` defines under its full name (the first definition of a
/// name wins).
pub(crate) fn collect_names(schema: &Schema, names: &mut BTreeMap<String, Schema>) {
    let mut add = |name: &Name| {
        names.entry(full(name)).or_insert_with(|| schema.clone());
    };
    match schema {
        Schema::Record(r) => {
            add(&r.name);
            for f in &r.fields {
                collect_names(&f.schema, names);
            }
        }
        Schema::Enum(e) => add(&e.name),
        Schema::Fixed(f) | Schema::Duration(f) | Schema::Uuid(UuidSchema::Fixed(f)) => add(&f.name),
        Schema::Decimal(d) => {
            if let InnerDecimalSchema::Fixed(f) = &d.inner {
                add(&f.name)
            }
        }
        Schema::Array(a) => collect_names(&a.items, names),
        Schema::Map(m) => collect_names(&m.types, names),
        Schema::Union(u) => u.variants().iter().for_each(|v| collect_names(v, names)),
        _ => {}
    }
}

fn full(name: &Name) -> String {
    name.fullname(None)
}

fn aliases(name: &Name, aliases: &Option<Vec<apache_avro::schema::Alias>>) -> Vec<String> {
    aliases
        .iter()
        .flatten()
        .map(|a| a.fullname(name.namespace()))
        .collect()
}

impl Builder {
    fn push(&mut self, node: Node) -> NodeId {
        self.nodes.push(node);
        self.nodes.len() - 1
    }

    fn add_fixed(&mut self, f: &apache_avro::schema::FixedSchema) -> NodeId {
        let name = full(&f.name);
        if let Some(&id) = self.named.get(&name) {
            return id;
        }
        let id = self.push(Node::Fixed(FixedNode {
            name: name.clone(),
            aliases: aliases(&f.name, &f.aliases),
            size: f.size,
        }));
        self.define(name, id);
        id
    }

    fn define(&mut self, name: String, id: NodeId) {
        self.named.insert(name, id);
    }

    fn add(&mut self, schema: &Schema) -> Result<NodeId> {
        Ok(match schema {
            Schema::Null => self.push(Node::Null),
            Schema::Boolean => self.push(Node::Boolean),
            Schema::Int | Schema::Date | Schema::TimeMillis => self.push(Node::Int),
            Schema::Long
            | Schema::TimeMicros
            | Schema::TimestampMillis
            | Schema::TimestampMicros
            | Schema::TimestampNanos
            | Schema::LocalTimestampMillis
            | Schema::LocalTimestampMicros
            | Schema::LocalTimestampNanos => self.push(Node::Long),
            Schema::Float => self.push(Node::Float),
            Schema::Double => self.push(Node::Double),
            Schema::Bytes | Schema::BigDecimal => self.push(Node::Bytes),
            Schema::String => self.push(Node::String),
            Schema::Uuid(UuidSchema::String) => self.push(Node::String),
            Schema::Uuid(UuidSchema::Bytes) => self.push(Node::Bytes),
            Schema::Uuid(UuidSchema::Fixed(f)) => self.add_fixed(f),
            Schema::Decimal(d) => match &d.inner {
                InnerDecimalSchema::Bytes => self.push(Node::Bytes),
                InnerDecimalSchema::Fixed(f) => self.add_fixed(f),
            },
            Schema::Duration(f) => self.add_fixed(f),
            Schema::Fixed(f) => self.add_fixed(f),
            Schema::Array(a) => {
                let id = self.push(Node::Null);
                let items = self.add(&a.items)?;
                self.nodes[id] = Node::Array(items);
                id
            }
            Schema::Map(m) => {
                let id = self.push(Node::Null);
                let values = self.add(&m.types)?;
                self.nodes[id] = Node::Map(values);
                id
            }
            Schema::Union(u) => {
                let id = self.push(Node::Null);
                let mut branches = Vec::with_capacity(u.variants().len());
                for v in u.variants() {
                    branches.push(self.add(v)?);
                }
                self.nodes[id] = Node::Union(branches);
                id
            }
            Schema::Enum(e) => {
                let name = full(&e.name);
                if let Some(&id) = self.named.get(&name) {
                    return Ok(id);
                }
                let id = self.push(Node::Enum(EnumNode {
                    name: name.clone(),
                    aliases: aliases(&e.name, &e.aliases),
                    symbols: e.symbols.clone(),
                    default: e.default.clone(),
                }));
                self.define(name, id);
                id
            }
            Schema::Record(r) => {
                let name = full(&r.name);
                if let Some(&id) = self.named.get(&name) {
                    return Ok(id);
                }
                // Define the name before the fields so recursive references find it.
                let id = self.push(Node::Record(RecordNode {
                    name: name.clone(),
                    aliases: aliases(&r.name, &r.aliases),
                    fields: Vec::new(),
                }));
                self.named.insert(name.clone(), id);
                let mut fields = Vec::with_capacity(r.fields.len());
                for f in &r.fields {
                    fields.push(FieldNode {
                        name: f.name.clone(),
                        aliases: f.aliases.clone(),
                        node: self.add(&f.schema)?,
                        default: f.default.clone(),
                    });
                }
                if let Node::Record(rec) = &mut self.nodes[id] {
                    rec.fields = fields;
                }
                id
            }
            Schema::Ref { name } => {
                let name = full(name);
                match self.named.get(&name) {
                    Some(&id) => id,
                    // Defined by a referenced schema: added here, at its first use.
                    None if self.elsewhere.contains_key(&name) => {
                        let definition = self.elsewhere.remove(&name).expect("checked");
                        self.add(&definition)?
                    }
                    None => {
                        self.unresolved.push(name);
                        self.push(Node::Null)
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recursive_records_refer_to_themselves() {
        let tree = SchemaTree::parse(
            r#"{"type":"record","name":"List","namespace":"t","fields":[
                {"name":"value","type":"long"},
                {"name":"next","type":["null","List"],"default":null}]}"#,
        )
        .unwrap();
        let Node::Record(list) = tree.node(tree.root) else {
            panic!()
        };
        assert_eq!(list.name, "t.List");
        let Node::Union(branches) = tree.node(list.fields[1].node) else {
            panic!()
        };
        assert_eq!(branches[1], tree.root);
        assert_eq!(list.fields[1].default, Some(Json::Null));
    }

    #[test]
    fn logical_types_reduce_to_their_physical_type() {
        let tree = SchemaTree::parse(
            r#"{"type":"record","name":"L","fields":[
                {"name":"ts","type":{"type":"long","logicalType":"timestamp-millis"}},
                {"name":"d","type":{"type":"int","logicalType":"date"}},
                {"name":"u","type":{"type":"string","logicalType":"uuid"}},
                {"name":"m","type":{"type":"bytes","logicalType":"decimal","precision":10,"scale":2}}]}"#,
        )
        .unwrap();
        let Node::Record(r) = tree.node(tree.root) else {
            panic!()
        };
        let kinds: Vec<&Node> = r.fields.iter().map(|f| tree.node(f.node)).collect();
        assert_eq!(
            kinds,
            [&Node::Long, &Node::Int, &Node::String, &Node::Bytes]
        );
    }

    #[test]
    fn referenced_named_types_are_found_in_any_order() {
        let country = r#"{"type":"record","name":"Country","namespace":"n",
            "fields":[{"name":"code","type":"string"}]}"#;
        let address = r#"{"type":"record","name":"Address","namespace":"n",
            "fields":[{"name":"country","type":"n.Country"}]}"#;
        let customer = r#"{"type":"record","name":"Customer","namespace":"n",
            "fields":[{"name":"home","type":"n.Address"},{"name":"born","type":"n.Country"}]}"#;
        for refs in [[address, country], [country, address]] {
            let refs: Vec<String> = refs.iter().map(|s| s.to_string()).collect();
            let tree = SchemaTree::parse_with_references(customer, &refs).unwrap();
            let Node::Record(root) = tree.node(tree.root) else {
                panic!("a record")
            };
            let home = tree.node(root.fields[0].node);
            let Node::Record(home) = home else {
                panic!("Address is a record: {home:?}")
            };
            // Country is one node, reached from both places.
            assert_eq!(home.fields[0].node, root.fields[1].node);
            assert!(
                matches!(tree.node(root.fields[1].node), Node::Record(r) if r.name == "n.Country")
            );
        }
        assert!(SchemaTree::parse(customer).is_err());
    }

    #[test]
    fn invalid_schemas_are_schema_errors() {
        let err = SchemaTree::parse(r#"{"type":"record","name":"X"}"#).unwrap_err();
        assert!(matches!(err, Error::Schema { .. }), "{err:?}");
        let err = SchemaTree::parse(r#"{"type":"nope"}"#).unwrap_err();
        assert!(matches!(err, Error::Schema { .. }), "{err:?}");
    }
}
