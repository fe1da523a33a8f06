//! Reading an event pattern as written into fields and their tests, refusing whatever
//! EventBridge would refuse, each problem at its place in the pattern.

use serde_json::{Map, Value};

use super::SpecError;
use super::own::{Cidr, Own, Range, TextTest, Wildcard};
use crate::validate::FieldPath;

/// The operators a pattern may use, for messages.
const OPERATORS: &str = "prefix, suffix, equals-ignore-case, wildcard, anything-but, numeric, \
                         exists, cidr";

/// One field of the event and what its values must satisfy: one of the tests, by any of
/// the field's values.
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Field {
    /// Field names from the event's root.
    pub path: Vec<String>,
    /// Tests quamina runs, as written in the pattern.
    pub native: Vec<Value>,
    /// Tests this module runs.
    pub own: Vec<Own>,
}

/// A part of a pattern: a field, or a `$or` of alternative sub-patterns.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Node {
    /// A field to test.
    Field(Field),
    /// Any one of these conjunctions.
    Or(Vec<Vec<Node>>),
}

/// The pattern's fields and `$or`s, all of which must hold.
pub(super) fn parse(pattern: &Value) -> Result<Vec<Node>, SpecError> {
    let Value::Object(map) = pattern else {
        return Err(SpecError::new(
            FieldPath::default(),
            format!(
                "an event pattern is an object of fields, not {}",
                show(pattern)
            ),
        ));
    };
    if map.is_empty() {
        return Err(SpecError::new(
            FieldPath::default(),
            "an event pattern needs at least one field: EventBridge refuses an empty pattern"
                .into(),
        ));
    }
    let mut nodes = Vec::new();
    object(map, &FieldPath::default(), &[], &mut nodes)?;
    Ok(nodes)
}

/// The entries of one pattern object; `at` is its place in the pattern, `fields` the event
/// path it stands for.
fn object(
    map: &Map<String, Value>,
    at: &FieldPath,
    fields: &[String],
    nodes: &mut Vec<Node>,
) -> Result<(), SpecError> {
    for (key, value) in map {
        let at = at.clone().key(key);
        if key == "$or" {
            nodes.push(Node::Or(or(value, &at, fields)?));
            continue;
        }
        let mut path = fields.to_vec();
        path.push(key.clone());
        match value {
            Value::Array(items) => nodes.push(Node::Field(field(items, &at, path)?)),
            Value::Object(nested) if nested.is_empty() => {
                let message = format!(
                    "field `{}` is an empty object: name the nested fields to match",
                    dotted(&path)
                );
                return Err(SpecError::new(at, message));
            }
            Value::Object(nested) => object(nested, &at, &path, nodes)?,
            other => {
                let message = format!(
                    "field `{}` must be a list of values to match, or an object of nested \
                     fields, not {}: write [{}]",
                    dotted(&path),
                    show(other),
                    other
                );
                return Err(SpecError::new(at, message));
            }
        }
    }
    Ok(())
}

/// `"$or": [pattern, pattern, ...]`, at least two, each a non-empty object.
fn or(value: &Value, at: &FieldPath, fields: &[String]) -> Result<Vec<Vec<Node>>, SpecError> {
    let items = match value {
        Value::Array(items) if items.len() >= 2 => items,
        other => {
            let message = format!(
                "`$or` takes a list of at least two patterns, such as [{{\"a\": [1]}}, \
                 {{\"b\": [2]}}], not {}",
                show(other)
            );
            return Err(SpecError::new(at.clone(), message));
        }
    };
    let mut alternatives = Vec::with_capacity(items.len());
    for (index, item) in items.iter().enumerate() {
        let at = at.clone().index(index);
        match item {
            Value::Object(map) if !map.is_empty() => {
                let mut nodes = Vec::new();
                object(map, &at, fields, &mut nodes)?;
                alternatives.push(nodes);
            }
            other => {
                let message = format!(
                    "each alternative of `$or` is a non-empty pattern object, not {}",
                    show(other)
                );
                return Err(SpecError::new(at, message));
            }
        }
    }
    Ok(alternatives)
}

/// A field's list of values and operators, at least one.
fn field(items: &[Value], at: &FieldPath, path: Vec<String>) -> Result<Field, SpecError> {
    if items.is_empty() {
        let message = format!(
            "field `{}` has an empty list: it could never match; list at least one value",
            dotted(&path)
        );
        return Err(SpecError::new(at.clone(), message));
    }
    let mut field = Field {
        path,
        native: Vec::new(),
        own: Vec::new(),
    };
    for (index, item) in items.iter().enumerate() {
        let at = at.clone().index(index);
        match item {
            Value::Object(map) => operator(map, &at, &mut field)?,
            Value::Array(_) => {
                let message = format!(
                    "a value to match in `{}` is text, a number, true, false, null or an \
                     {{operator: ...}} object, not the list {item}",
                    dotted(&field.path)
                );
                return Err(SpecError::new(at, message));
            }
            exact => field.native.push(exact.clone()),
        }
    }
    Ok(field)
}

/// One `{operator: argument}` object.
fn operator(map: &Map<String, Value>, at: &FieldPath, field: &mut Field) -> Result<(), SpecError> {
    let mut entries = map.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        let keys: Vec<&str> = map.keys().map(String::as_str).collect();
        let message = format!(
            "an operator object in `{}` has exactly one key, such as {{\"prefix\": \"us-\"}}; \
             found {} ({})",
            dotted(&field.path),
            keys.len(),
            keys.join(", ")
        );
        return Err(SpecError::new(at.clone(), message));
    };
    let at = at.clone().key(name);
    let bad = |expected: &str| {
        SpecError::new(
            at.clone(),
            format!(
                "{name} in `{}` takes {expected}, not {}",
                dotted(&field.path),
                show(argument)
            ),
        )
    };
    match (name.as_str(), argument) {
        ("exists", Value::Bool(true)) => field.native.push(single(name, argument)),
        ("exists", Value::Bool(false)) => field.own.push(Own::Absent),
        ("exists", _) => return Err(bad("true or false")),
        ("prefix" | "suffix", Value::String(_)) => field.native.push(single(name, argument)),
        ("prefix" | "suffix", Value::Object(inner)) => {
            let text = ignore_case_text(inner)
                .ok_or_else(|| bad("text, or {\"equals-ignore-case\": text} to ignore case"))?;
            let test = if name == "prefix" {
                TextTest::PrefixFold(text)
            } else {
                TextTest::SuffixFold(text)
            };
            field.own.push(Own::Text(test.folded()));
        }
        ("prefix" | "suffix", _) => {
            return Err(bad(
                "text, or {\"equals-ignore-case\": text} to ignore case",
            ));
        }
        ("equals-ignore-case", Value::String(_)) => field.native.push(single(name, argument)),
        ("equals-ignore-case", _) => return Err(bad("text")),
        ("wildcard", Value::String(text)) => {
            Wildcard::parse(text).map_err(|reason| wildcard_error(&at, field, text, &reason))?;
            field.native.push(single(name, argument));
        }
        ("wildcard", _) => return Err(bad("text")),
        ("anything-but", _) => anything_but(argument, &at, field)?,
        ("numeric", Value::Array(items)) => {
            let range = Range::parse(items).map_err(|reason| {
                let message = format!(
                    "numeric {} in `{}` is not a comparison: {reason}",
                    show(argument),
                    dotted(&field.path)
                );
                SpecError::new(at.clone(), message)
            })?;
            field.own.push(Own::Numeric(range));
        }
        ("numeric", _) => return Err(bad("a list such as [\">\", 0, \"<=\", 5]")),
        ("cidr", Value::String(text)) => {
            let cidr = Cidr::parse(text).map_err(|reason| {
                let message = format!(
                    "cidr {} in `{}` is not an address block: {reason}",
                    show(argument),
                    dotted(&field.path)
                );
                SpecError::new(at.clone(), message)
            })?;
            field.own.push(Own::Cidr(cidr));
        }
        ("cidr", _) => return Err(bad("text such as \"10.0.0.0/24\" or \"2001:db8::/32\"")),
        _ => {
            let message = format!(
                "unknown operator `{name}` in `{}`: the operators are {OPERATORS}",
                dotted(&field.path)
            );
            return Err(SpecError::new(at, message));
        }
    }
    Ok(())
}

/// `anything-but`: a value, a list of texts or of numbers, or one of `prefix`, `suffix`,
/// `equals-ignore-case` and `wildcard`.
fn anything_but(argument: &Value, at: &FieldPath, field: &mut Field) -> Result<(), SpecError> {
    let place = dotted(&field.path);
    let error = |at: FieldPath, detail: String| {
        let message = format!("anything-but in `{place}` {detail}");
        Err(SpecError::new(at, message))
    };
    match argument {
        Value::String(_) | Value::Number(_) => field.native.push(single("anything-but", argument)),
        Value::Array(items) if items.is_empty() => {
            return error(
                at.clone(),
                "has an empty list: list the values to refuse".into(),
            );
        }
        Value::Array(items) => {
            let texts = items.iter().all(Value::is_string);
            let numbers = items.iter().all(Value::is_number);
            if !texts && !numbers {
                let detail = format!(
                    "takes a list of texts or a list of numbers, not {}",
                    show(argument)
                );
                return error(at.clone(), detail);
            }
            field.native.push(single("anything-but", argument));
        }
        Value::Object(map) => {
            let test = negated(map, at, &place)?;
            field.own.push(Own::NotText(test.folded()));
        }
        other => {
            let detail = format!(
                "takes text, a number, a list of either, or one of {{\"prefix\": ...}}, \
                 {{\"suffix\": ...}}, {{\"equals-ignore-case\": ...}}, {{\"wildcard\": ...}}; \
                 not {}",
                show(other)
            );
            return error(at.clone(), detail);
        }
    }
    Ok(())
}

/// The test inside `{"anything-but": {operator: argument}}`.
fn negated(map: &Map<String, Value>, at: &FieldPath, place: &str) -> Result<TextTest, SpecError> {
    let mut entries = map.iter();
    let (Some((name, argument)), None) = (entries.next(), entries.next()) else {
        let message = format!(
            "anything-but in `{place}` takes an object of exactly one operator (prefix, suffix, \
             equals-ignore-case or wildcard); found {} keys",
            map.len()
        );
        return Err(SpecError::new(at.clone(), message));
    };
    let at = at.clone().key(name);
    let texts = || -> Option<Vec<String>> {
        match argument {
            Value::String(text) => Some(vec![text.clone()]),
            Value::Array(items) if !items.is_empty() => items
                .iter()
                .map(|item| item.as_str().map(str::to_owned))
                .collect(),
            _ => None,
        }
    };
    let bad = |expected: &str| {
        let message = format!(
            "anything-but {name} in `{place}` takes {expected}, not {}",
            show(argument)
        );
        SpecError::new(at.clone(), message)
    };
    match (name.as_str(), argument) {
        ("prefix", Value::String(text)) => Ok(TextTest::Prefix(text.clone())),
        ("suffix", Value::String(text)) => Ok(TextTest::Suffix(text.clone())),
        ("prefix" | "suffix", _) => Err(bad("text")),
        ("equals-ignore-case", _) => texts()
            .map(TextTest::FoldAny)
            .ok_or_else(|| bad("text or a non-empty list of texts")),
        ("wildcard", _) => {
            let patterns = texts().ok_or_else(|| bad("text or a non-empty list of texts"))?;
            let parsed: Result<Vec<Wildcard>, SpecError> = patterns
                .iter()
                .map(|text| {
                    Wildcard::parse(text).map_err(|reason| {
                        let message = format!(
                            "wildcard {} in `{place}` is invalid: {reason}",
                            show_text(text)
                        );
                        SpecError::new(at.clone(), message)
                    })
                })
                .collect();
            Ok(TextTest::WildcardAny(parsed?))
        }
        _ => {
            let message = format!(
                "anything-but in `{place}` cannot hold `{name}`: it takes prefix, suffix, \
                 equals-ignore-case or wildcard"
            );
            Err(SpecError::new(at, message))
        }
    }
}

/// The text of `{"equals-ignore-case": text}`.
fn ignore_case_text(inner: &Map<String, Value>) -> Option<String> {
    match (inner.len(), inner.get("equals-ignore-case")) {
        (1, Some(Value::String(text))) => Some(text.clone()),
        _ => None,
    }
}

fn wildcard_error(at: &FieldPath, field: &Field, text: &str, reason: &str) -> SpecError {
    let message = format!(
        "wildcard {} in `{}` is invalid: {reason}",
        show_text(text),
        dotted(&field.path)
    );
    SpecError::new(at.clone(), message)
}

/// `{name: argument}` as quamina reads it.
fn single(name: &str, argument: &Value) -> Value {
    let mut map = Map::new();
    map.insert(name.to_owned(), argument.clone());
    Value::Object(map)
}

/// An event path for messages: `detail.amount`.
pub(super) fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Most characters of a value quoted in a message.
const SHOWN: usize = 80;

/// A value from the pattern or event for a message: compact JSON, shortened.
pub(super) fn show(value: &Value) -> String {
    let text = value.to_string();
    if text.chars().count() <= SHOWN {
        return text;
    }
    let short: String = text.chars().take(SHOWN).collect();
    format!("{short}...")
}

fn show_text(text: &str) -> String {
    show(&Value::String(text.to_owned()))
}
