//! From the tree to a [`Definition`]: serde with error recovery, then validation, with
//! every problem placed back on the tree.

use std::collections::HashSet;

use super::failure::{Failure, FailureKind, failure_of};
use super::located::Located;
use super::recover::set_aside;
use super::tree::{Kind, Node};
use crate::definition::Definition;
use crate::validate::{self, FieldPath, Segment};

/// Most type and field errors reported before giving up on a file.
const MAX_DESERIALIZE_ERRORS: usize = 100;

/// Deserializes the tree, then validates; `None` if no definition came out at all.
pub(super) fn load_tree(root: &Node, problems: &mut Vec<Located>) -> Option<Definition> {
    if !matches!(root.kind, Kind::Map(_)) {
        let message = format!(
            "a workflow is a map with `name` and `tasks`, not {}",
            root.describe()
        );
        problems.push(Located::new(root.pos, message));
        return None;
    }

    let (definition, pruned) = deserialize(root, problems);
    let definition = definition?;
    report_validation(root, &definition, &pruned, problems);
    Some(definition)
}

/// Adds the validation problems, but for those about fields in `pruned`.
fn report_validation(
    root: &Node,
    definition: &Definition,
    pruned: &[FieldPath],
    problems: &mut Vec<Located>,
) {
    for problem in validate::validate(definition) {
        // A problem about a value set aside, or resting on one, would only echo an error
        // already reported.
        let overlaps = |read: &FieldPath, p: &FieldPath| read.starts_with(p) || p.starts_with(read);
        let echo = pruned.iter().any(|p| {
            problem.path.starts_with(p) || problem.reads.iter().any(|read| overlaps(read, p))
        });
        if !echo {
            let pos = root.locate(&problem.path.0, problem.target);
            problems.push(Located::new(pos, problem.message));
        }
    }
}

/// Deserializes, setting aside each failing field and retrying, so one pass reports
/// several problems. Returns the definition and the paths that were set aside.
fn deserialize(root: &Node, problems: &mut Vec<Located>) -> (Option<Definition>, Vec<FieldPath>) {
    let mut invalid = Vec::new();
    let mut value = root.to_value(&mut Vec::new(), &mut invalid);
    let mut pruned: Vec<FieldPath> = invalid.iter().cloned().map(FieldPath).collect();
    let mut removed: HashSet<Vec<Segment>> = invalid.iter().cloned().collect();
    for _ in 0..MAX_DESERIALIZE_ERRORS {
        let err = match serde_path_to_error::deserialize::<_, Definition>(&value) {
            Ok(definition) => return (Some(definition), pruned),
            Err(err) => err,
        };
        let failure = failure_of(root, &err);
        let reported = invalid.iter().any(|path| failure.path.starts_with(path));
        if !reported && !caused_by_removal(&failure, &removed) {
            problems.push(Located::new(failure.pos(root), failure.message.clone()));
        }

        let (aside, removal) = set_aside(&mut value, &failure);
        removed.extend(removal);
        match aside {
            Some(paths) => pruned.extend(paths),
            None => return (None, pruned),
        }
    }
    (None, pruned)
}

/// True for a "missing field" that only exists because this loader removed that field.
fn caused_by_removal(failure: &Failure, removed: &HashSet<Vec<Segment>>) -> bool {
    let FailureKind::MissingField(field) = &failure.kind else {
        return false;
    };
    let mut path = failure.path.clone();
    path.push(Segment::Key(field.clone()));
    removed.contains(&path)
}
