//! `aloft graph`: the Mermaid picture of a workflow.

use aloft_core::graph::mermaid;
use aloft_core::source::load_str;

#[test]
fn flowchart_lists_tasks_and_edges_in_file_order() {
    let text = "\
name: nightly-etl
tasks:
  extract: {run: {command: [python3, tasks/extract.py]}}
  enrich: {depends_on: [extract], run: {lambda: enrich}}
  per_file: {depends_on: [extract], for_each: $.extract.files, run: {lambda: load-file}}
  report:
    depends_on: [enrich, per_file]
    trigger_rule: all_done
    run: {pass: {result: {ok: true}}}
";
    let definition = load_str("wf.yaml", text).expect("valid");
    assert_eq!(
        mermaid(&definition),
        "\
flowchart TD
    t0[\"extract (command)\"]
    t1[\"enrich (lambda)\"]
    t2[\"per_file (lambda, for_each)\"]
    t3[\"report (pass)\"]
    t0 --> t1
    t0 --> t2
    t1 -->|all_done| t3
    t2 -->|all_done| t3
"
    );
}

#[test]
fn labels_cannot_break_out_of_their_quotes() {
    let mut definition =
        load_str("wf.yaml", "name: x\ntasks: {a: {run: {pass: {}}}}\n").expect("valid");
    let task = definition.tasks["a"].clone();
    definition
        .tasks
        .insert("b\"]; click a call evil()%%<br>#".into(), task);
    let chart = mermaid(&definition);
    let line = chart.lines().nth(2).unwrap_or_default();
    assert_eq!(
        line,
        "    t1[\"b#34;#93;#59; click a call evil()#37;#37;#60;br#62;#35; (pass)\"]"
    );
}

#[test]
fn output_is_deterministic_and_skips_unknown_or_repeated_upstreams() {
    let text = "\
name: x
tasks:
  z: {run: {pass: {}}}
  a: {depends_on: [z], run: {pass: {}}, trigger_rule: one_failed}
";
    let mut definition = load_str("wf.yaml", text).expect("valid");
    definition.tasks["a"]
        .depends_on
        .extend(["z".to_owned(), "ghost".to_owned()]);
    let chart = mermaid(&definition);
    assert_eq!(chart, mermaid(&definition.clone()));
    assert_eq!(
        chart,
        "flowchart TD\n    t0[\"z (pass)\"]\n    t1[\"a (pass)\"]\n    t0 -->|one_failed| t1\n"
    );
}
