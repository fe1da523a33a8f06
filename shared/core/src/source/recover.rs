//! Setting aside what failed to deserialize, so that the next pass gets further and one
//! load reports as many problems as it can.

use serde_json::{Map, Value};

use super::failure::{Failure, FailureKind};
use crate::validate::{FieldPath, Segment};

/// Sets aside what failed so that deserialization can go on: removes the field, or fills a
/// required one with a placeholder. Returns the paths set aside (`None` if nothing could
/// be done) and the path removed, if one was.
pub(super) fn set_aside(
    value: &mut Value,
    failure: &Failure,
) -> (Option<Vec<FieldPath>>, Option<Vec<Segment>>) {
    if let FailureKind::MissingField(field) = &failure.kind
        && let Some(paths) = fill_required(value, &failure.path, field)
    {
        return (Some(paths), None);
    }

    let target = match &failure.kind {
        FailureKind::UnknownField => failure.path.clone(),
        _ => failure.path[..failure.removable].to_vec(),
    };
    match target.as_slice() {
        [] => (None, None),
        [Segment::Key(tasks), Segment::Key(task)] if tasks == "tasks" => {
            (Some(set_task_placeholder(value, task)), None)
        }
        _ if remove_at(value, &target) => (Some(vec![FieldPath(target.clone())]), Some(target)),
        _ => (None, None),
    }
}

/// Fills a missing required field with a placeholder, for the fields that have one:
/// `name` and `tasks` of the workflow, and `run` of a task.
fn fill_required(value: &mut Value, path: &[Segment], field: &str) -> Option<Vec<FieldPath>> {
    let placeholder = match (path, field) {
        ([], "name") => Value::String(String::new()),
        ([], "tasks") => Value::Object(Map::new()),
        ([Segment::Key(tasks), Segment::Key(_)], "run") if tasks == "tasks" => {
            serde_json::json!({"pass": {}})
        }
        _ => return None,
    };

    let object = find_value(value, path)?.as_object_mut()?;
    object.insert(field.to_owned(), placeholder);
    let mut filled = path.to_vec();
    filled.push(Segment::Key(field.to_owned()));
    Some(vec![FieldPath(filled)])
}

/// The JSON value at `path`, if the whole path resolves.
fn find_value<'a>(value: &'a mut Value, path: &[Segment]) -> Option<&'a mut Value> {
    path.iter().try_fold(value, |v, segment| match segment {
        Segment::Key(k) => v.get_mut(k.as_str()),
        Segment::Index(i) => v.get_mut(*i),
    })
}

/// Replaces a broken task by a pass task with the same dependencies, if those are readable,
/// so that references to it and cycles through it are still checked. Returns the fields
/// set aside.
fn set_task_placeholder(value: &mut Value, task: &str) -> Vec<FieldPath> {
    let Some(slot) = value.get_mut("tasks").and_then(|tasks| tasks.get_mut(task)) else {
        return Vec::new();
    };
    let depends_on = slot.get("depends_on").filter(|deps| {
        deps.as_array()
            .is_some_and(|items| items.iter().all(Value::is_string))
    });
    let mut placeholder = Map::new();
    if let Some(depends_on) = depends_on {
        placeholder.insert("depends_on".to_owned(), depends_on.clone());
    }

    let field = |name: &str| {
        FieldPath(vec![
            Segment::Key("tasks".into()),
            Segment::Key(task.into()),
            Segment::Key(name.into()),
        ])
    };
    let mut pruned = vec![field("run")];
    if depends_on.is_none() {
        pruned.push(field("depends_on"));
    }
    if let Some(object) = slot.as_object() {
        let kept = |k: &&String| !placeholder.contains_key(k.as_str());
        pruned.extend(object.keys().filter(kept).map(|k| field(k)));
    }

    placeholder.insert("run".to_owned(), serde_json::json!({"pass": {}}));
    *slot = Value::Object(placeholder);
    pruned
}

/// Removes the map entry at `path`; false if there is none.
fn remove_at(value: &mut Value, path: &[Segment]) -> bool {
    let Some((Segment::Key(key), parent)) = path.split_last() else {
        return false;
    };
    find_value(value, parent)
        .and_then(Value::as_object_mut)
        .is_some_and(|object| object.shift_remove(key.as_str()).is_some())
}
