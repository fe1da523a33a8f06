//! Trigger rules and skips (S13) and fan-out over empty lists (S14), run end to end on
//! the engine.

mod sim;

use std::collections::BTreeMap;

use serde_json::{Value, json};

use aloft_core::{RunStatus, TaskState};
use sim::{Duplicates, S, Sim};

const SKIP_RULES: &str = r#"
name: skip-rules
tasks:
  ok: {run: &P {pass: {result: {}}}}
  s:  {depends_on: [ok], trigger_rule: all_failed, run: *P}
  j1: {depends_on: [s], trigger_rule: none_failed, run: *P}
  a:  {depends_on: [s], run: *P}
  x:  {run: *P}
  j:  {depends_on: [a, x], trigger_rule: none_failed, run: *P}
  t:  {depends_on: [s], run: {pass: {result: {items: [1, 2]}}}}
  e:  {depends_on: [t], for_each: $.t.items, trigger_rule: none_failed, run: *P}
"#;

#[tokio::test]
async fn a_skipped_upstream_skips_only_the_rules_that_need_it() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(SKIP_RULES).await;

    assert_eq!(report.status(), RunStatus::Succeeded);
    let expected: BTreeMap<String, (TaskState, u32)> = [
        ("ok", TaskState::Succeeded, 1),
        ("s", TaskState::Skipped, 0),
        ("j1", TaskState::Succeeded, 1),
        ("a", TaskState::Skipped, 0),
        ("x", TaskState::Succeeded, 1),
        ("j", TaskState::Succeeded, 1),
        ("t", TaskState::Skipped, 0),
        ("e", TaskState::Skipped, 0),
    ]
    .into_iter()
    .map(|(name, state, attempts)| (name.to_owned(), (state, attempts)))
    .collect();
    assert_eq!(report.states(), expected);
    assert!(report.items("e").is_empty(), "nothing to map over");
    assert!(report.task("e").failure.is_none(), "e never failed");
}

/// Each rule against upstreams {succeeded, skipped}: the case's table.
#[tokio::test]
async fn every_rule_against_a_succeeded_and_a_skipped_upstream() {
    let rules = [
        ("all_success", TaskState::Skipped, 0),
        ("all_failed", TaskState::Skipped, 0),
        ("one_failed", TaskState::Skipped, 0),
        ("all_done", TaskState::Succeeded, 1),
        ("one_success", TaskState::Succeeded, 1),
        ("none_failed", TaskState::Succeeded, 1),
        ("always", TaskState::Succeeded, 1),
    ];
    let mut yaml = String::from(
        "name: rule-table\ntasks:\n  ok: {run: {pass: {}}}\n  \
         skipped: {depends_on: [ok], trigger_rule: all_failed, run: {pass: {}}}\n",
    );
    for (rule, _, _) in rules {
        yaml.push_str(&format!(
            "  r_{rule}: {{depends_on: [ok, skipped], trigger_rule: {rule}, run: {{pass: {{}}}}}}\n"
        ));
    }
    let mut sim = Sim::new();
    let report = sim.run_yaml(&yaml).await;

    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_eq!(report.state("skipped"), (TaskState::Skipped, 0));
    for (rule, state, attempts) in rules {
        assert_eq!(
            report.state(&format!("r_{rule}")),
            (state, attempts),
            "{rule}"
        );
    }
}

const EMPTY_MAP: &str = r#"
name: empty-map
concurrency: {max_tasks: 8}
tasks:
  say_hi: {run: {pass: {result: {xs: []}}}}
  m1: {depends_on: [say_hi], for_each: $.say_hi.xs, run: {pass: {result: 1}}}
  m2: {depends_on: [say_hi, m1], for_each: $.say_hi.xs, run: {pass: {result: 1}}}
  collect: {depends_on: [m2], trigger_rule: none_failed, run: {command: [cat]}}
"#;

/// What must be the same in every repeat: the run status, every task's state and
/// attempts, and what `collect` read from upstream.
type EmptyMapResult = (RunStatus, BTreeMap<String, (TaskState, u32)>, Value, u64);

async fn empty_map_once(duplicates: bool) -> EmptyMapResult {
    let mut sim = Sim::new();
    if duplicates {
        sim.duplicates = Duplicates {
            after_ms: vec![0, 5 * S],
        };
    }
    let report = sim.run_yaml(EMPTY_MAP).await;
    let output: Value = serde_json::from_str(
        report
            .task("collect")
            .output
            .as_deref()
            .expect("collect has an output"),
    )
    .expect("output is JSON");
    (
        report.status(),
        report.states(),
        output["upstream"].clone(),
        report.ended_at(),
    )
}

#[tokio::test]
async fn a_chained_fan_out_over_an_empty_list_succeeds_the_same_fifty_times() {
    let first = empty_map_once(false).await;
    let (status, states, upstream, _) = &first;
    assert_eq!(*status, RunStatus::Succeeded);
    assert_eq!(states["say_hi"], (TaskState::Succeeded, 1));
    assert_eq!(states["m1"], (TaskState::Skipped, 0));
    assert_eq!(states["m2"], (TaskState::Skipped, 0));
    assert_eq!(states["collect"], (TaskState::Succeeded, 1));
    assert_eq!(*upstream, json!({"m2": []}));

    // Half of the repeats deliver every message twice (once at once, once 5 s later):
    // the result must not depend on the order or duplication of settle messages.
    for repeat in 1..50 {
        let again = empty_map_once(repeat % 2 == 1).await;
        assert_eq!(again, first, "repeat {repeat}");
    }
}
