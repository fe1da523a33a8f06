//! Pictures of a workflow's DAG, for `aloft graph`.

use std::collections::{HashMap, HashSet};

use crate::definition::{Definition, RunSpec, Task, TriggerRule};

/// A Mermaid `flowchart TD`: one node per task in file order, labelled with its name and
/// kind, and one edge per dependency, upstream to downstream, labelled with the
/// downstream task's trigger rule unless that is the default `all_success`.
pub fn mermaid(definition: &Definition) -> String {
    let ids: HashMap<&str, usize> = definition
        .tasks
        .keys()
        .enumerate()
        .map(|(i, name)| (name.as_str(), i))
        .collect();
    let mut out = String::from("flowchart TD\n");
    for (i, (name, task)) in definition.tasks.iter().enumerate() {
        out.push_str(&format!("    t{i}[\"{}\"]\n", escape(&label(name, task))));
    }
    for (i, task) in definition.tasks.values().enumerate() {
        let arrow = match task.trigger_rule {
            TriggerRule::AllSuccess => "-->".to_owned(),
            rule => format!("-->|{}|", rule_name(rule)),
        };
        let mut seen = HashSet::new();
        for upstream in &task.depends_on {
            // Unknown and repeated entries are validation errors; the picture skips them.
            if let Some(&j) = ids.get(upstream.as_str()).filter(|j| seen.insert(**j)) {
                out.push_str(&format!("    t{j} {arrow} t{i}\n"));
            }
        }
    }
    out
}

fn label(name: &str, task: &Task) -> String {
    let kind = match task.run {
        RunSpec::Command(_) => "command",
        RunSpec::Lambda(_) => "lambda",
        RunSpec::Pass(_) => "pass",
    };
    match task.for_each {
        Some(_) => format!("{name} ({kind}, for_each)"),
        None => format!("{name} ({kind})"),
    }
}

fn rule_name(rule: TriggerRule) -> &'static str {
    match rule {
        TriggerRule::AllSuccess => "all_success",
        TriggerRule::AllDone => "all_done",
        TriggerRule::AllFailed => "all_failed",
        TriggerRule::OneSuccess => "one_success",
        TriggerRule::OneFailed => "one_failed",
        TriggerRule::NoneFailed => "none_failed",
        TriggerRule::Always => "always",
    }
}

/// Text safe inside a quoted Mermaid label: anything beyond plain characters becomes a
/// Mermaid entity code such as `#35;`, so quotes, brackets and markup cannot break out.
fn escape(text: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || " _-.,:()/".contains(c);
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if plain(c) {
            out.push(c);
        } else {
            out.push_str(&format!("#{};", u32::from(c)));
        }
    }
    out
}
