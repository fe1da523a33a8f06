//! The function binaries themselves, under a real Lambda runtime: `cargo lambda watch`
//! serves `aloft-trigger` and `aloft-plan` behind the Invoke API on 127.0.0.1, with the
//! environment the SAM template gives them, against moto's server.

use std::time::Duration;

use serde_json::{Value, json};

use aloft_tests::aws::{LocalAws, Resources};
use aloft_tests::emulator::{Emulator, workspace_root};
use aloft_tests::{Sandbox, examples_dir};

fn function_env(resources: &Resources) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = resources
        .vars
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    env.extend(
        [
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_CONFIG_FILE", "/dev/null"),
            ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    );
    env
}

/// Receive the one message waiting on a queue, with its receive count.
async fn receive(resources: &Resources, queue: &str) -> (String, String, String) {
    let config = aloft_tests::aws::sdk_config(resources.get("AWS_ENDPOINT_URL")).await;
    let sqs = aws_sdk_sqs::Client::new(&config);
    let got = sqs
        .receive_message()
        .queue_url(resources.get(queue))
        .wait_time_seconds(5)
        .message_system_attribute_names(
            aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount,
        )
        .send()
        .await
        .expect("receive");
    let message = got
        .messages
        .unwrap_or_default()
        .pop()
        .expect("a message on the queue");
    let count = message
        .attributes
        .as_ref()
        .and_then(|a| {
            a.get(&aws_sdk_sqs::types::MessageSystemAttributeName::ApproximateReceiveCount)
        })
        .cloned()
        .unwrap_or_default();
    (
        message.message_id.unwrap_or_default(),
        message.body.unwrap_or_default(),
        count,
    )
}

/// An SQS event as Lambda's event source mapping builds it.
fn sqs_event(records: &[(&str, &str, &str)], queue_arn: &str) -> Value {
    json!({
        "Records": records.iter().map(|(id, body, count)| json!({
            "messageId": id,
            "receiptHandle": format!("handle-{id}"),
            "body": body,
            "attributes": {
                "ApproximateReceiveCount": count,
                "SentTimestamp": "1796349600000",
                "SenderId": "AIDAEXAMPLE",
                "ApproximateFirstReceiveTimestamp": "1796349600100"
            },
            "messageAttributes": {},
            "md5OfBody": "",
            "eventSource": "aws:sqs",
            "eventSourceARN": queue_arn,
            "awsRegion": "us-east-1"
        })).collect::<Vec<_>>()
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trigger_and_plan_functions_serve_their_events() {
    let stack = LocalAws::start();
    let resources = stack.create("functions", 5, 30);
    let sandbox = Sandbox::new();
    let example = examples_dir().join("etl/workflow.yaml");
    let mut put = sandbox.bare_command(&["workflows", "put", example.to_str().expect("path")]);
    resources.apply(&mut put);
    sandbox
        .spawn(put, "workflows put".into())
        .wait()
        .assert_code(0);

    let env = function_env(&resources);
    let root = workspace_root();
    let trigger = Emulator::serve(
        &root.join("functions/trigger/Cargo.toml"),
        "aloft-trigger",
        &env,
        r#"{"workflow": "timezone-etl", "idempotency_key": "probe"}"#,
    );

    // A direct request with a key: the same run however often it comes.
    let request = r#"{"workflow": "timezone-etl", "input": {"day": 4}, "idempotency_key": "k1"}"#;
    let (status, first) = trigger.invoke(request);
    assert_eq!(status, 200, "{first}");
    let first: Value = serde_json::from_str(&first).expect("JSON answer");
    let run_id = first["run_id"].as_str().expect("run_id").to_owned();
    assert_eq!(first["created"], true);
    let (_, again) = trigger.invoke(request);
    let again: Value = serde_json::from_str(&again).expect("JSON answer");
    assert_eq!(
        again,
        json!({"run_id": run_id, "created": false, "admission": "started"})
    );

    // A request for a workflow never put is an error document naming it.
    let (status, error) = trigger.invoke(r#"{"workflow": "nope"}"#);
    assert_ne!(status, 200);
    let error: Value = serde_json::from_str(&error).expect("JSON error");
    assert_eq!(error["errorType"], "UnknownWorkflow");
    assert!(
        error["errorMessage"]
            .as_str()
            .unwrap_or_default()
            .contains("\"nope\""),
        "{error}"
    );

    // The probe's run and k1's run each sent one plan message; take k1's.
    let mut plan_message = None;
    for _ in 0..2 {
        let (id, body, count) = receive(&resources, "ALOFT_PLAN_QUEUE_URL").await;
        let parsed: Value = serde_json::from_str(&body).expect("JSON body");
        if parsed["run_id"] == run_id.as_str() {
            plan_message = Some((id, body, count));
        }
    }
    let (id, body, count) = plan_message.expect("the run's plan message");

    let plan = Emulator::serve(
        &root.join("functions/plan/Cargo.toml"),
        "aloft-plan",
        &env,
        r#"{"Records": []}"#,
    );
    let event = sqs_event(
        &[(&id, &body, &count), ("garbage-1", "not a message", "1")],
        "arn:aws:sqs:us-east-1:123456789012:functions-plan",
    );
    let (status, answer) = plan.invoke(&event.to_string());
    assert_eq!(status, 200, "{answer}");
    let answer: Value = serde_json::from_str(&answer).expect("JSON answer");
    assert_eq!(
        answer,
        json!({"batchItemFailures": [{"itemIdentifier": "garbage-1"}]})
    );

    // The run started and its first task is ready, in the table.
    let mut show = sandbox.bare_command(&[
        "runs",
        "show",
        &run_id,
        "--backend",
        "aws",
        "--output",
        "json",
    ]);
    resources.apply(&mut show);
    let shown = sandbox.spawn(show, "runs show".into()).wait();
    shown.assert_code(0);
    let run = shown.json();
    assert_eq!(run["status"], "running");
    assert_eq!(run["input"], json!({"day": 4}));
    assert_eq!(run["idempotency_key"], "k1");
    assert_eq!(run["tasks"]["extract"]["status"], "ready");
    assert_eq!(run["tasks"]["transform"]["status"], "waiting");

    // Logs are JSON lines carrying the invoke's request id.
    std::thread::sleep(Duration::from_millis(200));
    let started = plan
        .log_text()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["message"] == "run started" && l["run_id"] == run_id.as_str())
        .unwrap_or_else(|| panic!("no JSON log line for the run's start:\n{}", plan.log_text()));
    assert_eq!(started["level"], "INFO");
    assert!(started["span"]["requestId"].is_string(), "{started}");
}
