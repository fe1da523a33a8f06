//! Each function's role in `infra/template.yaml` allows every call its handler makes.
//!
//! moto does not enforce IAM, so a missing permission would otherwise show only in a
//! real account. Here the four handlers run on the local stack, each through a backend
//! whose requests are counted, over runs that use what calls AWS (overlap policies,
//! run and task slots, a pool, `for_each`, a retry, a timeout, lifecycle events), and
//! each call is checked against the actions its function's policies grant.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use serde_json::json;
use yaml_rust2::{Yaml, YamlLoader};

use aloft_aws::dev::{PollOptions, poll_once};
use aloft_aws::{Backend, CallCounter, LocalCommands, Settings, SqsQueue};
use aloft_core::source::load_str;
use aloft_engine::message::{QueueName, TaskKey};
use aloft_engine::ports::{Job, StartError, Store};
use aloft_tests::aws::{LocalAws, Resources};

/// Longest wait for the runs to settle. A guard against a hang, never a measurement.
const GUARD: Duration = Duration::from_secs(180);

const WORKFLOW: &str = "
name: iam
schedule: {expression: rate(1 day), overlap: buffer_one}
concurrency: {max_runs: 2, max_tasks: 3}
pools: {db: 1}
tasks:
  list: {run: {pass: {result: {items: [1, 2, 3]}}}}
  each:
    depends_on: [list]
    for_each: $.list.items
    max_concurrency: 2
    pool: db
    run: {command: [answers]}
  flaky:
    depends_on: [list]
    run: {command: [fails-once]}
    retry: {max_attempts: 2, initial_delay: 1s}
  quiet:
    depends_on: [list]
    run: {command: [never-answers]}
    timeout: 2s
  join:
    depends_on: [each, flaky, quiet]
    trigger_rule: all_done
    run: {pass: {}}
";

/// The functions, by their logical id in the template.
const FUNCTIONS: [&str; 4] = [
    "TriggerFunction",
    "PlanFunction",
    "DispatchFunction",
    "CompleteFunction",
];

/// `command` tasks answered as a Lambda destination would answer them: `answers` at
/// once, `fails-once` with an error on its first attempt, `never-answers` never.
#[derive(Debug)]
struct Answering;

impl LocalCommands for Answering {
    fn start(&self, job: Job, results: SqsQueue) -> BoxFuture<'static, Result<(), StartError>> {
        use aloft_aws::destination::DestinationRecord;
        Box::pin(async move {
            let program = match &job.run {
                aloft_core::definition::RunSpec::Command(args) => args[0].clone(),
                other => panic!("not a command: {other:?}"),
            };
            let (error, payload) = match program.as_str() {
                "never-answers" => return Ok(()),
                "fails-once" if job.attempt == 1 => (
                    Some("Unhandled".to_owned()),
                    json!({"errorType": "Flaky", "errorMessage": "first attempt"}),
                ),
                _ => (None, json!({"done": job.key.to_string()})),
            };
            let record = DestinationRecord::ended_now(
                "arn:aws:lambda:us-east-1:123456789012:function:aloft-task-answers",
                format!("{}/{}/{}", job.run_id, job.key, job.attempt),
                serde_json::from_slice(&job.input).expect("a task document"),
                200,
                error,
                payload,
            );
            results.send_record(&record).await.map_err(StartError::Port)
        })
    }

    fn cancel(&self, _run_id: &str, _key: &TaskKey, _attempt: u32) {}
}

async fn counted(stack: &LocalAws, resources: &Resources, counter: CallCounter) -> Backend {
    let vars = resources.vars.clone();
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("settings");
    Backend::from_config(settings, &stack.sdk_config().await, Some(counter))
}

/// The IAM action a counted request needs, or `None` for the requests Lambda's SQS
/// event source mapping makes for the function (receive and delete).
fn iam_action(service: &str, operation: &str) -> Option<String> {
    match (service, operation) {
        ("SQS", "ReceiveMessage" | "DeleteMessage" | "DeleteMessageBatch") => None,
        // SendMessageBatch is authorized as sqs:SendMessage.
        ("SQS", "SendMessageBatch") => Some("sqs:SendMessage".into()),
        ("SQS", op) => Some(format!("sqs:{op}")),
        // A transaction is authorized item by item, by the action of each; aloft's
        // transactions hold updates only (a task and its run's or parent's counters).
        ("DynamoDB", "TransactWriteItems") => Some("dynamodb:UpdateItem".into()),
        ("DynamoDB", op) => Some(format!("dynamodb:{op}")),
        ("EventBridge", op) => Some(format!("events:{op}")),
        ("Lambda", "Invoke") => Some("lambda:InvokeFunction".into()),
        (other, op) => panic!("a request to {other} {op} that this test does not map"),
    }
}

/// The actions each function's policies allow, as written (some end in `*`), and the
/// resources of its DynamoDB statements.
fn template_grants() -> BTreeMap<String, (Vec<String>, Vec<String>)> {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../infra/template.yaml");
    let text = std::fs::read_to_string(path).expect("the template");
    let docs = YamlLoader::load_from_str(&text).expect("YAML");
    let resources = &docs[0]["Resources"];
    let statements_of = |document: &Yaml| -> Vec<(Vec<String>, Vec<String>)> {
        let list = |value: &Yaml| -> Vec<String> {
            match value {
                Yaml::Array(items) => items
                    .iter()
                    .filter_map(|i| i.as_str().map(str::to_owned))
                    .collect(),
                Yaml::String(one) => vec![one.clone()],
                _ => Vec::new(),
            }
        };
        document["Statement"]
            .as_vec()
            .expect("statements")
            .iter()
            .filter(|s| s["Effect"].as_str() == Some("Allow"))
            .map(|s| (list(&s["Action"]), list(&s["Resource"])))
            .collect()
    };
    let mut grants = BTreeMap::new();
    for function in FUNCTIONS {
        let mut actions = Vec::new();
        let mut table_resources = Vec::new();
        let policies = resources[function]["Properties"]["Policies"]
            .as_vec()
            .unwrap_or_else(|| panic!("{function} has no Policies"));
        for policy in policies {
            match policy {
                // `!Ref InvokeTasksPolicy`: the loader keeps the name.
                Yaml::String(name) => {
                    let document = &resources[name.as_str()]["Properties"]["PolicyDocument"];
                    actions.extend(statements_of(document).into_iter().flat_map(|(a, _)| a));
                }
                Yaml::Hash(_) if policy["Statement"].as_vec().is_some() => {
                    for (a, r) in statements_of(policy) {
                        if a.iter().any(|a| a.starts_with("dynamodb:")) {
                            table_resources.extend(r);
                        }
                        actions.extend(a);
                    }
                }
                Yaml::Hash(map) => {
                    let template = map.keys().next().and_then(Yaml::as_str).unwrap_or("");
                    // What SAM's policy templates grant.
                    actions.push(
                        match template {
                            "SQSSendMessagePolicy" => "sqs:SendMessage*",
                            "EventBridgePutEventsPolicy" => "events:PutEvents",
                            other => panic!("{function}: policy template {other} not known here"),
                        }
                        .into(),
                    );
                }
                other => panic!("{function}: a policy this test cannot read: {other:?}"),
            }
        }
        grants.insert(function.to_owned(), (actions, table_resources));
    }
    grants
}

fn allows(granted: &[String], action: &str) -> bool {
    granted.iter().any(|g| match g.strip_suffix('*') {
        Some(prefix) => action.starts_with(prefix),
        None => g == action,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_call_a_handler_makes_is_allowed_by_its_functions_role() {
    let stack = LocalAws::start();
    let resources = stack.create("iam", 5, 1);
    let counters: BTreeMap<&str, CallCounter> =
        FUNCTIONS.iter().map(|f| (*f, CallCounter::new())).collect();
    let mut backends = BTreeMap::new();
    for (function, counter) in &counters {
        backends.insert(
            *function,
            counted(&stack, &resources, counter.clone()).await,
        );
    }
    let setup = counted(&stack, &resources, CallCounter::new()).await;
    let definition = load_str("iam.yaml", WORKFLOW).unwrap_or_else(|p| panic!("{p}"));
    setup
        .store()
        .put_workflow(&definition)
        .await
        .expect("store the workflow");
    let commands: Arc<dyn LocalCommands> = Arc::new(Answering);
    let engine = |function: &str| backends[function].engine_with(Some(commands.clone()));
    let trigger = engine("TriggerFunction");

    // The trigger as the function is invoked: a first run, one buffered behind it, and
    // one that cancels both.
    let mut runs = Vec::new();
    for (key, overlap) in [("a", None), ("b", None), ("c", Some("cancel_running"))] {
        let mut request = json!({"workflow": "iam", "input": {}, "idempotency_key": key});
        if let Some(overlap) = overlap {
            request["overlap"] = json!(overlap);
        }
        let parsed = aloft_aws::trigger::parse(&request).expect("a direct request");
        let started = aloft_aws::trigger::start(&trigger, parsed)
            .await
            .expect("started");
        runs.push(started.run_id);
    }

    let (plan, dispatch, complete) = (
        engine("PlanFunction"),
        engine("DispatchFunction"),
        engine("CompleteFunction"),
    );
    let store = setup.store();
    let began = Instant::now();
    let options = PollOptions { wait_seconds: 0 };
    loop {
        let mut received = 0;
        received += poll_once(&backends["PlanFunction"], &plan, QueueName::Plan, options)
            .await
            .unwrap_or(0);
        received += poll_once(
            &backends["DispatchFunction"],
            &dispatch,
            QueueName::Dispatch,
            options,
        )
        .await
        .unwrap_or(0);
        received += poll_once(
            &backends["CompleteFunction"],
            &complete,
            QueueName::Complete,
            options,
        )
        .await
        .unwrap_or(0);
        let mut settled = true;
        for run_id in &runs {
            let run = store.run(run_id).await.expect("read").expect("the run");
            settled &= run.status.is_settled();
        }
        if settled {
            break;
        }
        assert!(began.elapsed() < GUARD, "runs still going after {GUARD:?}");
        if received == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let last = store.run(&runs[2]).await.expect("read").expect("run c");
    // `quiet` timed out, so the run failed; what matters is that it got that far.
    assert_eq!(last.status.as_str(), "failed", "run c");

    let grants = template_grants();
    let mut denied = Vec::new();
    for (function, counter) in &counters {
        let (granted, table_resources) = &grants[*function];
        let called: BTreeSet<String> = counter
            .snapshot()
            .keys()
            .filter_map(|(service, op)| iam_action(service, op))
            .collect();
        for action in &called {
            if !allows(granted, action) {
                denied.push(format!("{function}: {action}"));
            }
        }
        // Queries of the `active` index need the index's ARN, not only the table's.
        if called.contains("dynamodb:Query") {
            assert!(
                table_resources.iter().any(|r| r.ends_with("/index/active")),
                "{function} queries but its role names no index: {table_resources:?}"
            );
        }
    }
    assert!(
        denied.is_empty(),
        "calls the template does not allow: {denied:?}"
    );

    // The runs went through what the test is for: not a vacuous pass.
    let made = |function: &str, service: &str, op: &str| {
        counters[function]
            .snapshot()
            .contains_key(&(service.to_owned(), op.to_owned()))
    };
    for (function, service, op) in [
        ("TriggerFunction", "DynamoDB", "Query"),
        ("TriggerFunction", "DynamoDB", "UpdateItem"),
        ("TriggerFunction", "EventBridge", "PutEvents"),
        ("PlanFunction", "DynamoDB", "PutItem"),
        ("DispatchFunction", "DynamoDB", "UpdateItem"),
        ("CompleteFunction", "DynamoDB", "TransactWriteItems"),
        ("CompleteFunction", "SQS", "SendMessageBatch"),
        ("CompleteFunction", "EventBridge", "PutEvents"),
    ] {
        assert!(
            made(function, service, op),
            "{function} made no {service} {op}"
        );
    }
}
