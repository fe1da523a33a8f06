//! The run input of a matched event, and the run key of an event.
//!
//! An event trigger's `input` is a JSON template: every text value of the form
//! `$.field.field...` (the path syntax of `for_each`) becomes the event's value at that
//! path, or `null` where the event has none; everything else is taken as written. Without
//! `input`, the whole event is the run input.

use serde_json::Value;

use super::{EventError, SpecError};
use crate::validate::FieldPath;

/// Every text value that starts with `$.` but is not a well-formed path, as problems at
/// their place in the template.
pub fn check_input(template: &Value) -> Vec<SpecError> {
    let mut problems = Vec::new();
    check(template, FieldPath::default(), &mut problems);
    problems
}

fn check(value: &Value, at: FieldPath, problems: &mut Vec<SpecError>) {
    match value {
        Value::String(text) if text.starts_with("$.") && path(text).is_none() => {
            let message = format!(
                "input value {} is not a path into the event: a path is $.<field>(.<field>)*, \
                 each field of letters, digits, '_' and '-'",
                super::pattern::show(value)
            );
            problems.push(SpecError::new(at, message));
        }
        Value::Array(items) => {
            for (index, item) in items.iter().enumerate() {
                check(item, at.clone().index(index), problems);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                check(item, at.clone().key(key), problems);
            }
        }
        _ => {}
    }
}

/// The run input for `event`: the template with its paths replaced, or the whole event
/// without one. A malformed path (refused by [`check_input`]) stays as written.
pub fn map_input(template: Option<&Value>, event: &Value) -> Value {
    match template {
        Some(template) => fill(template, event),
        None => event.clone(),
    }
}

fn fill(template: &Value, event: &Value) -> Value {
    match template {
        Value::String(text) => match path(text) {
            Some(fields) => lookup(event, &fields),
            None => template.clone(),
        },
        Value::Array(items) => Value::Array(items.iter().map(|item| fill(item, event)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (key.clone(), fill(item, event)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// The value at `fields`, through objects only; `null` where there is none.
fn lookup(event: &Value, fields: &[&str]) -> Value {
    fields
        .iter()
        .try_fold(event, |value, field| value.get(*field))
        .cloned()
        .unwrap_or(Value::Null)
}

/// `$.a.b` as its fields; `None` unless well formed.
fn path(text: &str) -> Option<Vec<&str>> {
    let fields: Vec<&str> = text.strip_prefix("$.")?.split('.').collect();
    let well_formed = |field: &&str| {
        !field.is_empty()
            && field
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    fields.iter().all(well_formed).then_some(fields)
}

/// The run key of an event: `event:<id>`, so that a redelivered event starts one run.
pub fn run_key(event: &Value) -> Result<String, EventError> {
    match event.get("id").and_then(Value::as_str) {
        Some(id) if !id.is_empty() => Ok(format!("event:{id}")),
        _ => Err(EventError::NoId),
    }
}
