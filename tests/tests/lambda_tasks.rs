//! `lambda` tasks end to end: the real `aloft` binary calls a real lambda_runtime function
//! (`zone-summary`, crate `statemachines/examples/lambda`) served by cargo-lambda's
//! `cargo lambda watch` on 127.0.0.1, through the Lambda Invoke API.
//!
//! cargo-lambda comes from PyPI into `.venv/` at the workspace root:
//! `scripts/lambda-emulator install` puts it there and `scripts/test` runs that first.
//! Without it these tests fail and say so; they never pass by skipping.

use std::path::PathBuf;

use serde_json::{Value, json};

use aloft_tests::emulator::Emulator;
use aloft_tests::{Finished, Sandbox, examples_dir, table, task, task_table};

fn example_workflow() -> PathBuf {
    examples_dir().join("lambda").join("workflow.yaml")
}

/// `aloft run` of the example workflow with `extra` arguments, its AWS SDK aimed at the
/// emulator with dummy credentials and no shared AWS config of the machine.
fn run_example(sandbox: &Sandbox, emulator: &Emulator, extra: &[&str]) -> (Finished, Value) {
    let workflow = example_workflow();
    let workflow = workflow.to_str().expect("a UTF-8 path");
    let mut args = vec!["run", workflow, "--output", "json"];
    args.extend_from_slice(extra);

    let mut command = sandbox.command(&args);
    command
        .env("AWS_ENDPOINT_URL", emulator.endpoint())
        .env("AWS_REGION", "us-east-1")
        .env("AWS_ACCESS_KEY_ID", "aloft-test")
        .env("AWS_SECRET_ACCESS_KEY", "aloft-test")
        .env("AWS_CONFIG_FILE", sandbox.path().join("no-aws-config"))
        .env(
            "AWS_SHARED_CREDENTIALS_FILE",
            sandbox.path().join("no-aws-credentials"),
        )
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_SESSION_TOKEN");
    let done = sandbox.spawn(command, args.join(" ")).wait();
    done.assert_no_panic();
    let run = done.json();
    (done, run)
}

#[test]
fn lambda_task_output_is_the_function_response() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let (done, run) = run_example(&sandbox, &emulator, &[]);
    done.assert_code(0);

    assert_eq!(run["workflow"], "lambda-zones");
    assert_eq!(run["status"], "succeeded");
    assert_eq!(
        task_table(&run),
        table(&[("zones", "succeeded", 1), ("summary", "succeeded", 1)])
    );
    let summary = task(&run, "summary");
    assert_eq!(summary["error"], Value::Null);
    assert_eq!(
        summary["output"],
        json!({
            "zones": 12,
            "repeats_ignored": 1,
            "regions": 7,
            "by_region": {"Africa": 2, "America": 4, "Asia": 2, "Australia": 1,
                          "Europe": 1, "Indian": 1, "Pacific": 1},
            "largest_region": "America",
        })
    );
}

/// A function error fails the task with the function's `errorType` as its kind and
/// its `errorMessage` as the message, and the run fails (the policy retries only
/// timeouts, so there is one attempt).
#[test]
fn lambda_function_error_fails_the_task_with_its_error_type() {
    let emulator = Emulator::start();
    let sandbox = Sandbox::new();
    let input = r#"{"zones": ["Mars/Olympus_Mons"]}"#;
    let (done, run) = run_example(&sandbox, &emulator, &["--input", input]);
    done.assert_code(1);

    assert_eq!(run["status"], "failed");
    assert_eq!(
        task_table(&run),
        table(&[("zones", "succeeded", 1), ("summary", "failed", 1)])
    );
    let summary = task(&run, "summary");
    assert_eq!(summary["output"], Value::Null);
    assert_eq!(
        summary["error"],
        json!({
            "kind": "UnknownRegion",
            "message": "zone-summary: input.zones[0] is Mars/Olympus_Mons, whose region is \
                        not one of Africa, America, Antarctica, Arctic, Asia, Atlantic, \
                        Australia, Etc, Europe, Indian, Pacific",
        })
    );
}
