//! The spanned tree: parsed values that keep the position of every node and map key, and
//! the walks that lead from a field path back to a position.

use indexmap::IndexMap;
use serde_json::{Map, Number, Value};

use super::located::Pos;
use crate::validate::{Segment, Target};

/// A parsed value with its position.
#[derive(Clone, Debug)]
pub(super) struct Node {
    pub(super) pos: Pos,
    pub(super) kind: Kind,
}

/// What a node holds.
#[derive(Clone, Debug)]
pub(super) enum Kind {
    Null,
    Bool(bool),
    Number(Number),
    Str(String),
    Seq(Vec<Node>),
    Map(IndexMap<String, Entry>),
    /// A scalar already reported as wrong; it is set aside before deserializing.
    Invalid,
}

/// A map value with the position of its key.
#[derive(Clone, Debug)]
pub(super) struct Entry {
    pub(super) key_pos: Pos,
    pub(super) value: Node,
}

impl Node {
    /// The JSON value of the tree. Invalid scalars are left out of maps and become null in
    /// sequences (so that indices stay true); their paths go to `invalid`.
    pub(super) fn to_value(
        &self,
        path: &mut Vec<Segment>,
        invalid: &mut Vec<Vec<Segment>>,
    ) -> Value {
        match &self.kind {
            Kind::Null => Value::Null,
            Kind::Invalid => {
                invalid.push(path.clone());
                Value::Null
            }
            Kind::Bool(b) => Value::Bool(*b),
            Kind::Number(n) => Value::Number(n.clone()),
            Kind::Str(s) => Value::String(s.clone()),
            Kind::Seq(items) => {
                let mut array = Vec::with_capacity(items.len());
                for (index, item) in items.iter().enumerate() {
                    path.push(Segment::Index(index));
                    array.push(item.to_value(path, invalid));
                    path.pop();
                }
                Value::Array(array)
            }
            Kind::Map(entries) => {
                let mut map = Map::new();
                for (key, entry) in entries {
                    path.push(Segment::Key(key.clone()));
                    let value = entry.value.to_value(path, invalid);
                    if !matches!(entry.value.kind, Kind::Invalid) {
                        map.insert(key.clone(), value);
                    }
                    path.pop();
                }
                Value::Object(map)
            }
        }
    }

    /// The node as a message names it: its value if a scalar, its shape otherwise.
    pub(super) fn describe(&self) -> String {
        match &self.kind {
            Kind::Null => "null".to_owned(),
            Kind::Bool(b) => b.to_string(),
            Kind::Number(n) => n.to_string(),
            Kind::Str(s) => format!("`{s}`"),
            Kind::Seq(_) => "a sequence".to_owned(),
            Kind::Map(_) => "a map".to_owned(),
            Kind::Invalid => "an invalid value".to_owned(),
        }
    }

    /// The child at `segment`, with the position of its key when it is a map entry.
    pub(super) fn child(&self, segment: &Segment) -> Option<(Option<Pos>, &Node)> {
        match (segment, &self.kind) {
            (Segment::Key(key), Kind::Map(entries)) => {
                entries.get(key).map(|e| (Some(e.key_pos), &e.value))
            }
            (Segment::Index(index), Kind::Seq(items)) => items.get(*index).map(|n| (None, n)),
            _ => None,
        }
    }

    /// The node at `path`, if the whole path resolves.
    pub(super) fn find(&self, path: &[Segment]) -> Option<&Node> {
        path.iter()
            .try_fold(self, |node, segment| node.child(segment).map(|(_, c)| c))
    }

    /// The position of `path`'s value or key; as deep as the path resolves.
    pub(super) fn locate(&self, path: &[Segment], target: Target) -> Pos {
        let mut node = self;
        let mut key_pos = None;
        for segment in path {
            match node.child(segment) {
                Some((key, next)) => {
                    key_pos = key;
                    node = next;
                }
                None => return node.pos,
            }
        }

        match target {
            Target::Key => key_pos.unwrap_or(node.pos),
            Target::Value => node.pos,
        }
    }
}
