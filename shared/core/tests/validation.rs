//! Semantic checks of workflow files: names, references, limits and run specs, each
//! reported at the offending value, all at once.

use aloft_core::definition::RetrySpec;
use aloft_core::source::load_str;
use aloft_core::validate::{FieldPath, Target, validate};

/// The diagnostics of a file that must not load, as printed.
fn errors(text: &str) -> Vec<String> {
    match load_str("wf.yaml", text) {
        Ok(definition) => panic!("expected errors, loaded {definition:?}"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

#[test]
fn a_file_with_three_problems_gives_three_lines() {
    let text = "\
name: three
tasks:
  a: {run: {pass: {}}, timeout: 0s}
  b: {run: {lambda: \"\"}}
  c: {run: {command: []}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:33: timeout of task `a` must be longer than zero",
            "wf.yaml:4:21: lambda of task `b` is empty: name a function or its ARN",
            "wf.yaml:5:22: command of task `c` is empty: name a program",
        ]
    );
}

#[test]
fn workflow_name_must_follow_the_rule() {
    let long = "a".repeat(65);
    for name in ["Nightly", "-etl", "etl_1", "\"\"", long.as_str()] {
        let text = format!("name: {name}\ntasks: {{a: {{run: {{pass: {{}}}}}}}}\n");
        let shown = name.trim_matches('"');
        assert_eq!(
            errors(&text),
            [format!(
                "wf.yaml:1:7: workflow name `{shown}` is invalid: it must match \
                 [a-z0-9][a-z0-9-]{{0,63}} (lowercase letters, digits and '-', at most 64, \
                 not starting with '-')"
            )],
            "{name}"
        );
    }
    for name in ["a", "\"0\"", "007x", "nightly-etl-2", &"z".repeat(64)] {
        let text = format!("name: {name}\ntasks: {{a: {{run: {{pass: {{}}}}}}}}\n");
        assert!(load_str("wf.yaml", &text).is_ok(), "{name}");
    }
}

#[test]
fn task_names_must_follow_the_rule_said_in_the_message() {
    let text = "\
name: names
tasks:
  ok_Name-1: {run: {pass: {}}}
  _x: {run: {pass: {}}}
  -dash: {run: {pass: {}}}
  \"has space\": {run: {pass: {}}}
";
    let rule = "it must match [A-Za-z0-9_][A-Za-z0-9_-]{0,63} (letters, digits, '_' and '-', \
                at most 64, not starting with '-')";
    assert_eq!(
        errors(text),
        [
            format!("wf.yaml:5:3: task name `-dash` is invalid: {rule}"),
            format!("wf.yaml:6:3: task name `has space` is invalid: {rule}"),
        ]
    );
}

#[test]
fn empty_task_list_is_an_error() {
    assert_eq!(
        errors("name: empty\ntasks: {}\n"),
        ["wf.yaml:2:8: a workflow needs at least one task; `tasks` is empty"]
    );
}

#[test]
fn dependency_errors_name_both_tasks() {
    let text = "\
name: deps
tasks:
  a: {run: {pass: {}}}
  d: {depends_on: [nope], run: {pass: {}}}
  e: {depends_on: [a, a], run: {pass: {}}}
  x: {depends_on: [x], run: {pass: {}}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:4:20: task `d` depends on unknown task `nope`",
            "wf.yaml:5:23: task `e` lists `a` twice in depends_on",
            "wf.yaml:6:20: task `x` depends on itself: cycle x -> x",
        ]
    );
}

#[test]
fn retry_limits_are_checked_in_defaults_and_tasks() {
    let text = "\
name: retries
defaults:
  retry: {max_attempts: 0, multiplier: 0.5}
tasks:
  a:
    run: {pass: {}}
    retry: {multiplier: 1e400, on: [error, \"\", \" \"]}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:25: max_attempts of the defaults is 0: it counts the first attempt, so \
             it must be at least 1",
            "wf.yaml:3:40: multiplier 0.5 of the defaults must be a finite number of at least 1.0",
            "wf.yaml:7:25: number `1e400` is not finite",
            "wf.yaml:7:44: retry `on` of task `a` has an empty entry; name a failure kind",
            "wf.yaml:7:48: retry `on` of task `a` has an empty entry; name a failure kind",
        ]
    );
}

#[test]
fn non_finite_multiplier_is_refused_by_validate() {
    let mut definition =
        load_str("wf.yaml", "name: m\ntasks: {a: {run: {pass: {}}}}\n").expect("valid");
    definition.defaults.retry = Some(RetrySpec {
        multiplier: Some(f64::NAN),
        ..RetrySpec::default()
    });
    let problems = validate(&definition);
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].path.to_string(), "defaults.retry.multiplier");
    assert_eq!(
        problems[0].to_string(),
        "defaults.retry.multiplier: multiplier NaN of the defaults must be a finite number of \
         at least 1.0"
    );
}

#[test]
fn concurrency_limits_of_zero_are_errors() {
    let text = "\
name: limits
concurrency: {max_runs: 0, max_tasks: 0}
tasks: {a: {run: {pass: {}}}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:2:25: concurrency max_runs is 0: no run could ever start",
            "wf.yaml:2:39: concurrency max_tasks is 0: no task could ever start",
        ]
    );
}

#[test]
fn pool_of_capacity_zero_can_never_run() {
    let text = "\
name: pool-wait
pools: {warehouse: 0}
tasks:
  a: {pool: warehouse, run: {command: [sleep, \"600\"]}}
";
    assert_eq!(
        errors(text),
        ["wf.yaml:2:20: pool `warehouse` has capacity 0: its tasks can never run"]
    );
}

#[test]
fn undeclared_pool_is_an_error_at_the_task() {
    let text = "\
name: pools
pools: {warehouse: 2}
tasks:
  a: {pool: warehose, run: {pass: {}}}
  b: {pool: warehouse, run: {pass: {}}}
";
    assert_eq!(
        errors(text),
        ["wf.yaml:4:13: pool `warehose` of task `a` is not declared in `pools`"]
    );
}

#[test]
fn pool_problems_are_not_repeated_when_pools_cannot_be_read() {
    let text =
        "name: pools\npools: {warehouse: -2}\ntasks:\n  a: {pool: warehouse, run: {pass: {}}}\n";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:2:20: invalid value: integer `-2`, expected a whole number from 0 to \
          4294967295"
        ]
    );
}

#[test]
fn fan_out_settings_are_checked() {
    let text = "\
name: fan-out
tasks:
  up: {run: {pass: {}}}
  a: {depends_on: [up], for_each: $.up.files, max_concurrency: 0, run: {pass: {}}}
  b: {max_concurrency: 3, run: {pass: {}}}
  c: {depends_on: [up], for_each: up.files, run: {pass: {}}}
  d: {depends_on: [up], for_each: $.other.files, run: {pass: {}}}
  e: {depends_on: [up], for_each: $.up..x, run: {pass: {}}}
  f: {depends_on: [up], for_each: $.up, run: {pass: {}}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:4:64: max_concurrency of task `a` is 0: no item could ever run",
            "wf.yaml:5:24: max_concurrency is set on task `b`, which has no for_each",
            "wf.yaml:6:35: for_each `up.files` of task `c` must have the form \
             $.<task>(.<field>)*",
            "wf.yaml:7:35: for_each of task `d` reads task `other`, which is not in its \
             depends_on",
            "wf.yaml:8:35: for_each `$.up..x` of task `e` must have the form \
             $.<task>(.<field>)*",
        ]
    );
}

#[test]
fn empty_programs_and_lambda_names_are_errors() {
    let text = "\
name: runs
tasks:
  a: {run: {command: [\"\", x]}}
  b: {run: {lambda: \"  \"}}
  c:
    run:
      command: []
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:23: command of task `a` has an empty program name",
            "wf.yaml:4:21: lambda of task `b` is empty: name a function or its ARN",
            "wf.yaml:7:16: command of task `c` is empty: name a program",
        ]
    );
}

#[test]
fn zero_deadline_and_timeouts_are_errors() {
    let text = "\
name: zero
deadline: 0ms
defaults: {timeout: 0s}
tasks: {a: {run: {pass: {}}, timeout: 0m}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:2:11: deadline must be longer than zero",
            "wf.yaml:3:21: default timeout must be longer than zero",
            "wf.yaml:4:39: timeout of task `a` must be longer than zero",
        ]
    );
}

#[test]
fn validate_reports_paths_without_a_file() {
    let text = "name: paths\ntasks: {a: {depends_on: [b], run: {pass: {}}}}\n";
    let definition = match load_str("wf.yaml", text) {
        Err(diagnostics) => {
            assert_eq!(
                diagnostics.to_string(),
                "wf.yaml:2:26: task `a` depends on unknown task `b`"
            );
            let mut definition =
                load_str("wf.yaml", "name: paths\ntasks: {a: {run: {pass: {}}}}\n").expect("valid");
            definition.tasks["a"].depends_on.push("b".into());
            definition
        }
        Ok(_) => panic!("unknown dependency accepted"),
    };
    let problems = validate(&definition);
    assert_eq!(problems.len(), 1);
    assert_eq!(
        problems[0].path,
        FieldPath::task("a", Some("depends_on")).index(0)
    );
    assert_eq!(problems[0].target, Target::Value);
    assert_eq!(
        problems[0].to_string(),
        "tasks.a.depends_on[0]: task `a` depends on unknown task `b`"
    );
}

#[test]
fn a_pass_result_over_the_output_limit_is_refused_at_its_position() {
    let fits = "a".repeat(aloft_core::OUTPUT_LIMIT - 2);
    let over = "a".repeat(aloft_core::OUTPUT_LIMIT - 1);
    let text = format!(
        "name: big\ntasks:\n  ok: {{run: {{pass: {{result: \"{fits}\"}}}}}}\n  \
         no: {{run: {{pass: {{result: \"{over}\"}}}}}}\n"
    );
    assert_eq!(
        errors(&text),
        [format!(
            "wf.yaml:4:29: pass result of task `no` is {} bytes, over the output limit of {} \
             bytes: it could never be stored",
            aloft_core::OUTPUT_LIMIT + 1,
            aloft_core::OUTPUT_LIMIT
        )]
    );
}
