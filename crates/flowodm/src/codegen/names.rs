//! Rust identifiers for Avro names, and the `rename_all` rules of the derive.

use heck::{ToLowerCamelCase, ToShoutySnakeCase, ToSnakeCase, ToUpperCamelCase};

/// Words that are keywords in some Rust edition; most can be written raw (`r#type`).
const KEYWORDS: &[&str] = &[
    "abstract", "as", "async", "await", "become", "box", "break", "const", "continue", "crate",
    "do", "dyn", "else", "enum", "extern", "false", "final", "fn", "for", "gen", "if", "impl",
    "in", "let", "loop", "macro", "match", "mod", "move", "mut", "override", "priv", "pub", "ref",
    "return", "self", "Self", "static", "struct", "super", "trait", "true", "try", "type",
    "typeof", "unsafe", "unsized", "use", "virtual", "where", "while", "yield",
];

/// Keywords that cannot be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super", "_"];

/// Type names the generated code uses itself, so a generated type must not take them.
pub(super) const RESERVED_TYPES: &[&str] = &[
    "Avro",
    "Box",
    "Clone",
    "Copy",
    "DateTime",
    "Debug",
    "Decimal",
    "Default",
    "Eq",
    "Err",
    "HashMap",
    "Hash",
    "Model",
    "NaiveDate",
    "NaiveDateTime",
    "NaiveTime",
    "None",
    "Ok",
    "Option",
    "PartialEq",
    "Result",
    "Self",
    "Some",
    "String",
    "Utc",
    "Uuid",
    "Vec",
];

/// A field identifier: snake_case, keywords raw (`r#type`) or, where Rust forbids that,
/// suffixed with `_`. Returns the identifier as written and its raw text (what the derive reads).
pub(super) fn field_ident(avro: &str) -> (String, String) {
    let mut snake = avro.to_snake_case();
    if snake.is_empty() {
        snake = "field".into();
    }
    escape(snake)
}

/// A type or variant identifier: UpperCamelCase, never a keyword.
pub(super) fn type_ident(avro: &str) -> String {
    let camel = avro.to_upper_camel_case();
    match camel.as_str() {
        "" => "Unnamed".into(),
        "Self" => "SelfValue".into(),
        _ => camel,
    }
}

/// Whether `field_ident` had to change the snake_case form of `avro` (beyond `r#`).
pub(super) fn suffixed(avro: &str, raw: &str) -> bool {
    avro.to_snake_case() != raw
}

fn escape(ident: String) -> (String, String) {
    if NOT_RAW.contains(&ident.as_str()) {
        let raw = format!("{ident}_");
        return (raw.clone(), raw);
    }
    if KEYWORDS.contains(&ident.as_str()) {
        return (format!("r#{ident}"), ident);
    }
    (ident.clone(), ident)
}

/// A `rename_all` rule of the derive, applied to an identifier's raw text exactly as the derive
/// applies it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Rule {
    Camel,
    Pascal,
    ScreamingSnake,
    Snake,
    Lower,
    Upper,
}

impl Rule {
    pub(super) const ALL: [Rule; 6] = [
        Rule::Camel,
        Rule::Pascal,
        Rule::ScreamingSnake,
        Rule::Snake,
        Rule::Lower,
        Rule::Upper,
    ];

    pub(super) fn apply(self, ident: &str) -> String {
        match self {
            Rule::Lower => ident.to_lowercase(),
            Rule::Upper => ident.to_uppercase(),
            Rule::Pascal => ident.to_upper_camel_case(),
            Rule::Camel => ident.to_lower_camel_case(),
            Rule::Snake => ident.to_snake_case(),
            Rule::ScreamingSnake => ident.to_shouty_snake_case(),
        }
    }

    pub(super) fn as_str(self) -> &'static str {
        match self {
            Rule::Lower => "lowercase",
            Rule::Upper => "UPPERCASE",
            Rule::Pascal => "PascalCase",
            Rule::Camel => "camelCase",
            Rule::Snake => "snake_case",
            Rule::ScreamingSnake => "SCREAMING_SNAKE_CASE",
        }
    }
}

/// The `rename_all` rule worth writing, if any: the one that leaves the fewest names needing
/// their own `rename`, when it covers at least half of the names and beats no rule at all.
/// `names` pairs each identifier's raw text with the Avro name it must get.
pub(super) fn best_rule(names: &[(String, String)]) -> Option<Rule> {
    let misses = |rule: Option<Rule>| {
        names
            .iter()
            .filter(|(raw, avro)| match rule {
                Some(r) => r.apply(raw) != *avro,
                None => raw != avro,
            })
            .count()
    };
    let none = misses(None);
    let (rule, m) = Rule::ALL
        .into_iter()
        .map(|r| (r, misses(Some(r))))
        .min_by_key(|(_, m)| *m)?;
    (m < none && m * 2 <= names.len()).then_some(rule)
}

/// Whether clippy's `enum_variant_names` would fire on these variants: a variant that starts or
/// ends with the enum's name, or (from three variants on) a first or last word all share.
pub(super) fn shared_word(enum_name: &str, variants: &[&str]) -> bool {
    let words = |s: &str| -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for c in s.chars() {
            match out.last_mut() {
                Some(w) if !c.is_uppercase() => w.push(c),
                _ => out.push(c.to_string()),
            }
        }
        out
    };
    if variants
        .iter()
        .any(|v| v.len() > enum_name.len() && (v.starts_with(enum_name) || v.ends_with(enum_name)))
    {
        return true;
    }
    if variants.len() < 3 {
        return false;
    }
    let split: Vec<Vec<String>> = variants.iter().map(|v| words(v)).collect();
    let all_share = |pick: &dyn Fn(&Vec<String>) -> Option<&String>| {
        let first = pick(&split[0]);
        first.is_some() && split.iter().all(|w| w.len() > 1 && pick(w) == first)
    };
    all_share(&|w| w.first()) || all_share(&|w| w.last())
}

/// Picks a name not yet in `taken`: `first`, then the `others` in turn, then numbered.
pub(super) fn unique(
    taken: &mut std::collections::HashSet<String>,
    first: String,
    others: &[String],
) -> String {
    let mut candidates = std::iter::once(first.clone()).chain(others.iter().cloned());
    let chosen = candidates.find(|c| !taken.contains(c)).unwrap_or_else(|| {
        (2..)
            .map(|i| format!("{first}{i}"))
            .find(|c| !taken.contains(c))
            .expect("some number is free")
    });
    taken.insert(chosen.clone());
    chosen
}
