//! Event triggers: EventBridge event patterns, the run input built from a matched event,
//! and the run key of an event.
//!
//! A pattern is compiled once into a [quamina](https://crates.io/crates/quamina) automaton
//! (version 0.6), beside tests this module runs itself where quamina falls short.
//!
//! Run by quamina:
//! - exact values: text, numbers, `true`, `false`, `null` (`"state": ["running", 5]`);
//! - `{"prefix": "us-"}`, `{"suffix": ".png"}`, `{"equals-ignore-case": "alice"}`,
//!   `{"wildcard": "*/lib/*"}` (`\*` a star, `\\` a backslash);
//! - `{"anything-but": "x"}`, `{"anything-but": 5}`, `{"anything-but": ["a", "b"]}`
//!   (texts or numbers);
//! - `{"exists": true}`.
//!
//! Run by aloft, because quamina 0.6 lacks them or gets them wrong:
//! - `{"prefix": {"equals-ignore-case": "EU-"}}` and the same for `suffix` (lacking);
//! - `{"anything-but": {"prefix": "us-"}}`, `{"anything-but": {"suffix": ".png"}}`,
//!   `{"anything-but": {"equals-ignore-case": "x" or ["x", "y"]}}`,
//!   `{"anything-but": {"wildcard": "*/lib/*" or [...]}}` (lacking);
//! - `{"exists": false}` (quamina misses it beside another `exists: false`, or listed with
//!   other values);
//! - `{"numeric": [">", 0, "<=", 5]}` (quamina takes `>` for `>=` in a two-sided range);
//! - `{"cidr": "10.0.0.0/24"}`, `{"cidr": "2001:db8::/32"}` (quamina matches IPv6 only
//!   when the event writes all eight groups, `2001:db8:0:0:0:0:0:1`);
//! - `"$or": [{...}, {...}]` (lacking): the pattern is expanded into alternatives, each
//!   compiled into quamina, at most [`MAX_ALTERNATIVES`] of them. A field that lists
//!   operators of both kinds is split the same way.
//!
//! Semantics, as EventBridge's: every field of the pattern must match, and a field
//! matches when any of its listed tests holds for any of the event's values at that path;
//! an array in the event stands for each of its elements, at any depth. Tests apply to
//! leaf values only: an object is not a value. `exists: false` holds when the field has no
//! value (missing, an empty array, or an object). `numeric` holds for JSON numbers only,
//! never for text such as `"5"`; exact numbers compare by value (`300` matches `3.0e2`).
//! Text operators hold for text values only, while `anything-but` holds for any value that
//! is not one it refuses (a number is not refused by `{"anything-but": {"prefix": "1"}}`).
//! Ignoring case compares Unicode lowercase forms.
//!
//! Refused, as EventBridge refuses them: a pattern that is not an object or is empty, a
//! field whose value is neither a list nor an object, an empty list or object, an
//! operator object with other than one key, an unknown operator, a malformed argument,
//! and `$or` with fewer than two alternatives.
//!
//! Known inconsistency: fields inside the objects of one event array are matched within
//! the same element when quamina checks them together, but the tests aloft runs itself,
//! and fields that `$or` puts into separate quamina patterns, are matched each on its
//! own, possibly in different elements. Ending it takes those operators inside quamina.
//!
//! quamina 0.6 also mishandles field names holding `.` or a line feed; they are escaped on
//! both sides before they reach it, so any field name works.

mod document;
mod input;
mod own;
mod pattern;

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;

use quamina::Quamina;
use serde_json::{Map, Value};

use crate::definition::EventTrigger;
use crate::validate::FieldPath;
use own::{Own, values_at};
use pattern::{Field, Node};

pub use document::read_document;
pub use input::{check_input, map_input, run_key};

/// Most alternatives a pattern may expand to (`$or`s multiply, and so does a field that
/// mixes quamina's operators with aloft's own).
pub const MAX_ALTERNATIVES: usize = 256;

/// A problem of an event pattern or input template, at its place inside it.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SpecError {
    /// Where in the pattern or template, from its root.
    pub path: FieldPath,
    /// What is wrong, naming the offending value.
    pub message: String,
}

impl SpecError {
    pub(crate) fn new(path: FieldPath, message: String) -> Self {
        SpecError { path, message }
    }
}

/// Why an event cannot be matched or keyed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EventError {
    /// Events are JSON objects.
    #[error("an event is a JSON object, not {0}")]
    NotAnObject(String),
    /// The event has no `id` to key its run by.
    #[error(
        "the event has no text field `id`: EventBridge gives every event one, and a run \
         started by an event is keyed by it (event:<id>) so that a redelivered event starts \
         one run"
    )]
    NoId,
    /// A stored trigger's pattern does not compile.
    #[error("event trigger {index} has an invalid pattern: {error}")]
    InvalidTrigger {
        /// Its index in `events`.
        index: usize,
        /// What is wrong with it.
        error: SpecError,
    },
    /// quamina refused the event.
    #[error("the event could not be matched: {0}")]
    Matcher(String),
}

/// A compiled EventBridge event pattern.
pub struct EventPattern {
    matcher: Quamina<u32>,
    alternatives: Vec<Alternative>,
}

impl fmt::Debug for EventPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventPattern")
            .field("patterns", &self.matcher.pattern_count())
            .field("alternatives", &self.alternatives)
            .finish()
    }
}

/// One way for the pattern to match: each of its quamina patterns matched the event, and
/// each of its own checks holds.
#[derive(Debug)]
struct Alternative {
    parts: Vec<u32>,
    checks: Vec<Check>,
}

/// A field checked by this module: one of its tests holds.
#[derive(Debug)]
struct Check {
    path: Vec<String>,
    tests: Vec<Own>,
}

impl Check {
    fn holds(&self, event: &Value) -> bool {
        let mut values = Vec::new();
        values_at(event, &self.path, &mut values);
        self.tests.iter().any(|test| test.holds(&values))
    }
}

/// How one field is checked within an alternative.
#[derive(Clone, Copy, Debug)]
enum Atom<'a> {
    /// Its quamina tests.
    Native(&'a Field),
    /// Its own tests.
    Own(&'a Field),
}

impl EventPattern {
    /// Checks and compiles a pattern; the error names the offending value and its place.
    pub fn compile(pattern: &Value) -> Result<Self, SpecError> {
        let nodes = pattern::parse(pattern)?;
        let alternatives = expand(&nodes).ok_or_else(|| {
            let message = format!(
                "the pattern expands to more than {MAX_ALTERNATIVES} alternatives (each `$or` \
                 multiplies them, and so does a field that mixes exact values with numeric, \
                 cidr, exists: false or an ignore-case prefix or suffix); split it into \
                 several triggers"
            );
            SpecError::new(FieldPath::default(), message)
        })?;
        let mut compiled = EventPattern {
            matcher: Quamina::new(),
            alternatives: Vec::with_capacity(alternatives.len()),
        };
        let mut ids = HashMap::new();
        for atoms in &alternatives {
            let alternative = compiled.alternative(atoms, &mut ids)?;
            compiled.alternatives.push(alternative);
        }
        Ok(compiled)
    }

    /// Whether the event matches.
    pub fn matches(&self, event: &Value) -> Result<bool, EventError> {
        if !event.is_object() {
            return Err(EventError::NotAnObject(pattern::show(event)));
        }
        let hits: HashSet<u32> = if self.matcher.is_empty() {
            HashSet::new()
        } else {
            let bytes = serde_json::to_vec(&escape_keys(event))
                .map_err(|e| EventError::Matcher(e.to_string()))?;
            let hits = self.matcher.matches_for_event(&bytes);
            hits.map_err(|e| EventError::Matcher(e.to_string()))?
                .into_iter()
                .collect()
        };
        Ok(self.alternatives.iter().any(|alternative| {
            alternative.parts.iter().all(|part| hits.contains(part))
                && alternative.checks.iter().all(|check| check.holds(event))
        }))
    }

    /// Compiles one alternative: its quamina fields into as few quamina patterns as hold
    /// them (two tests of one path, from `$or`, go into different ones), its own fields
    /// into checks. Patterns shared by alternatives are added once.
    fn alternative(
        &mut self,
        atoms: &[Atom<'_>],
        ids: &mut HashMap<String, u32>,
    ) -> Result<Alternative, SpecError> {
        let mut groups: Vec<Vec<&Field>> = Vec::new();
        let mut checks = Vec::new();
        for atom in atoms {
            match atom {
                Atom::Native(field) => {
                    let free = |group: &&mut Vec<&Field>| {
                        group
                            .iter()
                            .all(|other| !overlaps(&other.path, &field.path))
                    };
                    match groups.iter_mut().find(free) {
                        Some(group) => group.push(field),
                        None => groups.push(vec![field]),
                    }
                }
                Atom::Own(field) => checks.push(Check {
                    path: field.path.clone(),
                    tests: field.own.clone(),
                }),
            }
        }
        let mut parts = Vec::with_capacity(groups.len());
        for group in groups {
            let text = quamina_pattern(&group).to_string();
            let next = u32::try_from(ids.len()).unwrap_or(u32::MAX);
            let id = match ids.get(&text) {
                Some(id) => *id,
                None => {
                    self.matcher.add_pattern(next, &text).map_err(|e| {
                        let message = format!("quamina refused the pattern: {e}");
                        SpecError::new(FieldPath::default(), message)
                    })?;
                    ids.insert(text, next);
                    next
                }
            };
            parts.push(id);
        }
        Ok(Alternative { parts, checks })
    }
}

/// The pattern as alternatives, each a list of atoms that must all hold; `None` past
/// [`MAX_ALTERNATIVES`].
fn expand(nodes: &[Node]) -> Option<Vec<Vec<Atom<'_>>>> {
    let mut alternatives: Vec<Vec<Atom<'_>>> = vec![Vec::new()];
    for node in nodes {
        let options: Vec<Vec<Atom<'_>>> = match node {
            Node::Field(field) => match (field.native.is_empty(), field.own.is_empty()) {
                (false, false) => vec![vec![Atom::Native(field)], vec![Atom::Own(field)]],
                (true, _) => vec![vec![Atom::Own(field)]],
                (false, true) => vec![vec![Atom::Native(field)]],
            },
            Node::Or(branches) => {
                let mut options = Vec::new();
                for branch in branches {
                    options.extend(expand(branch)?);
                }
                options
            }
        };
        if alternatives.len().saturating_mul(options.len()) > MAX_ALTERNATIVES {
            return None;
        }
        alternatives = alternatives
            .iter()
            .flat_map(|so_far| {
                options.iter().map(move |option| {
                    let mut next = so_far.clone();
                    next.extend(option.iter().copied());
                    next
                })
            })
            .collect();
    }
    Some(alternatives)
}

fn overlaps(a: &[String], b: &[String]) -> bool {
    a.starts_with(b) || b.starts_with(a)
}

/// The quamina pattern of fields whose paths do not overlap.
fn quamina_pattern(fields: &[&Field]) -> Value {
    let mut root = Map::new();
    for field in fields {
        insert(&mut root, &field.path, Value::Array(field.native.clone()));
    }
    Value::Object(root)
}

fn insert(map: &mut Map<String, Value>, path: &[String], tests: Value) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let key = escape_key(first).into_owned();
    if rest.is_empty() {
        map.insert(key, tests);
    } else if let Value::Object(child) = map.entry(key).or_insert_with(|| Value::Object(Map::new()))
    {
        insert(child, rest, tests);
    }
}

/// quamina 0.6 splits field names at `.` and line feeds; both are escaped, and `%`, the
/// escape character, too, so that distinct names stay distinct.
fn escape_key(key: &str) -> Cow<'_, str> {
    if !key.contains(['%', '.', '\n']) {
        return Cow::Borrowed(key);
    }
    let mut escaped = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        match c {
            '%' => escaped.push_str("%25"),
            '.' => escaped.push_str("%2E"),
            '\n' => escaped.push_str("%0A"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

/// The event with its field names escaped as [`escape_key`] does, copied only if needed.
fn escape_keys(event: &Value) -> Cow<'_, Value> {
    fn needs(value: &Value) -> bool {
        match value {
            Value::Object(map) => map
                .iter()
                .any(|(key, value)| matches!(escape_key(key), Cow::Owned(_)) || needs(value)),
            Value::Array(items) => items.iter().any(needs),
            _ => false,
        }
    }
    fn copy(value: &Value) -> Value {
        match value {
            Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (escape_key(key).into_owned(), copy(value)))
                    .collect(),
            ),
            Value::Array(items) => Value::Array(items.iter().map(copy).collect()),
            other => other.clone(),
        }
    }
    if needs(event) {
        Cow::Owned(copy(event))
    } else {
        Cow::Borrowed(event)
    }
}

/// The first of `triggers` whose pattern matches the event, with its index.
pub fn first_match<'a>(
    triggers: &'a [EventTrigger],
    event: &Value,
) -> Result<Option<(usize, &'a EventTrigger)>, EventError> {
    for (index, trigger) in triggers.iter().enumerate() {
        let pattern = EventPattern::compile(&trigger.pattern)
            .map_err(|error| EventError::InvalidTrigger { index, error })?;
        if pattern.matches(event)? {
            return Ok(Some((index, trigger)));
        }
    }
    Ok(None)
}
