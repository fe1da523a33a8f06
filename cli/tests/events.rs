//! `aloft events test`, `aloft events send` and `aloft validate` on event triggers, run as
//! the real binary.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{Value, json};

/// What one command did.
#[derive(Debug)]
struct Done {
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

fn aloft(args: &[&str]) -> Done {
    let output = Command::new(env!("CARGO_BIN_EXE_aloft"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run aloft");
    let done = Done {
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!done.stderr.contains("panicked"), "{done:?}");
    done
}

/// A fresh folder for one test's files.
fn folder(test: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("events")
        .join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create the test folder");
    dir
}

fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a test file");
    format!("@{}", path.display())
}

fn example(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../statemachines/examples")
        .join(path)
}

const EVENT: &str = r#"{"id": "e-1", "source": "shop.orders", "detail-type": "Order Placed",
    "detail": {"order": {"id": "o-7", "total": 120}, "store": "eu-7", "ip": "2001:db8::7"}}"#;

#[test]
fn a_matching_event_prints_match_and_exits_0() {
    let pattern = r#"{"source": ["shop.orders"], "detail": {"order": {"total": [{"numeric": [">", 100]}]},
        "ip": [{"cidr": "2001:db8::/32"}], "$or": [{"store": [{"prefix": "eu-"}]}, {"vip": [true]}]}}"#;
    let done = aloft(&["events", "test", pattern, EVENT]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(done.stdout, "match\n");
    assert_eq!(done.stderr, "");
}

#[test]
fn an_event_that_does_not_match_prints_no_match_and_exits_1() {
    let done = aloft(&["events", "test", r#"{"source": ["shop.returns"]}"#, EVENT]);
    assert_eq!(done.code, Some(1), "{done:?}");
    assert_eq!(done.stdout, "no match\n");
    let done = aloft(&[
        "events",
        "test",
        r#"{"source": ["shop.returns"]}"#,
        EVENT,
        "--output",
        "json",
    ]);
    assert_eq!(done.code, Some(1), "{done:?}");
    let printed: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(printed, json!({"matched": false, "input": null}));
}

#[test]
fn json_output_carries_the_mapped_input_or_the_whole_event() {
    let pattern = r#"{"source": ["shop.orders"]}"#;
    let done = aloft(&["events", "test", pattern, EVENT, "--output", "json"]);
    assert_eq!(done.code, Some(0), "{done:?}");
    let printed: Value = serde_json::from_str(&done.stdout).expect("json");
    let event: Value = serde_json::from_str(EVENT).expect("json");
    assert_eq!(printed, json!({"matched": true, "input": event}));

    let template = r#"{"order": "$.detail.order.id", "store": "$.detail.store", "none": "$.detail.x", "n": 1}"#;
    let done = aloft(&[
        "events", "test", pattern, EVENT, "--input", template, "--output", "json",
    ]);
    assert_eq!(done.code, Some(0), "{done:?}");
    let printed: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(
        printed,
        json!({"matched": true, "input": {"order": "o-7", "store": "eu-7", "none": null, "n": 1}})
    );
}

#[test]
fn text_output_previews_the_mapped_input_after_match() {
    let done = aloft(&[
        "events",
        "test",
        r#"{"source": ["shop.orders"]}"#,
        EVENT,
        "--input",
        r#"{"order": "$.detail.order.id"}"#,
    ]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert_eq!(done.stdout, "match\n{\n  \"order\": \"o-7\"\n}\n");
}

#[test]
fn pattern_event_and_template_files_are_read_yaml_allowed_for_the_pattern() {
    let dir = folder("files");
    let pattern = write(
        &dir,
        "pattern.yaml",
        "source: [shop.orders]\ndetail:\n  store: [{anything-but: {prefix: us-}}]\n",
    );
    let event = write(&dir, "event.json", EVENT);
    let template = write(&dir, "input.yaml", "order: $.detail.order.id\n");
    let done = aloft(&[
        "events", "test", &pattern, &event, "--input", &template, "--output", "json",
    ]);
    assert_eq!(done.code, Some(0), "{done:?}");
    let printed: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(printed, json!({"matched": true, "input": {"order": "o-7"}}));

    let yaml_event = write(&dir, "event.yaml", "source: shop.orders\n");
    let done = aloft(&["events", "test", &pattern, &yaml_event]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(done.stderr.starts_with("error: EVENT: "), "{done:?}");
    assert!(done.stderr.contains("not JSON"), "{done:?}");
}

#[test]
fn an_invalid_pattern_exits_2_naming_the_argument_place_and_value() {
    let done = aloft(&[
        "events",
        "test",
        r#"{"detail": {"amount": [{"numeric": [">", "ten"]}]}}"#,
        EVENT,
    ]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert_eq!(done.stdout, "");
    assert_eq!(
        done.stderr,
        "error: PATTERN at detail.amount[0].numeric: numeric [\">\",\"ten\"] in `detail.amount` \
         is not a comparison: \"ten\" is not a number\n"
    );
    let done = aloft(&["events", "test", r#"{"source": "shop.orders"}"#, EVENT]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr.starts_with("error: PATTERN at source: "),
        "{done:?}"
    );
    assert!(done.stderr.contains("not \"shop.orders\""), "{done:?}");
    let done = aloft(&["events", "test", "{}", EVENT]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr
            .starts_with("error: PATTERN: an event pattern needs"),
        "{done:?}"
    );
    let done = aloft(&["events", "test", "{source", EVENT]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr.starts_with("error: PATTERN is not JSON"),
        "{done:?}"
    );
}

#[test]
fn an_invalid_event_or_template_exits_2_naming_it() {
    let pattern = r#"{"source": ["shop.orders"]}"#;
    let done = aloft(&["events", "test", pattern, "[1, 2]"]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert_eq!(
        done.stderr,
        "error: EVENT: an event is a JSON object, not [1,2]\n"
    );
    let done = aloft(&["events", "test", pattern, "{\"id\": "]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr.starts_with("error: EVENT is not JSON"),
        "{done:?}"
    );
    let done = aloft(&[
        "events",
        "test",
        pattern,
        EVENT,
        "--input",
        r#"{"a": "$.detail..id"}"#,
    ]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr
            .starts_with("error: --input at a: input value \"$.detail..id\" is not a path"),
        "{done:?}"
    );
    let done = aloft(&["events", "test", "@/nonexistent/pattern.json", EVENT]);
    assert_eq!(done.code, Some(2), "{done:?}");
    assert!(
        done.stderr
            .starts_with("error: PATTERN: cannot read /nonexistent/pattern.json")
    );
}

#[test]
fn validate_reports_a_bad_event_pattern_at_its_line_and_column() {
    let dir = folder("validate");
    let file = dir.join("wf.yaml");
    std::fs::write(
        &file,
        "name: orders\nevents:\n  - pattern:\n      source: [shop.orders]\n      \
         detail: {ip: [{cidr: 10.0.0.0/33}]}\n    input: {id: $.detail.id}\n\
         tasks:\n  a: {run: {pass: {}}}\n",
    )
    .expect("write");
    let file = file.display().to_string();
    let done = aloft(&["validate", &file]);
    assert_eq!(done.code, Some(1), "{done:?}");
    assert_eq!(
        done.stderr,
        format!(
            "{file}:5:28: cidr \"10.0.0.0/33\" in `detail.ip` is not an address block: prefix \
             length \"33\" is not a number from 0 to 32\n"
        )
    );
}

#[test]
fn the_order_placed_example_validates_and_matches_its_sample_event() {
    let workflow = example("order-placed/workflow.yaml").display().to_string();
    let done = aloft(&["validate", &workflow]);
    assert_eq!(done.code, Some(0), "{done:?}");
    assert!(done.stderr.contains(": ok (2 tasks)"), "{done:?}");

    // The example's own trigger, as the trigger function would apply it.
    let definition = aloft_core::source::load_path(Path::new(&workflow)).expect("valid");
    let trigger = &definition.events[0];
    let pattern = trigger.pattern.to_string();
    let template = trigger
        .input
        .as_ref()
        .expect("an input template")
        .to_string();
    let event = format!("@{}", example("order-placed/event.json").display());
    let done = aloft(&[
        "events", "test", &pattern, &event, "--input", &template, "--output", "json",
    ]);
    assert_eq!(done.code, Some(0), "{done:?}");
    let printed: Value = serde_json::from_str(&done.stdout).expect("json");
    assert_eq!(
        printed,
        json!({"matched": true, "input":
            {"order": "o-20261204-0042", "store": "EU-7", "total": 84.5, "currency": "EUR"}})
    );
}

#[test]
fn events_send_stores_an_event_once_and_refuses_one_without_id() {
    let dir = folder("send");
    let db = dir.join("aloft.db");
    let db = db.to_str().expect("utf-8 path");
    let event = write(&dir, "event.json", EVENT);

    let first = aloft(&["events", "send", &event, "--db", db, "--output", "json"]);
    assert_eq!(first.code, Some(0), "{first:?}");
    let printed: Value = serde_json::from_str(&first.stdout).expect("json");
    assert_eq!(printed, json!({"id": "e-1", "stored": true}));

    let again = aloft(&["events", "send", EVENT, "--db", db]);
    assert_eq!(again.code, Some(0), "{again:?}");
    assert_eq!(again.stdout, "e-1\n");
    assert!(again.stderr.contains("already holds"), "{again:?}");
    let json_again = aloft(&["events", "send", EVENT, "--db", db, "--output", "json"]);
    let printed: Value = serde_json::from_str(&json_again.stdout).expect("json");
    assert_eq!(printed, json!({"id": "e-1", "stored": false}));

    let no_id = aloft(&["events", "send", r#"{"source": "shop.orders"}"#, "--db", db]);
    assert_eq!(no_id.code, Some(2), "{no_id:?}");
    assert_eq!(no_id.stdout, "");
    assert!(
        no_id.stderr.contains("EVENT has no text field `id`"),
        "{no_id:?}"
    );
}
