//! A schema node seen as what the checks compare: its physical shape (references followed) and
//! its logical type.

use std::fmt;

use apache_avro::schema::{
    EnumSchema, FixedSchema, InnerDecimalSchema, Name, RecordSchema, UuidSchema,
};
use apache_avro::Schema;

use super::load::Names;

/// A primitive type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Prim {
    Null,
    Boolean,
    Int,
    Long,
    Float,
    Double,
    Bytes,
    String,
}

impl Prim {
    /// The primitive type named `s`, if it is one.
    pub(crate) fn parse(s: &str) -> Option<Prim> {
        Some(match s {
            "null" => Prim::Null,
            "boolean" => Prim::Boolean,
            "int" => Prim::Int,
            "long" => Prim::Long,
            "float" => Prim::Float,
            "double" => Prim::Double,
            "bytes" => Prim::Bytes,
            "string" => Prim::String,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            Prim::Null => "null",
            Prim::Boolean => "boolean",
            Prim::Int => "int",
            Prim::Long => "long",
            Prim::Float => "float",
            Prim::Double => "double",
            Prim::Bytes => "bytes",
            Prim::String => "string",
        }
    }

    /// Whether a value written as `self` may be read as `reader` by promotion (not identity).
    pub(crate) fn promotes_to(self, reader: Prim) -> bool {
        use Prim::*;
        matches!(
            (self, reader),
            (Int, Long | Float | Double)
                | (Long, Float | Double)
                | (Float, Double)
                | (String, Bytes)
                | (Bytes, String)
        )
    }
}

/// The physical shape of a schema node.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Shape<'a> {
    Prim(Prim),
    Array(&'a Schema),
    Map(&'a Schema),
    Union(&'a [Schema]),
    Record(&'a RecordSchema),
    Enum(&'a EnumSchema),
    Fixed(&'a FixedSchema),
}

/// A logical type annotation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Logical {
    Decimal { precision: usize, scale: usize },
    BigDecimal,
    Uuid,
    Date,
    TimeMillis,
    TimeMicros,
    TimestampMillis,
    TimestampMicros,
    TimestampNanos,
    LocalTimestampMillis,
    LocalTimestampMicros,
    LocalTimestampNanos,
    Duration,
}

impl fmt::Display for Logical {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Logical::Decimal { precision, scale } => {
                return write!(f, "decimal({precision},{scale})")
            }
            Logical::BigDecimal => "big-decimal",
            Logical::Uuid => "uuid",
            Logical::Date => "date",
            Logical::TimeMillis => "time-millis",
            Logical::TimeMicros => "time-micros",
            Logical::TimestampMillis => "timestamp-millis",
            Logical::TimestampMicros => "timestamp-micros",
            Logical::TimestampNanos => "timestamp-nanos",
            Logical::LocalTimestampMillis => "local-timestamp-millis",
            Logical::LocalTimestampMicros => "local-timestamp-micros",
            Logical::LocalTimestampNanos => "local-timestamp-nanos",
            Logical::Duration => "duration",
        };
        f.write_str(s)
    }
}

/// A schema node with references followed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct View<'a> {
    pub shape: Shape<'a>,
    pub logical: Option<&'static str>,
    pub decimal: Option<(usize, usize)>,
}

impl View<'_> {
    pub(crate) fn logical(&self) -> Option<Logical> {
        let l = match self.logical? {
            "decimal" => {
                let (precision, scale) = self.decimal.unwrap_or((0, 0));
                Logical::Decimal { precision, scale }
            }
            "big-decimal" => Logical::BigDecimal,
            "uuid" => Logical::Uuid,
            "date" => Logical::Date,
            "time-millis" => Logical::TimeMillis,
            "time-micros" => Logical::TimeMicros,
            "timestamp-millis" => Logical::TimestampMillis,
            "timestamp-micros" => Logical::TimestampMicros,
            "timestamp-nanos" => Logical::TimestampNanos,
            "local-timestamp-millis" => Logical::LocalTimestampMillis,
            "local-timestamp-micros" => Logical::LocalTimestampMicros,
            "local-timestamp-nanos" => Logical::LocalTimestampNanos,
            _ => Logical::Duration,
        };
        Some(l)
    }

    /// The named type's name, if any.
    pub(crate) fn name(&self) -> Option<&Name> {
        match self.shape {
            Shape::Record(r) => Some(&r.name),
            Shape::Enum(e) => Some(&e.name),
            Shape::Fixed(f) => Some(&f.name),
            _ => None,
        }
    }

    /// The named type's aliases as full names.
    pub(crate) fn aliases(&self) -> Vec<String> {
        let (name, aliases) = match self.shape {
            Shape::Record(r) => (&r.name, &r.aliases),
            Shape::Enum(e) => (&e.name, &e.aliases),
            Shape::Fixed(f) => (&f.name, &f.aliases),
            _ => return Vec::new(),
        };
        aliases
            .iter()
            .flatten()
            .map(|a| a.fullname(name.namespace()))
            .collect()
    }

    /// The kind of node, without details: `record`, `int`, `union`...
    pub(crate) fn kind(&self) -> &'static str {
        match self.shape {
            Shape::Prim(p) => p.name(),
            Shape::Array(_) => "array",
            Shape::Map(_) => "map",
            Shape::Union(_) => "union",
            Shape::Record(_) => "record",
            Shape::Enum(_) => "enum",
            Shape::Fixed(_) => "fixed",
        }
    }
}

/// Follows references and reduces logical types to their physical type plus an annotation.
/// `None` for a reference to an unknown name.
pub(crate) fn view<'a>(s: &'a Schema, names: &'a Names) -> Option<View<'a>> {
    let plain = |shape| View {
        shape,
        logical: None,
        decimal: None,
    };
    let logical = |shape, l| View {
        shape,
        logical: Some(l),
        decimal: None,
    };
    Some(match s {
        Schema::Null => plain(Shape::Prim(Prim::Null)),
        Schema::Boolean => plain(Shape::Prim(Prim::Boolean)),
        Schema::Int => plain(Shape::Prim(Prim::Int)),
        Schema::Long => plain(Shape::Prim(Prim::Long)),
        Schema::Float => plain(Shape::Prim(Prim::Float)),
        Schema::Double => plain(Shape::Prim(Prim::Double)),
        Schema::Bytes => plain(Shape::Prim(Prim::Bytes)),
        Schema::String => plain(Shape::Prim(Prim::String)),
        Schema::Array(a) => plain(Shape::Array(&a.items)),
        Schema::Map(m) => plain(Shape::Map(&m.types)),
        Schema::Union(u) => plain(Shape::Union(u.variants())),
        Schema::Record(r) => plain(Shape::Record(r)),
        Schema::Enum(e) => plain(Shape::Enum(e)),
        Schema::Fixed(f) => plain(Shape::Fixed(f)),
        Schema::Decimal(d) => View {
            shape: match &d.inner {
                InnerDecimalSchema::Bytes => Shape::Prim(Prim::Bytes),
                InnerDecimalSchema::Fixed(f) => Shape::Fixed(f),
            },
            logical: Some("decimal"),
            decimal: Some((d.precision, d.scale)),
        },
        Schema::BigDecimal => logical(Shape::Prim(Prim::Bytes), "big-decimal"),
        Schema::Uuid(UuidSchema::String) => logical(Shape::Prim(Prim::String), "uuid"),
        Schema::Uuid(UuidSchema::Bytes) => logical(Shape::Prim(Prim::Bytes), "uuid"),
        Schema::Uuid(UuidSchema::Fixed(f)) => logical(Shape::Fixed(f), "uuid"),
        Schema::Date => logical(Shape::Prim(Prim::Int), "date"),
        Schema::TimeMillis => logical(Shape::Prim(Prim::Int), "time-millis"),
        Schema::TimeMicros => logical(Shape::Prim(Prim::Long), "time-micros"),
        Schema::TimestampMillis => logical(Shape::Prim(Prim::Long), "timestamp-millis"),
        Schema::TimestampMicros => logical(Shape::Prim(Prim::Long), "timestamp-micros"),
        Schema::TimestampNanos => logical(Shape::Prim(Prim::Long), "timestamp-nanos"),
        Schema::LocalTimestampMillis => logical(Shape::Prim(Prim::Long), "local-timestamp-millis"),
        Schema::LocalTimestampMicros => logical(Shape::Prim(Prim::Long), "local-timestamp-micros"),
        Schema::LocalTimestampNanos => logical(Shape::Prim(Prim::Long), "local-timestamp-nanos"),
        Schema::Duration(f) => logical(Shape::Fixed(f), "duration"),
        Schema::Ref { name } => return view(names.get(&name.fullname(None))?, names),
    })
}

/// A short description of a node for messages: `int`, `long (timestamp-millis)`,
/// `record shop.Order`, `array of string`, `union [null, string]`, `fixed Hash(16)`.
pub(crate) fn describe(s: &Schema, names: &Names) -> String {
    describe_depth(s, names, 0)
}

fn describe_depth(s: &Schema, names: &Names, depth: usize) -> String {
    let Some(v) = view(s, names) else {
        return match s {
            Schema::Ref { name } => format!("unknown type {}", name.fullname(None)),
            _ => "unknown type".into(),
        };
    };
    let inner = |x: &Schema| {
        if depth > 2 {
            "…".to_string()
        } else {
            describe_depth(x, names, depth + 1)
        }
    };
    let base = match v.shape {
        Shape::Prim(p) => p.name().to_string(),
        Shape::Array(items) => format!("array of {}", inner(items)),
        Shape::Map(values) => format!("map of {}", inner(values)),
        Shape::Union(branches) => format!(
            "union [{}]",
            branches.iter().map(inner).collect::<Vec<_>>().join(", ")
        ),
        Shape::Record(r) => format!("record {}", r.name.fullname(None)),
        Shape::Enum(e) => format!("enum {}", e.name.fullname(None)),
        Shape::Fixed(f) => format!("fixed {}({})", f.name.fullname(None), f.size),
    };
    match v.logical() {
        Some(l) => format!("{base} ({l})"),
        None => base,
    }
}
