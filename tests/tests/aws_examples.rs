//! The shipped examples end the same way on both backends: `aloft run` embedded, and
//! `aloft workflows put` + `aloft start --wait` on the AWS path (DynamoDB, SQS and
//! EventBridge on moto's server, handlers run by `aloft dev`, command tasks as local
//! processes, the `lambda` task by a real lambda_runtime function behind
//! `cargo lambda watch`). Same run status, same status and attempts per task, same
//! outputs.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use aloft_tests::aws::{LocalAws, Resources};
use aloft_tests::emulator::Emulator;
use aloft_tests::{Running, Sandbox, examples_dir, task_table};

/// Scratch folders (`.../runs/<run>/work`) differ between backends and runs: a path
/// inside one is compared by what follows it.
fn normalise(value: &Value) -> Value {
    match value {
        Value::String(text) => {
            let inside = text.find("/runs/").and_then(|runs| {
                let work = runs + text[runs..].find("/work")?;
                Some(format!("<work>{}", &text[work + "/work".len()..]))
            });
            inside.map_or_else(|| value.clone(), Value::String)
        }
        Value::Array(items) => Value::Array(items.iter().map(normalise).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), normalise(v))).collect())
        }
        other => other.clone(),
    }
}

fn outputs(run: &Value) -> Value {
    let tasks = run["tasks"].as_object().expect("tasks");
    Value::Object(
        tasks
            .iter()
            .map(|(name, task)| (name.clone(), normalise(&task["output"])))
            .collect(),
    )
}

fn with_lambda(command: &mut Command, emulator: Option<&Emulator>) {
    if let Some(emulator) = emulator {
        command
            .env("AWS_ENDPOINT_URL_LAMBDA", emulator.endpoint())
            .env("ALOFT_LAMBDA_DESTINATIONS", "emulate");
    }
}

/// `aloft dev` against the stack, in the background.
fn dev(sandbox: &Sandbox, resources: &Resources, emulator: Option<&Emulator>) -> Running {
    let mut command = sandbox.bare_command(&["dev", "--wait-seconds", "1"]);
    resources.apply(&mut command);
    with_lambda(&mut command, emulator);
    sandbox.spawn(command, "dev".into())
}

/// Both backends run `example`; their runs must agree.
fn compare(sandbox: &Sandbox, resources: &Resources, emulator: Option<&Emulator>, example: &str) {
    let folder = examples_dir().join(example);
    let file = folder.join("workflow.yaml");
    let file_text = file.to_str().expect("a UTF-8 path");

    let mut embedded = sandbox.command(&["run", file_text, "--output", "json"]);
    if let Some(emulator) = emulator {
        embedded
            .env("AWS_ENDPOINT_URL", emulator.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null");
    }
    let local = sandbox.spawn(embedded, format!("run {example}")).wait();
    local.assert_no_panic();
    let local = local.json();

    let name = workflow_name(&file);
    let folder_text = folder.to_str().expect("a UTF-8 path");
    let mut start = sandbox.bare_command(&[
        "start",
        &name,
        "--wait",
        "--output",
        "json",
        "--workdir",
        folder_text,
    ]);
    resources.apply(&mut start);
    let on_aws = sandbox.spawn(start, format!("start {name}")).wait();
    on_aws.assert_no_panic();
    let on_aws = on_aws.json();

    assert_eq!(on_aws["status"], local["status"], "{example}: run status");
    assert_eq!(task_table(&on_aws), task_table(&local), "{example}: tasks");
    assert_eq!(outputs(&on_aws), outputs(&local), "{example}: outputs");
    assert_eq!(on_aws["tags"], local["tags"], "{example}: tags");
}

fn workflow_name(file: &Path) -> String {
    let text = std::fs::read_to_string(file).expect("read the example");
    text.lines()
        .find_map(|l| l.strip_prefix("name: "))
        .expect("a name line")
        .trim()
        .to_owned()
}

fn put(sandbox: &Sandbox, resources: &Resources, examples: &[&str]) {
    let files: Vec<String> = examples
        .iter()
        .map(|e| {
            examples_dir()
                .join(e)
                .join("workflow.yaml")
                .display()
                .to_string()
        })
        .collect();
    let mut args = vec!["workflows", "put"];
    args.extend(files.iter().map(String::as_str));
    let mut command = sandbox.bare_command(&args);
    resources.apply(&mut command);
    let done = sandbox.spawn(command, "workflows put".into()).wait();
    done.assert_code(0);
    // Putting the same files again changes nothing: versions are content hashes.
    let mut again = sandbox.bare_command(&args);
    resources.apply(&mut again);
    let again = sandbox.spawn(again, "workflows put again".into()).wait();
    again.assert_code(0);
    let unchanged = again
        .stdout
        .lines()
        .filter(|l| l.ends_with("unchanged"))
        .count();
    assert_eq!(unchanged, examples.len(), "{}", again.stdout);
}

#[test]
fn command_examples_end_the_same_on_both_backends() {
    let stack = LocalAws::start();
    let resources = stack.create("examples", 5, 2);
    let sandbox = Sandbox::new();
    let examples = ["etl", "fan-in", "cleanup"];
    put(&sandbox, &resources, &examples);
    let dev = dev(&sandbox, &resources, None);
    for example in examples {
        compare(&sandbox, &resources, None, example);
    }
    dev.kill();
}

#[test]
fn the_lambda_example_ends_the_same_on_both_backends() {
    let emulator = Emulator::start();
    let stack = LocalAws::start();
    let resources = stack.create("lambda", 5, 2);
    let sandbox = Sandbox::new();
    put(&sandbox, &resources, &["lambda"]);
    let dev = dev(&sandbox, &resources, Some(&emulator));
    compare(&sandbox, &resources, Some(&emulator), "lambda");
    dev.kill();
}
