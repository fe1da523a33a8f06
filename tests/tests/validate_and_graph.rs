//! `aloft validate` reports every problem at its place; `aloft graph` draws the edges.

use serde_json::json;

use aloft_tests::{Sandbox, examples_dir};

const SEVERAL_PROBLEMS: &str = "\
name: Bad_Name
tasks:
  a:
    run: {pass: {result: {}}}
    timeout: 5x
  b:
    depends_on: [nope]
    run: {pass: {result: {}}}
  c:
    depends_on: [a]
    trigger_rule: sometimes
    run: {pass: {result: {}}}
";

#[test]
fn validate_reports_every_problem_of_a_file_with_its_position() {
    let sandbox = Sandbox::new();
    sandbox.write("bad.yaml", SEVERAL_PROBLEMS);

    let done = sandbox.aloft(&["validate", "bad.yaml"]);
    done.assert_code(1);
    done.assert_no_panic();
    let lines: Vec<&str> = done.stderr.lines().collect();
    let at = |prefix: &str, needle: &str| {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(prefix) && l.contains(needle)),
            "no line starting {prefix:?} naming {needle:?} in:\n{}",
            done.stderr
        );
    };
    at("bad.yaml:1:7: ", "`Bad_Name`");
    at("bad.yaml:5:14: ", "\"5x\"");
    at("bad.yaml:7:18: ", "unknown task `nope`");
    at("bad.yaml:11:19: ", "`sometimes`");
    assert_eq!(lines.len(), 4, "one line per problem:\n{}", done.stderr);
}

#[test]
fn validate_json_lists_the_same_problems() {
    let sandbox = Sandbox::new();
    sandbox.write("bad.yaml", SEVERAL_PROBLEMS);

    let done = sandbox.aloft(&["validate", "bad.yaml", "--output", "json"]);
    done.assert_code(1);
    let report = done.json();
    assert_eq!(report["valid"], false);
    let positions: Vec<_> = report["problems"]
        .as_array()
        .expect("a problems array")
        .iter()
        .map(|p| json!([p["file"], p["line"], p["column"]]))
        .collect();
    assert_eq!(
        positions,
        [
            json!(["bad.yaml", 1, 7]),
            json!(["bad.yaml", 5, 14]),
            json!(["bad.yaml", 7, 18]),
            json!(["bad.yaml", 11, 19]),
        ]
    );
}

#[test]
fn validate_checks_every_file_given() {
    let sandbox = Sandbox::new();
    sandbox.write("bad.yaml", SEVERAL_PROBLEMS);
    sandbox.write(
        "good.yaml",
        "name: good\ntasks:\n  a: {run: {pass: {result: {}}}}\n",
    );

    let done = sandbox.aloft(&["validate", "good.yaml", "bad.yaml"]);
    done.assert_code(1);
    assert!(
        done.stderr.contains("good.yaml: ok (1 task)\n"),
        "{}",
        done.stderr
    );
    assert_eq!(
        done.stderr
            .lines()
            .filter(|l| l.starts_with("bad.yaml:"))
            .count(),
        4,
        "{}",
        done.stderr
    );
}

const DIAMOND: &str = concat!(
    "  a: {run: {pass: {result: {}}}}\n",
    "  b: {depends_on: [a], run: {pass: {result: {}}}}\n",
    "  c: {depends_on: [a], run: {pass: {result: {}}}}\n",
    "  d: {depends_on: [b, c], run: {pass: {result: {}}}}\n",
);

const CYCLE: &str = concat!(
    "  p: {depends_on: [r], run: {pass: {result: {}}}}\n",
    "  q: {depends_on: [p], run: {pass: {result: {}}}}\n",
    "  r: {depends_on: [q], run: {pass: {result: {}}}}\n",
);

#[test]
fn validate_accepts_a_diamond() {
    let sandbox = Sandbox::new();
    sandbox.write("diamond.yaml", format!("name: diamond\ntasks:\n{DIAMOND}"));

    let done = sandbox.aloft(&["validate", "diamond.yaml"]);
    done.assert_code(0);
    assert_eq!(done.stderr.trim(), "diamond.yaml: ok (4 tasks)");
}

#[test]
fn validate_names_a_self_loop() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "self.yaml",
        "name: self-loop\ntasks:\n  x: {depends_on: [x], run: {pass: {result: {}}}}\n",
    );

    let done = sandbox.aloft(&["validate", "self.yaml"]);
    done.assert_code(1);
    let line = done.stderr.trim();
    assert!(line.starts_with("self.yaml:3:"), "{line}");
    assert!(line.contains("x -> x"), "{line}");
}

/// The one line naming a cycle through p, q and r (any rotation) in `stderr`.
fn cycle_line(stderr: &str) -> &str {
    let rotations = ["p -> r -> q -> p", "r -> q -> p -> r", "q -> p -> r -> q"];
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| rotations.iter().any(|r| l.contains(r)))
        .collect();
    assert_eq!(lines.len(), 1, "expected one cycle line:\n{stderr}");
    lines[0]
}

#[test]
fn validate_names_the_cycle_and_a_depends_on_on_it() {
    let sandbox = Sandbox::new();
    sandbox.write("cycle.yaml", format!("name: cycle\ntasks:\n{CYCLE}"));

    let done = sandbox.aloft(&["validate", "cycle.yaml"]);
    done.assert_code(1);
    let line = cycle_line(&done.stderr);
    // Lines 3 to 5 are the depends_on of p, q and r; column 20 is the name in the list.
    let position = line.split(": ").next().expect("a position");
    assert!(
        ["cycle.yaml:3:20", "cycle.yaml:4:20", "cycle.yaml:5:20"].contains(&position),
        "{line}"
    );
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
}

#[test]
fn validate_blames_only_the_cycle_beside_a_diamond() {
    let sandbox = Sandbox::new();
    sandbox.write("both.yaml", format!("name: both\ntasks:\n{DIAMOND}{CYCLE}"));

    let done = sandbox.aloft(&["validate", "both.yaml"]);
    done.assert_code(1);
    let line = cycle_line(&done.stderr);
    for diamond_task in ["a ", "b ", "c ", "d "] {
        assert!(!line.contains(diamond_task), "{line}");
    }
    assert_eq!(done.stderr.lines().count(), 1, "{}", done.stderr);
}

#[test]
fn validate_names_an_unknown_dependency_and_its_task() {
    let sandbox = Sandbox::new();
    sandbox.write(
        "unknown.yaml",
        "name: unknown\ntasks:\n  d: {depends_on: [nope], run: {pass: {result: {}}}}\n",
    );

    let done = sandbox.aloft(&["validate", "unknown.yaml"]);
    done.assert_code(1);
    let line = done.stderr.trim();
    assert!(line.starts_with("unknown.yaml:3:20: "), "{line}");
    assert!(line.contains("`d`") && line.contains("`nope`"), "{line}");
}

#[test]
fn validate_accepts_the_shipped_examples() {
    let sandbox = Sandbox::new();
    let files: Vec<String> = ["etl", "fan-in", "cleanup"]
        .iter()
        .map(|f| {
            examples_dir()
                .join(f)
                .join("workflow.yaml")
                .display()
                .to_string()
        })
        .collect();
    let args: Vec<&str> = std::iter::once("validate")
        .chain(files.iter().map(String::as_str))
        .collect();

    let done = sandbox.aloft(&args);
    done.assert_code(0);
    assert_eq!(
        done.stderr.lines().filter(|l| l.contains(": ok (")).count(),
        3
    );
    let mut json_args = args.clone();
    json_args.extend(["--output", "json"]);
    let done = sandbox.aloft(&json_args);
    done.assert_code(0);
    assert_eq!(done.json(), json!({"valid": true, "problems": []}));
}

#[test]
fn graph_prints_a_mermaid_flowchart_with_every_edge() {
    let sandbox = Sandbox::new();
    sandbox.write("diamond.yaml", format!("name: diamond\ntasks:\n{DIAMOND}"));

    let done = sandbox.aloft(&["graph", "diamond.yaml"]);
    done.assert_code(0);
    let mut lines = done.stdout.lines().map(str::trim);
    assert_eq!(lines.next(), Some("flowchart TD"));
    let body: Vec<&str> = lines.collect();

    // Node ids are the graph's own; map them back to task names through their labels.
    let mut ids = std::collections::BTreeMap::new();
    for line in &body {
        if let Some((id, label)) = line.split_once("[\"") {
            let name = label.split([' ', '"']).next().expect("a task name");
            ids.insert(id.trim().to_owned(), name.to_owned());
        }
    }
    assert_eq!(ids.len(), 4, "one node per task:\n{}", done.stdout);
    let mut edges: Vec<(String, String)> = body
        .iter()
        .filter_map(|l| l.split_once("-->"))
        .map(|(from, to)| (ids[from.trim()].clone(), ids[to.trim()].clone()))
        .collect();
    edges.sort();
    let expected: Vec<(String, String)> = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
        .iter()
        .map(|&(f, t)| (f.to_owned(), t.to_owned()))
        .collect();
    assert_eq!(edges, expected, "{}", done.stdout);
}

#[test]
fn graph_of_an_invalid_file_fails_with_its_problems() {
    let sandbox = Sandbox::new();
    sandbox.write("cycle.yaml", format!("name: cycle\ntasks:\n{CYCLE}"));

    let done = sandbox.aloft(&["graph", "cycle.yaml"]);
    done.assert_code(1);
    assert!(done.stdout.is_empty(), "{}", done.stdout);
    cycle_line(&done.stderr);
}
