//! What a serde failure is about: the path it takes through the tree, its kind, and the
//! position it is best shown at.

use super::explain::explain;
use super::located::Pos;
use super::tree::{Kind, Node};
use crate::validate::{Segment, Target};

/// Where a serde failure points, as a path through the tree.
#[derive(Debug)]
pub(super) struct Failure {
    pub(super) path: Vec<Segment>,
    /// Length of the longest prefix of `path` that ends at a map entry which may be
    /// removed; the key of an enum's variant may not.
    pub(super) removable: usize,
    pub(super) kind: FailureKind,
    pub(super) message: String,
}

/// The failures that the loader treats apart from the rest.
#[derive(Debug, PartialEq)]
pub(super) enum FailureKind {
    UnknownField,
    UnknownVariant,
    MissingField(String),
    Other,
}

/// Turns a serde failure into a path through the tree and a message for people.
pub(super) fn failure_of(
    root: &Node,
    err: &serde_path_to_error::Error<serde_json::Error>,
) -> Failure {
    let mut node = Some(root);
    let mut path = Vec::new();
    let mut removable = 0;
    for segment in err.path() {
        match segment {
            serde_path_to_error::Segment::Seq { index } => {
                node = node.and_then(|n| n.child(&Segment::Index(*index)).map(|(_, c)| c));
                path.push(Segment::Index(*index));
            }
            serde_path_to_error::Segment::Map { key } => {
                let segment = Segment::Key(key.clone());
                node = node.and_then(|n| n.child(&segment).map(|(_, c)| c));
                path.push(segment);
                removable = path.len();
            }
            serde_path_to_error::Segment::Enum { variant } => {
                let segment = Segment::Key(variant.clone());
                if let Some((_, inner)) = node.and_then(|n| n.child(&segment)) {
                    node = Some(inner);
                    path.push(segment);
                }
            }
            serde_path_to_error::Segment::Unknown => break,
        }
    }

    let raw = err.inner().to_string();
    let kind = classify(&raw);
    let message = explain(&raw, &kind, &path, node);
    Failure {
        path,
        removable,
        kind,
        message,
    }
}

/// Sorts serde's message by the start of its text, the only place the kind shows.
fn classify(message: &str) -> FailureKind {
    let quoted = || message.split('`').nth(1).unwrap_or_default().to_owned();
    if message.starts_with("unknown field `") {
        FailureKind::UnknownField
    } else if message.starts_with("unknown variant `") {
        FailureKind::UnknownVariant
    } else if message.starts_with("missing field `") {
        FailureKind::MissingField(quoted())
    } else {
        FailureKind::Other
    }
}

impl Failure {
    /// Where to report the failure: at the key for a field's name, at the value otherwise.
    pub(super) fn pos(&self, root: &Node) -> Pos {
        let target = match self.kind {
            FailureKind::UnknownField | FailureKind::MissingField(_) => Target::Key,
            FailureKind::UnknownVariant | FailureKind::Other => Target::Value,
        };
        let pos = root.locate(&self.path, target);
        if self.kind != FailureKind::UnknownVariant {
            return pos;
        }

        // An unknown variant written as a one-key map is best shown at that key.
        match root.find(&self.path).map(|n| &n.kind) {
            Some(Kind::Map(entries)) => entries.values().next().map_or(pos, |e| e.key_pos),
            _ => pos,
        }
    }
}
