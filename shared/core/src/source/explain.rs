//! Serde's messages reworded in the file's terms rather than Rust's.

use super::failure::FailureKind;
use super::tree::{Kind, Node};
use crate::validate::Segment;

/// Rewords serde's message in the file's terms rather than Rust's.
pub(super) fn explain(
    raw: &str,
    kind: &FailureKind,
    path: &[Segment],
    node: Option<&Node>,
) -> String {
    let is_map = node.is_some_and(|n| matches!(n.kind, Kind::Map(_)));
    let at_run = matches!(path, [.., Segment::Key(run)] if run == "run");
    let run_shape = raw.contains("map with a single key")
        || raw.contains("expected enum RunSpec")
        || raw.contains("expected string or map")
        || raw.contains("unit variant");
    if at_run && run_shape {
        return "`run` must be a map with exactly one key: `command`, `lambda` or `pass`"
            .to_owned();
    }

    match kind {
        FailureKind::UnknownField => unknown_name(raw, "field"),
        FailureKind::UnknownVariant if is_map => unknown_name(raw, "key"),
        FailureKind::UnknownVariant => unknown_name(raw, "value"),
        _ => plain_types(raw),
    }
}

/// "unknown field `x`", with the closest expected name when one is close enough.
fn unknown_name(raw: &str, what: &str) -> String {
    let mut quoted = raw.split('`').skip(1).step_by(2);
    let name = quoted.next().unwrap_or_default();
    let closest = quoted
        .map(|candidate| (edit_distance(name, candidate), candidate))
        .filter(|(distance, candidate)| *distance <= 2 && *distance < candidate.len())
        .min_by_key(|(distance, _)| *distance);
    match closest {
        Some((_, candidate)) => format!("unknown {what} `{name}`, did you mean `{candidate}`?"),
        None => {
            let rest = raw.split_once(", ").map_or("", |(_, rest)| rest);
            format!("unknown {what} `{name}`, {rest}")
                .trim_end_matches(", ")
                .to_owned()
        }
    }
}

/// Levenshtein distance, by characters.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

/// Names types as a workflow author knows them: maps and numbers, not structs and `u32`.
fn plain_types(raw: &str) -> String {
    let message = match raw.find(", expected struct ") {
        Some(at) => format!("{}, expected a map", &raw[..at]),
        None => raw.to_owned(),
    };
    message
        .replace(
            "expected u32",
            "expected a whole number from 0 to 4294967295",
        )
        .replace("expected f64", "expected a number")
        .replace("floating point", "number")
}
