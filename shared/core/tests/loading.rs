//! Loading workflow files: YAML and JSON syntax, scalars, anchors, and type errors, each
//! reported at its file, line and column.

use aloft_core::definition::{Backoff, Jitter, RunSpec, TriggerRule};
use aloft_core::duration::Duration;
use aloft_core::source::{Diagnostic, Diagnostics, load_bytes, load_path, load_str};
use serde_json::json;

/// The diagnostics of a file that must not load, as printed.
fn errors(text: &str) -> Vec<String> {
    match load_str("wf.yaml", text) {
        Ok(definition) => panic!("expected errors, loaded {definition:?}"),
        Err(diagnostics) => diagnostics.0.iter().map(ToString::to_string).collect(),
    }
}

const ETL_YAML: &str = "\
name: nightly-etl            # [a-z0-9][a-z0-9-]{0,63}
description: Orders into the warehouse
tags: {team: data, cost-center: cc-42}
deadline: 3h
concurrency: {max_runs: 1, max_tasks: 8}
defaults:
  timeout: 15m
  retry: {max_attempts: 3, backoff: exponential, initial_delay: 10s,
          multiplier: 2.0, max_delay: 5m, jitter: full, on: [error, timeout]}
schedule:
  expression: cron(0 2 * * ? *)
  timezone: Europe/Berlin
  catchup: {window: 3d, max_runs: 5}
  overlap: skip
events:
  - pattern: {source: [shop.orders], detail-type: [Order Placed]}
pools: {warehouse: 4}
tasks:
  extract:
    run: {command: [python3, tasks/extract.py]}
  enrich:
    depends_on: [extract]
    run: {lambda: arn:aws:lambda:eu-west-1:123456789012:function:enrich}
    pool: warehouse
    timeout: 5m
  per_file:
    depends_on: [extract]
    for_each: $.extract.files
    max_concurrency: 10
    run: {lambda: load-file}
  report:
    depends_on: [enrich, per_file]
    trigger_rule: all_done
    run: {pass: {result: {ok: true}}}
";

const ETL_JSON: &str = r#"{
  "name": "nightly-etl",
  "description": "Orders into the warehouse",
  "tags": {"team": "data", "cost-center": "cc-42"},
  "deadline": "3h",
  "concurrency": {"max_runs": 1, "max_tasks": 8},
  "defaults": {
    "timeout": "15m",
    "retry": {"max_attempts": 3, "backoff": "exponential", "initial_delay": "10s",
              "multiplier": 2.0, "max_delay": "5m", "jitter": "full", "on": ["error", "timeout"]}
  },
  "schedule": {"expression": "cron(0 2 * * ? *)", "timezone": "Europe/Berlin",
               "catchup": {"window": "3d", "max_runs": 5}, "overlap": "skip"},
  "events": [{"pattern": {"source": ["shop.orders"], "detail-type": ["Order Placed"]}}],
  "pools": {"warehouse": 4},
  "tasks": {
    "extract": {"run": {"command": ["python3", "tasks/extract.py"]}},
    "enrich": {"depends_on": ["extract"],
               "run": {"lambda": "arn:aws:lambda:eu-west-1:123456789012:function:enrich"},
               "pool": "warehouse", "timeout": "5m"},
    "per_file": {"depends_on": ["extract"], "for_each": "$.extract.files",
                 "max_concurrency": 10, "run": {"lambda": "load-file"}},
    "report": {"depends_on": ["enrich", "per_file"], "trigger_rule": "all_done",
               "run": {"pass": {"result": {"ok": true}}}}
  }
}"#;

#[test]
fn architecture_example_loads_with_every_field() {
    let definition = load_str("etl.yaml", ETL_YAML).expect("valid");
    assert_eq!(definition.name, "nightly-etl");
    assert_eq!(definition.deadline, Some(Duration::from_secs(3 * 3600)));
    assert_eq!(definition.concurrency.max_tasks, Some(8));
    let retry = definition.defaults.retry.as_ref().expect("retry");
    assert_eq!(retry.backoff, Some(Backoff::Exponential));
    assert_eq!(retry.jitter, Some(Jitter::Full));
    assert_eq!(retry.multiplier, Some(2.0));
    assert_eq!(
        retry.on,
        Some(vec!["error".to_owned(), "timeout".to_owned()])
    );
    let schedule = definition.schedule.as_ref().expect("schedule");
    assert_eq!(schedule.expression, "cron(0 2 * * ? *)");
    assert_eq!(
        definition.events[0].pattern["detail-type"],
        json!(["Order Placed"])
    );
    let names: Vec<&str> = definition.tasks.keys().map(String::as_str).collect();
    assert_eq!(names, ["extract", "enrich", "per_file", "report"]);
    assert_eq!(
        definition.tasks["report"].trigger_rule,
        TriggerRule::AllDone
    );
    assert_eq!(
        definition.tasks["per_file"].for_each.as_deref(),
        Some("$.extract.files")
    );
    let extract = &definition.tasks["extract"].run;
    assert_eq!(
        extract,
        &RunSpec::Command(vec!["python3".into(), "tasks/extract.py".into()])
    );
}

#[test]
fn json_input_parses_equal_to_the_same_yaml() {
    let from_yaml = load_str("etl.yaml", ETL_YAML).expect("yaml");
    let from_json = load_str("etl.json", ETL_JSON).expect("json");
    assert_eq!(from_json, from_yaml);
}

#[test]
fn json_with_tabs_escapes_and_no_spaces_parses() {
    let text = "{\n\t\"name\":\"tabs\",\"tasks\":{\"a\":{\"run\":{\"pass\":{\"result\":\
                \"caf\\u00e9 a\\/b\"}}}}\n}";
    let definition = load_str("tabs.json", text).expect("valid");
    let RunSpec::Pass(pass) = &definition.tasks["a"].run else {
        panic!("not a pass task")
    };
    assert_eq!(pass.result, json!("café a/b"));
}

#[test]
fn anchors_and_aliases_share_a_value() {
    let text = "\
name: anchors
tasks:
  ok: {run: &P {pass: {result: {}}}}
  again: {run: *P, retry: &R {max_attempts: 2}}
  third: {run: *P, retry: *R}
";
    let definition = load_str("wf.yaml", text).expect("valid");
    assert_eq!(definition.tasks["again"].run, definition.tasks["ok"].run);
    assert_eq!(
        definition.tasks["third"]
            .retry
            .as_ref()
            .and_then(|r| r.max_attempts),
        Some(2)
    );
}

#[test]
fn type_error_on_an_alias_is_reported_at_the_alias() {
    let text = "\
name: anchors
tasks:
  a: {run: {pass: {}}, retry: &R {max_attempts: 2}}
  b: {run: {pass: {}}, timeout: *R}
  c: {run: *R}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:35: unknown key `max_attempts`, expected one of `command`, `lambda`, \
             `pass`",
            "wf.yaml:4:33: invalid type: map, expected a string",
        ]
    );
}

#[test]
fn recursive_alias_is_an_error_not_a_hang() {
    assert_eq!(
        errors("a: &x [*x]\n"),
        ["wf.yaml:1:8: alias refers to a node that contains it"]
    );
}

#[test]
fn alias_bombs_stop_at_a_limit() {
    let mut text = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for level in 1..9 {
        let previous = format!("*a{}", level - 1);
        let items = [previous.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{items}]\n"));
    }
    let lines = errors(&text);
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert!(
        lines[0].ends_with("aliases expand to more than 1000000 nodes"),
        "{lines:?}"
    );
}

#[test]
fn unknown_alias_is_a_syntax_error_with_position() {
    assert_eq!(
        errors("name: x\ntasks: *nope\n"),
        ["wf.yaml:2:8: invalid yaml: while parsing node, found unknown anchor"]
    );
}

#[test]
fn duplicate_yaml_keys_are_reported_at_the_second_key() {
    let text = "\
name: dup
tasks:
  a: {run: {pass: {}}}
  b: {run: {pass: {}}, timeout: 1s, timeout: 2s}
  a: {run: {pass: {}}}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:4:37: duplicate key `timeout`",
            "wf.yaml:5:3: duplicate key `a`"
        ]
    );
}

#[test]
fn duplicate_json_keys_are_reported_at_the_second_key() {
    let text =
        "{\"name\": \"dup\",\n \"tasks\": {\"a\": {\"run\": {\"pass\": {}}}},\n \"name\": \"x\"}";
    assert_eq!(errors(text), ["wf.yaml:3:2: duplicate key `name`"]);
}

#[test]
fn non_string_keys_are_refused() {
    let text = "\
name: keys
pools: {1: 2, true: 1, ~: 3, \"4\": 1}
tasks: {a: {run: {pass: {}}}}
? [x]
: y
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:2:9: map key 1 is not a string; quote it",
            "wf.yaml:2:15: map key true is not a string; quote it",
            "wf.yaml:2:24: map key null is not a string; quote it",
            "wf.yaml:4:3: map key a sequence is not a string; quote it",
        ]
    );
}

#[test]
fn typo_in_a_field_name_is_an_error_at_its_line() {
    let text = "\
name: typo
tasks:
  a: {run: {pass: {}}}
  b:
    depens_on: [a]
    run: {pass: {}}
";
    assert_eq!(
        errors(text),
        ["wf.yaml:5:5: unknown field `depens_on`, did you mean `depends_on`?"]
    );
}

#[test]
fn unknown_run_kind_and_trigger_rule_name_the_value() {
    let text = "\
name: kinds
tasks:
  a: {run: {commnd: [ls]}}
  b: {run: {pass: {}}, trigger_rule: sometimes}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:3:13: unknown key `commnd`, did you mean `command`?",
            "wf.yaml:4:38: unknown value `sometimes`, expected one of `all_success`, \
             `all_done`, `all_failed`, `one_success`, `one_failed`, `none_failed`, `always`",
        ]
    );
}

#[test]
fn bad_duration_is_reported_at_its_value() {
    let text = "name: slow\ntasks:\n  a:\n    run: {pass: {}}\n    timeout: 10 sec\n";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:5:14: invalid duration \"10 sec\": expected <number><unit> with unit ms, s, \
          m, h or d"
        ]
    );
}

#[test]
fn huge_duration_is_refused_not_wrapped() {
    let text = "name: long\ndeadline: 99999999999999999999999d\ntasks: {a: {run: {pass: {}}}}\n";
    assert_eq!(
        errors(text),
        ["wf.yaml:2:11: duration \"99999999999999999999999d\" is longer than the limit of 366d"]
    );
}

#[test]
fn wrong_types_are_reported_in_file_terms() {
    let text = "\
name: types
concurrency: {max_runs: 1.5, max_tasks: -1}
tasks:
  a: {run: {command: ls}}
  b: {run: lambda}
  c: 3
  d: {run: {pass: {}}, depends_on: a}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:2:25: invalid type: number `1.5`, expected a whole number from 0 to \
             4294967295",
            "wf.yaml:2:41: invalid value: integer `-1`, expected a whole number from 0 to \
             4294967295",
            "wf.yaml:4:22: invalid type: string \"ls\", expected a sequence",
            "wf.yaml:5:12: `run` must be a map with exactly one key: `command`, `lambda` or \
             `pass`",
            "wf.yaml:6:6: invalid type: integer `3`, expected a map",
            "wf.yaml:7:36: invalid type: string \"a\", expected a sequence",
        ]
    );
}

#[test]
fn missing_required_fields_are_named() {
    let text = "description: nothing else\ntasks:\n  a: {depends_on: []}\n";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:1:1: missing field `name`",
            "wf.yaml:3:3: missing field `run`"
        ]
    );
}

#[test]
fn broken_run_does_not_hide_other_problems_of_the_task() {
    let text = "\
name: several
tasks:
  a:
    run: {command: 5}
    for_each: nonsense
  b: {run: {pass: {}}, depends_on: [nope]}
";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:4:20: invalid type: integer `5`, expected a sequence",
            "wf.yaml:5:15: for_each `nonsense` of task `a` must have the form \
             $.<task>(.<field>)*",
            "wf.yaml:6:37: task `b` depends on unknown task `nope`",
        ]
    );
}

#[test]
fn a_task_that_cannot_be_read_still_counts_as_declared() {
    let text = "name: known\ntasks:\n  a: 5\n  b: {depends_on: [a], run: {pass: {}}}\n";
    assert_eq!(
        errors(text),
        ["wf.yaml:3:6: invalid type: integer `5`, expected a map"]
    );
}

#[test]
fn yaml_syntax_error_has_a_position() {
    assert_eq!(
        errors("name: x\ntasks: {a: b: c}\n"),
        [
            "wf.yaml:2:13: invalid yaml: while parsing a flow mapping, did not find expected ',' \
          or '}'"
        ]
    );
    assert_eq!(
        errors("name: [unclosed\n"),
        ["wf.yaml:2:1: invalid yaml: while parsing a flow sequence, expected ',' or ']'"]
    );
}

#[test]
fn empty_file_and_non_map_root_are_errors() {
    assert_eq!(
        errors(""),
        ["wf.yaml:1:1: the file is empty: expected `name` and `tasks`"]
    );
    assert_eq!(errors("# only a comment\n"), errors(""));
    assert_eq!(
        errors("- a\n- b\n"),
        ["wf.yaml:1:1: a workflow is a map with `name` and `tasks`, not a sequence"]
    );
    assert_eq!(
        errors("~\n"),
        ["wf.yaml:1:1: a workflow is a map with `name` and `tasks`, not null"]
    );
}

#[test]
fn second_document_is_refused() {
    let text = "name: one\ntasks: {a: {run: {pass: {}}}}\n---\nname: two\n";
    assert_eq!(
        errors(text),
        ["wf.yaml:3:1: a workflow file holds one document; found a second"]
    );
}

#[test]
fn deep_nesting_is_refused_without_overflowing_the_stack() {
    let nested = |depth: usize| format!("{}{}", "[".repeat(depth), "]".repeat(depth));
    assert_eq!(
        errors(&nested(200)),
        ["wf.yaml:1:129: nesting deeper than 128 levels"]
    );
    assert_eq!(
        errors(&nested(100_000)),
        ["wf.yaml:1:256: invalid yaml: recursion limit exceeded"]
    );
    let block: String = (0..300)
        .map(|i| format!("{}- \n", "  ".repeat(i)))
        .collect();
    assert_eq!(
        errors(&block),
        ["wf.yaml:129:257: nesting deeper than 128 levels"]
    );
}

#[test]
fn plain_scalars_resolve_the_yaml_1_2_core_way() {
    let text = "\
name: scalars
tasks:
  a:
    run:
      pass:
        result: [on, yes, 'true', True, ~, null, '', 0x1F, 0o17, 017, +3, -5, .5, 1e3, 1_000,
                 1.5e-3, 99999999999999999999, !!str 12, \"12\", ! 12, !!float 2, .Inf]
";
    let lines = errors(text);
    assert_eq!(lines, ["wf.yaml:7:81: number `.Inf` is not finite"]);
    let loaded = load_str("wf.yaml", &text.replace(", .Inf", "")).expect("valid");
    let RunSpec::Pass(pass) = &loaded.tasks["a"].run else {
        panic!("not a pass task")
    };
    let expected = json!([
        "on", "yes", "true", true, null, null, "", 31, 15, 17, 3, -5, 0.5, 1000.0, "1_000", 0.0015,
        1e20, "12", "12", "12", 2.0
    ]);
    assert_eq!(pass.result, expected);
}

#[test]
fn unsupported_and_mismatched_tags_are_errors() {
    let text = "name: tags\ntasks: {a: {run: {pass: {result: [!foo 1, !!int x, !!set {}]}}}}\n";
    assert_eq!(
        errors(text),
        [
            "wf.yaml:2:40: unsupported tag `!foo`",
            "wf.yaml:2:49: `x` is not an integer as its tag `!!int` says",
            "wf.yaml:2:58: unsupported tag `!!set`",
        ]
    );
}

#[test]
fn byte_order_mark_is_skipped() {
    let text = "\u{feff}name: bom\ntasks: {a: {run: {pass: {}}}}\n";
    assert_eq!(load_str("wf.yaml", text).expect("valid").name, "bom");
}

#[test]
fn non_utf8_input_names_the_byte_offset_line_and_column() {
    let bytes = b"name: x\ntasks:\n  caf\xc3\xa9\xff: {run: {pass: {}}}\n";
    let err = load_bytes("bin.yaml", bytes).expect_err("invalid utf-8");
    assert_eq!(
        err.to_string(),
        "bin.yaml:3:7: invalid utf-8 at byte offset 22"
    );
}

#[test]
fn unreadable_path_is_one_diagnostic_naming_the_path() {
    let path = std::env::temp_dir()
        .join("aloft-no-such-dir")
        .join("missing.yaml");
    let err = load_path(&path).expect_err("missing file");
    let shown = path.display().to_string();
    assert_eq!(err.0.len(), 1);
    assert_eq!((err.0[0].line, err.0[0].column), (1, 1));
    assert!(
        err.0[0]
            .message
            .starts_with(&format!("cannot read {shown}: ")),
        "{err}"
    );
    assert_eq!(err.0[0].file, shown);
}

#[test]
fn load_path_reads_a_file() {
    let path = std::env::temp_dir().join(format!("aloft-loading-{}.json", std::process::id()));
    std::fs::write(&path, ETL_JSON).expect("write");
    let loaded = load_path(&path);
    std::fs::remove_file(&path).expect("remove");
    assert_eq!(loaded.expect("valid").tasks.len(), 4);
}

#[test]
fn diagnostics_display_one_per_line() {
    let diagnostic = |line, message: &str| Diagnostic {
        file: "f.yaml".into(),
        line,
        column: 2,
        message: message.into(),
    };
    let all = Diagnostics(vec![diagnostic(1, "first"), diagnostic(3, "second")]);
    assert_eq!(all.to_string(), "f.yaml:1:2: first\nf.yaml:3:2: second");
    let boxed: Box<dyn std::error::Error> = Box::new(all);
    assert!(boxed.to_string().contains("second"));
}

#[test]
fn names_with_control_characters_stay_on_one_line() {
    let text = "name: x\ntasks:\n  \"a\\nb\": {run: {pass: {}}}\n";
    let lines = errors(text);
    assert_eq!(lines.len(), 1);
    assert!(
        lines[0].starts_with("wf.yaml:3:3: task name `a\\nb` is invalid"),
        "{lines:?}"
    );
}
