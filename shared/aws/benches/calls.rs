//! What the AWS backend costs per task, and how fast its functions start.
//!
//! `calls [WORKLOAD...]` (run by `scripts/bench-aws`, with the exports of
//! `scripts/aws-stack start` in the environment) runs each workload once on the local
//! stack: fresh resources from `scripts/aws-stack create`, the workflow stored as
//! `aloft workflows put` stores it (not counted), one run started the way the trigger
//! function starts it, and the plan, dispatch and complete queues polled with
//! [`poll_once`] (as `aloft dev` does) until the run has settled and the queues hold
//! nothing visible. Every HTTP request the SDK sends is counted by service and
//! operation ([`CallCounter`]); a second interceptor here reads each request and
//! response body to turn the requests into what AWS bills for them. It prints Markdown
//! tables: requests and billed units per task, by operation, and the orchestration cost
//! per million tasks at the list prices in [`PRICES`]. Workloads: etl, fan-in, cleanup
//! (the examples' DAGs with `pass` tasks), etl-lambda and fan-in-lambda (the examples
//! with their tasks answered as a Lambda destination would, see [`Answering`]), fan1000
//! (1 -> 998 -> 1) and foreach1000 (a `for_each` over 1,000 items).
//!
//! `calls startup NATIVE_DIR [ARM64_DIR]` starts each of the four function binaries in
//! NATIVE_DIR 20 times against a fake Lambda Runtime API on 127.0.0.1 and prints, per
//! function, the time from spawn to its first `GET .../invocation/next`, its resident
//! set at that moment, and the sizes of the binaries in NATIVE_DIR and (if given)
//! `ARM64_DIR/<function>/bootstrap`, as cargo-lambda lays them out.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aws_sdk_sqs::types::QueueAttributeName;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::interceptors::context::{
    AfterDeserializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, Metadata};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::{ConfigBag, Storable, StoreReplace};
use serde_json::{Map, Value, json};
use tokio::io::AsyncReadExt;

use aloft_aws::dev::{PollOptions, poll_once};
use aloft_aws::{Backend, CallCounter, Settings};
use aloft_core::definition::{PassSpec, RunSpec};
use aloft_core::{Definition, RunStatus, TaskState};
use aloft_engine::message::QueueName;
use aloft_engine::ports::Store;

// ---------------------------------------------------------------------------------------
// Prices and assumptions.

/// AWS list prices used for the cost columns, in US dollars.
#[derive(Debug)]
struct Prices {
    /// When and where these prices were read.
    as_of: &'static str,
    /// SQS standard queue, per million requests (a request is one 64 KB chunk of
    /// payload; a batch of up to 10 messages is one request).
    sqs_per_million_requests: f64,
    /// DynamoDB on-demand, per million write request units.
    dynamodb_per_million_wru: f64,
    /// DynamoDB on-demand, per million read request units.
    dynamodb_per_million_rru: f64,
    /// EventBridge custom events put on a bus, per million (64 KB chunks).
    eventbridge_per_million_events: f64,
    /// Lambda, per million requests (invocations).
    lambda_per_million_requests: f64,
    /// Lambda duration on arm64, per GB-second.
    lambda_arm64_per_gb_second: f64,
    /// Step Functions Standard workflows, per million state transitions.
    step_functions_standard_per_million_transitions: f64,
}

/// List prices as of 2026-12 (us-east-1).
const PRICES: Prices = Prices {
    as_of: "2026-12 (us-east-1)",
    sqs_per_million_requests: 0.40,
    dynamodb_per_million_wru: 0.625,
    dynamodb_per_million_rru: 0.125,
    eventbridge_per_million_events: 1.00,
    lambda_per_million_requests: 0.20,
    lambda_arm64_per_gb_second: 0.000_013_333_4,
    step_functions_standard_per_million_transitions: 25.0,
};

/// Assumed billed duration of one plan, dispatch, complete or trigger invoke.
const LAMBDA_MS_PER_INVOKE: f64 = 20.0;
/// Memory of each function (the SAM template's default, 128 MB), in GB.
const LAMBDA_MEMORY_GB: f64 = 128.0 / 1024.0;
/// Messages per invoke at most: the event source mappings' BatchSize in
/// infra/template.yaml, and what [`poll_once`] receives at once.
const BATCH_SIZE: u32 = 10;
/// One SQS or EventBridge billing chunk.
const CHUNK: usize = 64 * 1024;
/// One DynamoDB read request unit reads this much, strongly consistent.
const READ_UNIT: usize = 4 * 1024;
/// One DynamoDB write request unit writes this much.
const WRITE_UNIT: usize = 1024;
/// Longest a workload may take before the bench gives up. A guard, not a measurement.
const GUARD: Duration = Duration::from_secs(1800);
/// Launches per function for the start-up time.
const LAUNCHES: usize = 20;
/// The four functions.
const FUNCTIONS: [&str; 4] = [
    "aloft-trigger",
    "aloft-plan",
    "aloft-dispatch",
    "aloft-complete",
];
/// The queues, in the order they are polled.
const QUEUES: [QueueName; 3] = [QueueName::Plan, QueueName::Dispatch, QueueName::Complete];

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let result = match args.first().map(String::as_str) {
        Some("startup") => runtime.block_on(startup(&args[1..])),
        _ => runtime.block_on(calls(&args)),
    };
    if let Err(error) = result {
        eprintln!("calls: {error}");
        std::process::exit(1);
    }
}

// ---------------------------------------------------------------------------------------
// Workloads.

/// One workflow to run once.
#[derive(Debug)]
struct Workload {
    name: &'static str,
    /// What it is, for the table.
    what: &'static str,
    definition: Definition,
    /// Task attempts a successful run executes (`for_each` items count, their parent
    /// does not).
    tasks: u64,
    /// Tasks are `command` tasks answered at once by [`Answering`], standing in for
    /// Lambda functions whose destination sends each result to the complete queue;
    /// otherwise they are `pass` tasks.
    answered: bool,
}

/// Runs `command` tasks by sending their result, `null`, to the complete queue at
/// once: what a Lambda function's destination does when the function returns. Its
/// SendMessage is counted like aloft's own (the destination's delivery is billed as an
/// SQS request); the Invoke request itself is the task's own cost, not orchestration.
/// The timers are counted in full (the run's watchdog, and any attempt's own timeout
/// check): each task's timeout is cut to 3 s and the bench waits for them to arrive.
#[derive(Debug)]
struct Answering;

impl aloft_aws::LocalCommands for Answering {
    fn start(
        &self,
        job: aloft_engine::ports::Job,
        results: aloft_aws::SqsQueue,
    ) -> futures::future::BoxFuture<'static, Result<(), aloft_engine::ports::StartError>> {
        Box::pin(async move {
            // The result as the destination record of the function's invoke gives it:
            // ended now, started when the task document says.
            let record = aloft_aws::destination::DestinationRecord::ended_now(
                "arn:aws:lambda:us-east-1:123456789012:function:task",
                format!("{}/{}/{}", job.run_id, job.key, job.attempt),
                serde_json::from_slice(&job.input).unwrap_or(Value::Null),
                200,
                None,
                Value::Null,
            );
            let done = record.to_message().map_err(|e| {
                aloft_engine::ports::StartError::Port(aloft_engine::ports::PortError::terminal(
                    e.to_string(),
                ))
            })?;
            let sent = vec![aloft_engine::Outgoing::now(done)];
            aloft_engine::ports::Queue::send(&results, sent)
                .await
                .map_err(aloft_engine::ports::StartError::Port)
        })
    }

    fn cancel(&self, _run_id: &str, _key: &aloft_engine::TaskKey, _attempt: u32) {}
}

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .expect("the workspace root")
}

fn load(name: &str, text: &str) -> Result<Definition, String> {
    aloft_core::source::load_str(name, text).map_err(|problems| format!("{problems}"))
}

/// An example's workflow as written.
fn example(root: &Path, folder: &str) -> Result<Definition, String> {
    let path = root
        .join("statemachines/examples")
        .join(folder)
        .join("workflow.yaml");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    load(&path.display().to_string(), &text)
}

/// An example's workflow with every task's `run` replaced by a `pass` that outputs null:
/// the same names, dependencies, trigger rules, retries, timeouts, concurrency, deadline
/// and tags.
fn example_as_pass(root: &Path, folder: &str) -> Result<Definition, String> {
    let mut definition = example(root, folder)?;
    for task in definition.tasks.values_mut() {
        task.run = RunSpec::Pass(PassSpec::default());
    }
    // Loaded again from its JSON, so that the changed definition passes validation too.
    let json = serde_json::to_string(&definition).map_err(|e| e.to_string())?;
    load(&format!("{folder} as pass tasks"), &json)
}

/// An example's workflow as it is, its tasks answered by [`Answering`], each with a
/// timeout of 3 s so that the run's watchdog and any timeout check arrive while the
/// bench watches. (At 1 s the watchdog's first leg would fall within its 1 s margin and
/// every attempt would send its own check, unlike runs whose timeouts are minutes.)
fn example_answered(root: &Path, folder: &str) -> Result<Definition, String> {
    let mut definition = example(root, folder)?;
    definition.name = format!("{}-answered", definition.name);
    for task in definition.tasks.values_mut() {
        task.timeout = Some(aloft_core::Duration::from_millis(3000));
    }
    let json = serde_json::to_string(&definition).map_err(|e| e.to_string())?;
    load(&format!("{folder} with answered tasks"), &json)
}

/// A chain of `n` tasks answered like Lambda functions: what one more task of a run
/// costs, with the run's fixed costs spread thin.
fn chain_answered(n: usize) -> Result<Definition, String> {
    let mut tasks = Map::new();
    for i in 0..n {
        let mut task = json!({"run": {"command": ["answered"]}, "timeout": "3s"});
        if i > 0 {
            task["depends_on"] = json!([format!("t{:02}", i - 1)]);
        }
        tasks.insert(format!("t{i:02}"), task);
    }
    load(
        &format!("chain{n}-lambda"),
        &json!({"name": format!("bench-chain{n}-answered"), "tasks": tasks}).to_string(),
    )
}

fn fan(n: usize) -> Result<Definition, String> {
    let mut tasks = Map::new();
    tasks.insert("root".into(), json!({"run": {"pass": {}}}));
    let middle: Vec<String> = (0..n).map(|i| format!("f{i:04}")).collect();
    for name in &middle {
        tasks.insert(
            name.clone(),
            json!({"depends_on": ["root"], "run": {"pass": {}}}),
        );
    }
    tasks.insert(
        "sink".into(),
        json!({"depends_on": middle, "run": {"pass": {}}}),
    );
    load(
        "fan1000",
        &json!({"name": "bench-fan1000", "tasks": tasks}).to_string(),
    )
}

fn for_each(n: usize) -> Result<Definition, String> {
    let items: Vec<usize> = (0..n).collect();
    let doc = json!({
        "name": "bench-foreach1000",
        "tasks": {
            "list": {"run": {"pass": {"result": {"items": items}}}},
            "each": {"depends_on": ["list"], "for_each": "$.list.items", "run": {"pass": {}}}
        }
    });
    load("foreach1000", &doc.to_string())
}

fn workloads(root: &Path, wanted: &[String]) -> Result<Vec<Workload>, String> {
    let all = [
        "etl",
        "fan-in",
        "cleanup",
        "etl-lambda",
        "fan-in-lambda",
        "chain20-lambda",
        "chain40-lambda",
        "fan1000",
        "foreach1000",
    ];
    if let Some(unknown) = wanted.iter().find(|w| !all.contains(&w.as_str())) {
        return Err(format!(
            "unknown workload {unknown}; known: {}",
            all.join(", ")
        ));
    }
    let mut out = Vec::new();
    for name in all {
        if !wanted.is_empty() && !wanted.iter().any(|w| w == name) {
            continue;
        }
        let (what, definition, tasks) = match name {
            "etl" => (
                "etl example (timezone-etl): 4-task chain",
                example_as_pass(root, "etl")?,
                4,
            ),
            "fan-in" => (
                "fan-in example (zone-stats): 1 -> 4 -> 1, max_runs 1, max_tasks 4",
                example_as_pass(root, "fan-in")?,
                6,
            ),
            "cleanup" => (
                "cleanup example (checked-export): 4 tasks, cleanup always",
                example_as_pass(root, "cleanup")?,
                4,
            ),
            "etl-lambda" => (
                "etl example, tasks answered as a Lambda destination would",
                example_answered(root, "etl")?,
                4,
            ),
            "fan-in-lambda" => (
                "fan-in example, tasks answered as a Lambda destination would",
                example_answered(root, "fan-in")?,
                6,
            ),
            "chain20-lambda" => (
                "20-task chain, tasks answered as a Lambda destination would",
                chain_answered(20)?,
                20,
            ),
            // With chain20-lambda: what one more task costs, the run's own costs being
            // the same in both (the difference of their totals, divided by 20).
            "chain40-lambda" => (
                "40-task chain, tasks answered as a Lambda destination would",
                chain_answered(40)?,
                40,
            ),
            "fan1000" => ("1 -> 998 -> 1 pass tasks", fan(998)?, 1000),
            _ => (
                "1 pass task -> for_each over 1,000 items",
                for_each(1000)?,
                1001,
            ),
        };
        out.push(Workload {
            name,
            what,
            definition,
            tasks,
            answered: name.ends_with("-lambda"),
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// What AWS bills for each request.

/// (service, operation), as the SDK names them.
type Op = (String, String);

/// How an operation is billed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meter {
    /// DynamoDB read request units.
    Rru,
    /// DynamoDB write request units.
    Wru,
    /// SQS requests (64 KB chunks).
    Sqs,
    /// EventBridge events (64 KB chunks of an entry).
    Events,
    /// Lambda API requests.
    Lambda,
    /// Anything else: counted, not priced.
    Other,
}

fn meter(op: &Op) -> Meter {
    match (op.0.as_str(), op.1.as_str()) {
        ("DynamoDB", "GetItem" | "BatchGetItem" | "Query" | "Scan" | "TransactGetItems") => {
            Meter::Rru
        }
        ("DynamoDB", _) => Meter::Wru,
        ("SQS", _) => Meter::Sqs,
        ("EventBridge", _) => Meter::Events,
        ("Lambda", _) => Meter::Lambda,
        _ => Meter::Other,
    }
}

fn meter_unit(meter: Meter) -> &'static str {
    match meter {
        Meter::Rru => "RRU",
        Meter::Wru => "WRU",
        Meter::Sqs => "requests",
        Meter::Events => "events",
        Meter::Lambda => "requests",
        Meter::Other => "requests",
    }
}

/// Dollars per billed unit.
fn unit_price(meter: Meter) -> f64 {
    let per_million = match meter {
        Meter::Rru => PRICES.dynamodb_per_million_rru,
        Meter::Wru => PRICES.dynamodb_per_million_wru,
        Meter::Sqs => PRICES.sqs_per_million_requests,
        Meter::Events => PRICES.eventbridge_per_million_events,
        Meter::Lambda => PRICES.lambda_per_million_requests,
        Meter::Other => 0.0,
    };
    per_million / 1e6
}

/// Operations made by Lambda's event source mapping in the cloud, by `poll_once` here.
fn is_polling(op: &Op) -> bool {
    op.0 == "SQS" && matches!(op.1.as_str(), "ReceiveMessage" | "DeleteMessageBatch")
}

fn chunks(bytes: usize, size: usize) -> f64 {
    bytes.div_ceil(size).max(1) as f64
}

/// The size DynamoDB gives an attribute value, near enough: names and text by their
/// UTF-8 length, numbers by their digits.
fn value_size(value: &Value) -> usize {
    let Some((kind, inner)) = value.as_object().and_then(|o| o.iter().next()) else {
        return 0;
    };
    let text = || inner.as_str().map_or(0, str::len);
    match kind.as_str() {
        "S" => text(),
        "N" => text().div_ceil(2) + 1,
        "B" => text() * 3 / 4,
        "BOOL" | "NULL" => 1,
        "SS" | "BS" => inner.as_array().map_or(0, |a| {
            a.iter().map(|s| s.as_str().map_or(0, str::len)).sum()
        }),
        "NS" => inner.as_array().map_or(0, |a| {
            a.iter()
                .map(|s| s.as_str().map_or(0, str::len).div_ceil(2) + 1)
                .sum()
        }),
        "M" => 3 + inner.as_object().map_or(0, item_size_of),
        "L" => {
            3 + inner
                .as_array()
                .map_or(0, |a| a.iter().map(|v| value_size(v) + 1).sum())
        }
        _ => 0,
    }
}

fn item_size_of(item: &Map<String, Value>) -> usize {
    item.iter().map(|(k, v)| k.len() + value_size(v)).sum()
}

fn item_size(item: &Value) -> usize {
    item.as_object().map_or(0, item_size_of)
}

/// What kind of item of the table this is, by its key.
fn item_kind(item: &Value) -> &'static str {
    let pk = item["pk"]["S"].as_str().unwrap_or_default();
    let sk = item["sk"]["S"].as_str().unwrap_or_default();
    match sk {
        "RUN" => "run",
        "LIMIT" => "scope",
        "KEY" => "run key",
        "LATEST" => "latest",
        _ if sk.starts_with("V#") => "definition",
        "TASK#" => "every task (query)",
        _ if sk.starts_with("TASK#") && sk[5..].contains('#') => "item",
        _ if sk.starts_with("TASK#") => "task",
        _ if sk.starts_with("TIMER#") => "timer",
        _ if pk.starts_with("PARK#") => "parked",
        _ => "other",
    }
}

/// Billed units by operation, and the largest DynamoDB item of each kind seen.
#[derive(Clone, Debug, Default)]
struct Billing {
    units: BTreeMap<Op, f64>,
    largest: BTreeMap<&'static str, usize>,
    /// DynamoDB items named by requests, by operation and kind of item.
    touched: BTreeMap<(String, &'static str), u64>,
    sent: u64,
    received: u64,
}

/// What a read asked for, carried from request to response: strong consistency (1.0)
/// or not (0.5), and how many keys.
#[derive(Clone, Copy, Debug)]
struct ReadRequest {
    factor: f64,
    keys: usize,
}

impl Storable for ReadRequest {
    type Storer = StoreReplace<Self>;
}

/// Reads request and response bodies and tallies what AWS bills for them.
#[derive(Clone, Debug, Default)]
struct Inspector {
    billing: Arc<Mutex<Billing>>,
}

impl Inspector {
    fn lock(&self) -> std::sync::MutexGuard<'_, Billing> {
        self.billing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn snapshot(&self) -> Billing {
        self.lock().clone()
    }

    fn units(&self) -> BTreeMap<Op, f64> {
        self.lock().units.clone()
    }

    /// Note the items a DynamoDB request names, by their keys.
    fn touch(&self, operation: &str, body: &Value) {
        let mut keys: Vec<Value> = Vec::new();
        match operation {
            "GetItem" | "UpdateItem" | "DeleteItem" => keys.push(body["Key"].clone()),
            "PutItem" => keys.push(body["Item"].clone()),
            "BatchGetItem" => {
                if let Some(tables) = body["RequestItems"].as_object() {
                    for table in tables.values() {
                        keys.extend(table["Keys"].as_array().cloned().unwrap_or_default());
                    }
                }
            }
            "TransactWriteItems" => {
                for entry in body["TransactItems"].as_array().into_iter().flatten() {
                    for action in entry.as_object().into_iter().flat_map(|a| a.values()) {
                        keys.push(
                            action
                                .get("Key")
                                .or(action.get("Item"))
                                .cloned()
                                .unwrap_or_default(),
                        );
                    }
                }
            }
            // The partition, and the sort key prefix when there is one.
            "Query" => {
                let values = &body["ExpressionAttributeValues"];
                keys.push(json!({"pk": values[":pk"], "sk": values[":prefix"]}));
            }
            _ => {}
        }
        let mut billing = self.lock();
        for key in keys {
            *billing
                .touched
                .entry((operation.to_owned(), item_kind(&key)))
                .or_default() += 1;
        }
    }

    fn add(&self, op: Op, units: f64) {
        *self.lock().units.entry(op).or_default() += units;
    }

    /// Note an item read or put; its size.
    fn item(&self, item: &Value) -> usize {
        let size = item_size(item);
        if size > 0 {
            let mut billing = self.lock();
            let largest = billing.largest.entry(item_kind(item)).or_default();
            *largest = (*largest).max(size);
        }
        size
    }
}

fn body_json(bytes: Option<&[u8]>) -> Value {
    bytes
        .and_then(|b| serde_json::from_slice(b).ok())
        .unwrap_or(Value::Null)
}

fn array_len(value: &Value) -> usize {
    value.as_array().map_or(0, Vec::len)
}

impl Intercept for Inspector {
    fn name(&self) -> &'static str {
        "aloft-bench-billing"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let op: Op = (metadata.service().to_owned(), metadata.name().to_owned());
        let body = body_json(context.request().body().bytes());
        let factor = |request: &Value| {
            if request["ConsistentRead"] == json!(true) {
                1.0
            } else {
                0.5
            }
        };
        if op.0 == "DynamoDB" {
            self.touch(&op.1, &body);
        }
        let units = match (op.0.as_str(), op.1.as_str()) {
            // Priced from the response: item sizes, pages.
            ("DynamoDB", "GetItem" | "Query" | "Scan") | ("SQS", "ReceiveMessage") => {
                cfg.interceptor_state().store_put(ReadRequest {
                    factor: factor(&body),
                    keys: 1,
                });
                return Ok(());
            }
            // aloft reads one table: its consistency, and every key asked for.
            ("DynamoDB", "BatchGetItem") => {
                if let Some(table) = body["RequestItems"]
                    .as_object()
                    .and_then(|t| t.values().next())
                {
                    cfg.interceptor_state().store_put(ReadRequest {
                        factor: factor(table),
                        keys: array_len(&table["Keys"]),
                    });
                }
                return Ok(());
            }
            ("DynamoDB", "TransactWriteItems" | "TransactGetItems") => {
                2.0 * array_len(&body["TransactItems"]) as f64
            }
            ("DynamoDB", "BatchWriteItem") => {
                body["RequestItems"].as_object().map_or(0.0, |tables| {
                    tables.values().map(array_len).sum::<usize>() as f64
                })
            }
            // PutItem: its item in 1 KB units. UpdateItem, DeleteItem: one unit, for an
            // item up to 1 KB. Whether the condition holds or not.
            ("DynamoDB", _) => match body.get("Item") {
                Some(item) => chunks(self.item(item), WRITE_UNIT),
                None => 1.0,
            },
            ("SQS", "SendMessageBatch") => {
                let entries = body["Entries"].as_array().cloned().unwrap_or_default();
                self.lock().sent += entries.len() as u64;
                let bytes = entries
                    .iter()
                    .map(|e| e["MessageBody"].as_str().map_or(0, str::len))
                    .sum();
                chunks(bytes, CHUNK)
            }
            ("SQS", "SendMessage") => {
                self.lock().sent += 1;
                chunks(body["MessageBody"].as_str().map_or(0, str::len), CHUNK)
            }
            ("EventBridge", "PutEvents") => body["Entries"].as_array().map_or(0.0, |entries| {
                entries
                    .iter()
                    .map(|e| chunks(e.to_string().len(), CHUNK))
                    .sum()
            }),
            _ => 1.0,
        };
        self.add(op, units);
        Ok(())
    }

    fn read_after_deserialization(
        &self,
        context: &AfterDeserializationInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let Some(metadata) = cfg.load::<Metadata>() else {
            return Ok(());
        };
        let op: Op = (metadata.service().to_owned(), metadata.name().to_owned());
        let Some(request) = cfg.load::<ReadRequest>().copied() else {
            return Ok(());
        };
        let body = body_json(context.response().body().bytes());
        match (op.0.as_str(), op.1.as_str()) {
            // 4 KB units of the item, one for an item not found.
            ("DynamoDB", "GetItem") => {
                let size = self.item(&body["Item"]);
                self.add(op, chunks(size, READ_UNIT) * request.factor);
            }
            // One page: its items' sizes added up, in 4 KB units.
            ("DynamoDB", "Query" | "Scan") => {
                let sizes: Vec<usize> = body["Items"]
                    .as_array()
                    .map(|items| items.iter().map(|i| self.item(i)).collect())
                    .unwrap_or_default();
                self.add(op, chunks(sizes.iter().sum(), READ_UNIT) * request.factor);
            }
            // Each item in 4 KB units, each key not found one unit.
            ("DynamoDB", "BatchGetItem") => {
                let items: Vec<Value> = body["Responses"]
                    .as_object()
                    .map(|t| {
                        t.values()
                            .filter_map(Value::as_array)
                            .flatten()
                            .cloned()
                            .collect()
                    })
                    .unwrap_or_default();
                let unprocessed: usize = body["UnprocessedKeys"]
                    .as_object()
                    .map_or(0, |t| t.values().map(|t| array_len(&t["Keys"])).sum());
                let found: f64 = items.iter().map(|i| chunks(self.item(i), READ_UNIT)).sum();
                let missing = request.keys.saturating_sub(items.len() + unprocessed);
                self.add(op, (found + missing as f64) * request.factor);
            }
            ("SQS", "ReceiveMessage") => {
                let messages = body["Messages"].as_array().cloned().unwrap_or_default();
                self.lock().received += messages.len() as u64;
                let bytes = messages
                    .iter()
                    .map(|m| m["Body"].as_str().map_or(0, str::len))
                    .sum();
                self.add(op, chunks(bytes, CHUNK));
            }
            _ => {}
        }
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------
// One request at a time to the emulator.

/// The SDK's HTTP client, letting one request at a time reach the emulator.
///
/// moto serves requests on threads without locking its DynamoDB tables: two updates of
/// one counter at the same moment can lose one, and a cancelled TransactWriteItems puts
/// back a copy of the whole table taken when it began, undoing what other requests
/// wrote meanwhile. A fan-out of 1,000 tasks polled with batches of ten handled
/// concurrently was left with every task succeeded and its run waiting on an
/// `unsettled` count of 1. Handlers still interleave as they would; only the requests
/// reach moto one after the other, so the requests and their count are the same.
/// `ALOFT_BENCH_CONCURRENT=1` lets them through at once.
#[derive(Clone, Debug)]
struct OneAtATime {
    inner: SharedHttpClient,
    gate: Arc<tokio::sync::Semaphore>,
}

impl OneAtATime {
    fn new() -> Self {
        use aws_smithy_http_client::tls;
        let inner = aws_smithy_http_client::Builder::new()
            .tls_provider(tls::Provider::Rustls(
                tls::rustls_provider::CryptoMode::AwsLc,
            ))
            .build_https();
        Self {
            inner,
            gate: Arc::new(tokio::sync::Semaphore::new(1)),
        }
    }
}

impl HttpClient for OneAtATime {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        SharedHttpConnector::new(GatedConnector {
            inner: self.inner.http_connector(settings, components),
            gate: self.gate.clone(),
        })
    }
}

#[derive(Debug)]
struct GatedConnector {
    inner: SharedHttpConnector,
    gate: Arc<tokio::sync::Semaphore>,
}

impl HttpConnector for GatedConnector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let inner = self.inner.clone();
        let gate = self.gate.clone();
        HttpConnectorFuture::new(async move {
            // moto has done the work once the response head is back.
            let _turn = gate
                .acquire_owned()
                .await
                .map_err(|e| ConnectorError::other(e.into(), None))?;
            inner.call(request).await
        })
    }
}

// ---------------------------------------------------------------------------------------
// One workload on the local stack.

/// Requests and billed units so far.
#[derive(Clone, Debug, Default)]
struct Sample {
    requests: BTreeMap<Op, u64>,
    units: BTreeMap<Op, f64>,
}

impl Sample {
    fn take(counter: &CallCounter, inspector: &Inspector) -> Self {
        Self {
            requests: counter.snapshot(),
            units: inspector.units(),
        }
    }

    /// Add `later - earlier`.
    fn add_difference(&mut self, later: &Sample, earlier: &Sample) {
        for (op, n) in &later.requests {
            let before = earlier.requests.get(op).copied().unwrap_or(0);
            *self.requests.entry(op.clone()).or_default() += n - before;
        }
        for (op, u) in &later.units {
            let before = earlier.units.get(op).copied().unwrap_or(0.0);
            *self.units.entry(op.clone()).or_default() += u - before;
        }
    }

    fn minus(&self, other: &Sample) -> Sample {
        let mut out = Sample::default();
        out.add_difference(self, other);
        out.requests.retain(|_, n| *n > 0);
        out.units.retain(|_, u| *u > 0.0);
        out
    }

    fn ops(&self) -> Vec<Op> {
        let mut ops: Vec<Op> = self
            .requests
            .keys()
            .chain(self.units.keys())
            .cloned()
            .collect();
        ops.sort();
        ops.dedup();
        ops
    }

    fn units_where(&self, keep: impl Fn(&Op) -> bool) -> f64 {
        self.units
            .iter()
            .filter(|(op, _)| keep(op))
            .map(|(_, u)| u)
            .sum()
    }
}

/// What one workload measured.
#[derive(Debug)]
struct Outcome {
    name: &'static str,
    what: &'static str,
    tasks: u64,
    seconds: f64,
    /// The trigger's requests: once per run, whatever its size.
    start: Sample,
    /// Every request of the run but the receives that found nothing.
    counted: Sample,
    /// Receives that found nothing (an artefact of this poller's loop).
    empty_receives: u64,
    /// Lambda invocations the cloud would make: the trigger's, and one per non-empty
    /// batch of each queue.
    invokes: [u64; 4],
    /// Messages handled per queue.
    handled: [u64; 3],
    /// Messages sent to the queues, by the inspector.
    sent: u64,
    /// Delayed messages still in each queue when the run had settled.
    delayed: [u64; 3],
    /// The largest item of each kind read or put, in bytes.
    largest: BTreeMap<&'static str, usize>,
    /// DynamoDB items named by requests, by operation and kind of item.
    touched: BTreeMap<(String, &'static str), u64>,
}

impl Outcome {
    fn per_task(&self, x: f64) -> f64 {
        x / self.tasks as f64
    }

    fn invokes_total(&self) -> u64 {
        self.invokes.iter().sum()
    }

    /// Billed units per task: aloft's own calls, the polling side, and Lambda
    /// invocations.
    fn billed(&self) -> (f64, f64, f64) {
        let priced = |op: &Op| meter(op) != Meter::Other;
        (
            self.per_task(self.counted.units_where(|op| priced(op) && !is_polling(op))),
            self.per_task(self.counted.units_where(is_polling)),
            self.per_task(self.invokes_total() as f64),
        )
    }

    /// Billed units of the trigger's invoke (once per run), and billed units per task of
    /// everything after it, the polling and invocations included.
    fn start_and_rest(&self) -> (f64, f64) {
        let priced = |op: &Op| meter(op) != Meter::Other;
        let start = self.start.units_where(priced) + 1.0;
        let all = self.counted.units_where(priced) + self.invokes_total() as f64;
        (start, (all - start) / self.tasks as f64)
    }

    /// Dollars per million tasks: by meter, Lambda requests and duration apart.
    fn cost_per_million(&self) -> BTreeMap<&'static str, f64> {
        let mut cost = BTreeMap::new();
        for (op, units) in &self.counted.units {
            let name = match meter(op) {
                Meter::Rru => "DynamoDB reads",
                Meter::Wru => "DynamoDB writes",
                Meter::Sqs => "SQS",
                Meter::Events => "EventBridge",
                Meter::Lambda => "Lambda API",
                Meter::Other => continue,
            };
            *cost.entry(name).or_default() += self.per_task(units * unit_price(meter(op))) * 1e6;
        }
        let invokes = self.per_task(self.invokes_total() as f64);
        let duration = LAMBDA_MS_PER_INVOKE / 1000.0 * LAMBDA_MEMORY_GB;
        cost.insert(
            "Lambda invokes",
            invokes * PRICES.lambda_per_million_requests,
        );
        cost.insert(
            "Lambda duration",
            invokes * duration * PRICES.lambda_arm64_per_gb_second * 1e6,
        );
        cost
    }
}

/// Run `scripts/aws-stack create --prefix PREFIX` against the stack in the environment
/// and read its exports.
fn create_resources(root: &Path, prefix: &str) -> Result<BTreeMap<String, String>, String> {
    let output = Command::new(root.join("scripts/aws-stack"))
        .args(["create", "--prefix", prefix])
        // Longer than any batch takes on moto, so that nothing is delivered twice.
        .env("ALOFT_VISIBILITY_TIMEOUT", "900")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run scripts/aws-stack create: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "scripts/aws-stack create --prefix {prefix} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let mut vars = BTreeMap::new();
    for line in String::from_utf8_lossy(&output.stdout).lines() {
        if let Some((name, value)) = line.trim_start_matches("export ").split_once('=') {
            vars.insert(name.to_owned(), shell_unquote(value));
        }
    }
    Ok(vars)
}

/// A value as Python's shlex.quote wrote it, back to its text.
fn shell_unquote(value: &str) -> String {
    let value = value.trim();
    match value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        Some(inner) => inner.replace("'\"'\"'", "'"),
        None => value.to_owned(),
    }
}

/// Clients like [`Backend::from_config`]'s, each with the counter and the inspector.
fn counted_backend(
    settings: Settings,
    shared: &aws_config::SdkConfig,
    counter: &CallCounter,
    inspector: &Inspector,
) -> Backend {
    let dynamodb = aws_sdk_dynamodb::config::Builder::from(shared)
        .interceptor(counter.clone())
        .interceptor(inspector.clone())
        .build();
    let sqs = aws_sdk_sqs::config::Builder::from(shared)
        .interceptor(counter.clone())
        .interceptor(inspector.clone())
        .build();
    let lambda = aws_sdk_lambda::config::Builder::from(shared)
        .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
        .interceptor(counter.clone())
        .interceptor(inspector.clone())
        .build();
    let eventbridge = aws_sdk_eventbridge::config::Builder::from(shared)
        .interceptor(counter.clone())
        .interceptor(inspector.clone())
        .build();
    Backend {
        settings,
        dynamodb: aws_sdk_dynamodb::Client::from_conf(dynamodb),
        sqs: aws_sdk_sqs::Client::from_conf(sqs),
        lambda: aws_sdk_lambda::Client::from_conf(lambda),
        eventbridge: aws_sdk_eventbridge::Client::from_conf(eventbridge),
    }
}

async fn measure(
    root: &Path,
    shared: &aws_config::SdkConfig,
    workload: &Workload,
    prefix: &str,
) -> Result<Outcome, String> {
    let vars = create_resources(root, prefix)?;
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).map_err(|e| e.0)?;
    // Deploying the workflow and watching the run are not part of a run's cost.
    let plain = Backend::from_config(settings.clone(), shared, None);
    plain
        .store()
        .put_workflow(&workload.definition)
        .await
        .map_err(|e| format!("workflows put: {e}"))?;

    let counter = CallCounter::new();
    let inspector = Inspector::default();
    let counted = counted_backend(settings, shared, &counter, &inspector);
    // One engine per function, as in one warm container of each: each reads the
    // definition once.
    let engine = || match workload.answered {
        true => counted.engine_with(Some(Arc::new(Answering))),
        false => counted.engine(),
    };
    let trigger = engine();
    let engines = [engine(), engine(), engine()];

    let clock = Instant::now();
    let request = aloft_aws::trigger::parse(&json!({
        "workflow": workload.definition.name,
        "idempotency_key": format!("bench-{}", workload.name),
    }))
    .map_err(|e| e.to_string())?;
    let started = aloft_aws::trigger::start(&trigger, request)
        .await
        .map_err(|e| format!("trigger: {e}"))?;
    let start = Sample::take(&counter, &inspector);

    let options = PollOptions { wait_seconds: 0 };
    let mut empty = Sample::default();
    let mut empty_receives = 0;
    let mut invokes = [1, 0, 0, 0];
    let mut handled = [0; 3];
    let mut settled = None;
    let mut progress = Instant::now();
    loop {
        let mut received = 0;
        for (i, queue) in QUEUES.into_iter().enumerate() {
            let before = Sample::take(&counter, &inspector);
            match poll_once(&counted, &engines[i], queue, options).await {
                Ok(0) => {
                    empty_receives += 1;
                    empty.add_difference(&Sample::take(&counter, &inspector), &before);
                }
                Ok(n) => {
                    invokes[i + 1] += 1;
                    handled[i] += n as u64;
                    received += n;
                }
                Err(error) => return Err(format!("{} poll: {error}", queue.as_str())),
            }
        }
        if settled.is_none() {
            let run = plain
                .store()
                .run(&started.run_id)
                .await
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "the run is gone".to_owned())?;
            if run.status.is_settled() {
                settled = Some(run);
            }
        }
        // Once settled, the queues are drained of what is visible: the messages that
        // arrive after the end (and find the run settled) are part of its cost too, and
        // with answered tasks the bench also waits for the delayed watchdog and checks (on
        // the complete queue; a deadline check on the plan queue may be hours away).
        if settled.is_some()
            && received == 0
            && (!workload.answered || delayed_messages(&plain).await?[2] == 0)
        {
            break;
        }
        if progress.elapsed() > Duration::from_secs(30) {
            progress = Instant::now();
            eprintln!(
                "calls: {}: {} messages handled, {} requests so far, {:.0} s",
                workload.name,
                handled.iter().sum::<u64>(),
                counter.snapshot().values().sum::<u64>(),
                clock.elapsed().as_secs_f64()
            );
        }
        if clock.elapsed() > GUARD {
            return Err(format!("{} did not settle within {GUARD:?}", workload.name));
        }
        if received == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let seconds = clock.elapsed().as_secs_f64();
    let run = settled.ok_or_else(|| "no settled run".to_owned())?;
    if run.status != RunStatus::Succeeded {
        return Err(format!("{} ended {}", workload.name, run.status));
    }
    let records = plain
        .store()
        .all_tasks(&run.id)
        .await
        .map_err(|e| e.to_string())?;
    let executed = records
        .iter()
        .filter(|t| t.state == TaskState::Succeeded)
        .filter(|t| !(t.key.item.is_none() && t.items.is_some()))
        .count() as u64;
    if executed != workload.tasks {
        return Err(format!(
            "{}: {executed} tasks succeeded, {} expected",
            workload.name, workload.tasks
        ));
    }

    let delayed = delayed_messages(&plain).await?;

    let total = Sample::take(&counter, &inspector);
    let billing = inspector.snapshot();
    Ok(Outcome {
        name: workload.name,
        what: workload.what,
        tasks: workload.tasks,
        seconds,
        counted: total.minus(&empty),
        start,
        empty_receives,
        invokes,
        handled,
        sent: billing.sent,
        delayed,
        largest: billing.largest,
        touched: billing.touched,
    })
}

/// Messages each queue holds with a delay that has not yet passed.
async fn delayed_messages(backend: &Backend) -> Result<[u64; 3], String> {
    let mut delayed = [0; 3];
    for (i, queue) in QUEUES.into_iter().enumerate() {
        let url = backend.queue().url(queue).to_owned();
        let attributes = backend
            .sqs
            .get_queue_attributes()
            .queue_url(url)
            .attribute_names(QueueAttributeName::ApproximateNumberOfMessagesDelayed)
            .send()
            .await
            .map_err(|e| format!("GetQueueAttributes: {e}"))?;
        delayed[i] = attributes
            .attributes()
            .and_then(|a| a.get(&QueueAttributeName::ApproximateNumberOfMessagesDelayed))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
    }
    Ok(delayed)
}

async fn calls(wanted: &[String]) -> Result<(), String> {
    let root = workspace_root();
    let endpoint = std::env::var("AWS_ENDPOINT_URL").map_err(|_| {
        "AWS_ENDPOINT_URL is not set: run this through scripts/bench-aws, or with the \
         exports of scripts/aws-stack start"
            .to_owned()
    })?;
    let workloads = workloads(&root, wanted)?;
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(&endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "bench",
        ));
    if std::env::var("ALOFT_BENCH_CONCURRENT").as_deref() != Ok("1") {
        loader = loader.http_client(OneAtATime::new());
    }
    let shared = loader.load().await;
    let stamp = std::process::id();
    let mut outcomes = Vec::new();
    for workload in &workloads {
        eprintln!("calls: {} ...", workload.name);
        let prefix = format!("bench{stamp}-{}", workload.name);
        let outcome = measure(&root, &shared, workload, &prefix).await?;
        eprintln!(
            "calls: {} settled in {:.1} s on the local stack",
            workload.name, outcome.seconds
        );
        outcomes.push(outcome);
    }
    report(&outcomes);
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Tables.

fn short(op: &Op) -> String {
    format!("{} {}", op.0, op.1)
}

fn report(outcomes: &[Outcome]) {
    println!("### Workloads\n");
    println!(
        "| workload | what | tasks | seconds on moto | messages sent | Lambda invokes \
         (trigger / plan / dispatch / complete) | messages per invoke | delayed messages \
         left at the end |"
    );
    println!("|---|---|---:|---:|---:|---|---:|---|");
    for o in outcomes {
        let batches: u64 = o.invokes[1..].iter().sum();
        let handled: u64 = o.handled.iter().sum();
        let delayed: Vec<String> = QUEUES
            .iter()
            .zip(o.delayed)
            .filter(|(_, n)| *n > 0)
            .map(|(q, n)| format!("{n} on {}", q.as_str()))
            .collect();
        println!(
            "| {} | {} | {} | {:.1} | {} | {} / {} / {} / {} | {:.1} | {} |",
            o.name,
            o.what,
            o.tasks,
            o.seconds,
            o.sent,
            o.invokes[0],
            o.invokes[1],
            o.invokes[2],
            o.invokes[3],
            handled as f64 / batches.max(1) as f64,
            if delayed.is_empty() {
                "none".to_owned()
            } else {
                delayed.join(", ")
            },
        );
    }

    println!(
        "\nLargest item of each kind read or put, bytes. Reads and PutItem are priced by \
         the sizes seen; UpdateItem, DeleteItem and TransactWriteItems as items up to 1 KB \
         (2 WRU per item of a transaction):\n"
    );
    let mut kinds: Vec<&str> = outcomes
        .iter()
        .flat_map(|o| o.largest.keys().copied())
        .collect();
    kinds.sort_unstable();
    kinds.dedup();
    print!("| workload |");
    for kind in &kinds {
        print!(" {kind} |");
    }
    println!();
    println!("|---|{}", "---:|".repeat(kinds.len()));
    for o in outcomes {
        print!("| {} |", o.name);
        for kind in &kinds {
            match o.largest.get(kind) {
                Some(size) => print!(" {size} |"),
                None => print!(" - |"),
            }
        }
        println!();
    }

    println!("\n### Requests and billed units per task\n");
    println!(
        "Requests: HTTP requests sent (the SDK interceptor's count), polling included. Billed: SQS requests \
         (64 KB chunks, a batch is one), DynamoDB request units, EventBridge entries. \
         ReceiveMessage and DeleteMessageBatch are made by Lambda's event source mapping \
         in the cloud (by `poll_once` here), and billed as SQS requests too. Lambda \
         invokes: one per non-empty batch, plus the trigger's. \"All billed\" adds the \
         three. The start is the trigger function's invoke and requests: workflow \
         lookup, run key, every task item and the run created (1 WRU each), first plan \
         message.\n"
    );
    println!(
        "| workload | tasks | requests | requests per task | aloft's calls, billed per task \
         | polling, billed per task | Lambda invokes per task | all billed per task | \
         target 8 (aloft's calls) | target 8 (all) | the start (trigger invoke), billed | \
         all billed per task after the start |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---|---|---:|---:|");
    for o in outcomes {
        let requests: u64 = o.counted.requests.values().sum();
        let (own, polling, invokes) = o.billed();
        let verdict = |x: f64| if x <= 8.0 { "met" } else { "not met" };
        let (start, rest) = o.start_and_rest();
        println!(
            "| {} | {} | {} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} | {} | {:.0} | {:.2} |",
            o.name,
            o.tasks,
            requests,
            o.per_task(requests as f64),
            own,
            polling,
            invokes,
            own + polling + invokes,
            verdict(own),
            verdict(own + polling + invokes),
            start,
            rest,
        );
    }

    println!("\n### By operation, per task: requests / billed units\n");
    let mut ops: Vec<Op> = outcomes.iter().flat_map(|o| o.counted.ops()).collect();
    ops.sort();
    ops.dedup();
    print!("| operation | billed in |");
    for o in outcomes {
        print!(" {} |", o.name);
    }
    println!();
    print!("|---|---|");
    for _ in outcomes {
        print!("---:|");
    }
    println!();
    for op in &ops {
        let polling = if is_polling(op) { " (polling)" } else { "" };
        print!("| {}{polling} | {} |", short(op), meter_unit(meter(op)));
        for o in outcomes {
            let requests = o.counted.requests.get(op).copied().unwrap_or(0);
            let units = o.counted.units.get(op).copied().unwrap_or(0.0);
            if requests == 0 && units == 0.0 {
                print!(" - |");
            } else {
                print!(
                    " {:.2} / {:.2} |",
                    o.per_task(requests as f64),
                    o.per_task(units)
                );
            }
        }
        println!();
    }
    print!("| receives that found nothing (not counted above) | requests |");
    for o in outcomes {
        print!(" {} in all |", o.empty_receives);
    }
    println!();

    println!(
        "\n### DynamoDB items named per task, by operation and kind of item\n\nKinds: run, \
         task, item (of a `for_each`), scope (a concurrency limit's leases), parked \
         (messages waiting for a slot), timer, run key, latest, definition. A \
         TransactWriteItems names two items; a BatchGetItem up to 100.\n"
    );
    let mut touched: Vec<&(String, &'static str)> =
        outcomes.iter().flat_map(|o| o.touched.keys()).collect();
    touched.sort();
    touched.dedup();
    print!("| operation | item |");
    for o in outcomes {
        print!(" {} |", o.name);
    }
    println!();
    println!("|---|---|{}", "---:|".repeat(outcomes.len()));
    for key in touched {
        print!("| {} | {} |", key.0, key.1);
        for o in outcomes {
            match o.touched.get(key) {
                Some(n) => print!(" {:.2} |", o.per_task(*n as f64)),
                None => print!(" - |"),
            }
        }
        println!();
    }

    println!("\n### Largest contributors per task (billed units)\n");
    for o in outcomes {
        let mut top: Vec<(f64, String)> = o
            .counted
            .units
            .iter()
            .filter(|(op, _)| meter(op) != Meter::Other)
            .map(|(op, u)| {
                let polling = if is_polling(op) { ", polling" } else { "" };
                (
                    o.per_task(*u),
                    format!("{} ({}{polling})", short(op), meter_unit(meter(op))),
                )
            })
            .collect();
        top.push((
            o.per_task(o.invokes_total() as f64),
            "Lambda invokes (requests)".to_owned(),
        ));
        top.sort_by(|a, b| b.0.total_cmp(&a.0));
        let list: Vec<String> = top
            .iter()
            .take(5)
            .map(|(u, what)| format!("{what} {u:.2}"))
            .collect();
        println!("- {}: {}", o.name, list.join("; "));
    }

    println!(
        "\n### Orchestration cost per million tasks, US dollars\n\nList prices as of {}: \
         SQS ${:.2} per million requests, DynamoDB on-demand ${:.3} per million WRU and \
         ${:.3} per million RRU, EventBridge ${:.2} per million events, Lambda ${:.2} per \
         million requests and ${} per GB-second (arm64). Lambda duration assumed: {} ms \
         billed per invoke at {} MB, up to {} messages per invoke. Step Functions \
         Standard: ${:.2} per million state transitions, one per task at least.\n",
        PRICES.as_of,
        PRICES.sqs_per_million_requests,
        PRICES.dynamodb_per_million_wru,
        PRICES.dynamodb_per_million_rru,
        PRICES.eventbridge_per_million_events,
        PRICES.lambda_per_million_requests,
        PRICES.lambda_arm64_per_gb_second,
        LAMBDA_MS_PER_INVOKE,
        LAMBDA_MEMORY_GB * 1024.0,
        BATCH_SIZE,
        PRICES.step_functions_standard_per_million_transitions,
    );
    let columns = [
        "SQS",
        "DynamoDB writes",
        "DynamoDB reads",
        "EventBridge",
        "Lambda invokes",
        "Lambda duration",
    ];
    print!("| workload |");
    for c in columns {
        print!(" {c} |");
    }
    println!(" aloft, total | Step Functions Standard (1 transition per task) |");
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for o in outcomes {
        let cost = o.cost_per_million();
        print!("| {} |", o.name);
        for c in columns {
            print!(" {:.2} |", cost.get(c).copied().unwrap_or(0.0));
        }
        let total: f64 = cost.values().sum();
        println!(
            " {:.2} | {:.2} |",
            total, PRICES.step_functions_standard_per_million_transitions
        );
    }
}

// ---------------------------------------------------------------------------------------
// Start-up of the function binaries.

/// One launch: spawn to the first `GET /2018-06-01/runtime/invocation/next`, and the
/// resident set's high-water mark at that moment.
#[derive(Clone, Copy, Debug)]
struct Launch {
    ready: Duration,
    peak_rss_kib: u64,
}

fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// The environment of a function: Lambda's variables, the runtime API at `api`, aloft's
/// settings and the SDK's region and credentials, all placeholders. Endpoints point at
/// a closed loopback port, though nothing is called before the first invocation.
fn function_env(name: &str, api: &str) -> Vec<(&'static str, String)> {
    let nowhere = "http://127.0.0.1:9";
    vec![
        ("AWS_LAMBDA_RUNTIME_API", api.to_owned()),
        ("AWS_LAMBDA_FUNCTION_NAME", name.to_owned()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128".into()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".into()),
        ("AWS_LAMBDA_LOG_GROUP_NAME", format!("/aws/lambda/{name}")),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".into()),
        ("AWS_LAMBDA_LOG_FORMAT", "JSON".into()),
        ("AWS_REGION", "us-east-1".into()),
        ("AWS_DEFAULT_REGION", "us-east-1".into()),
        ("AWS_ACCESS_KEY_ID", "bench".into()),
        ("AWS_SECRET_ACCESS_KEY", "bench".into()),
        ("AWS_SESSION_TOKEN", "bench".into()),
        ("AWS_CONFIG_FILE", "/dev/null".into()),
        ("AWS_SHARED_CREDENTIALS_FILE", "/dev/null".into()),
        ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ("AWS_ENDPOINT_URL", nowhere.into()),
        ("ALOFT_TABLE", "bench".into()),
        (
            "ALOFT_PLAN_QUEUE_URL",
            format!("{nowhere}/000000000000/plan"),
        ),
        (
            "ALOFT_DISPATCH_QUEUE_URL",
            format!("{nowhere}/000000000000/dispatch"),
        ),
        (
            "ALOFT_COMPLETE_QUEUE_URL",
            format!("{nowhere}/000000000000/complete"),
        ),
        ("ALOFT_EVENT_BUS", "bench".into()),
    ]
}

/// Read one request head; its first line.
async fn request_line(stream: &mut tokio::net::TcpStream) -> Result<String, String> {
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream
            .read(&mut buffer)
            .await
            .map_err(|e| format!("reading the request: {e}"))?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    Ok(String::from_utf8_lossy(&head)
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned())
}

async fn launch(
    listener: &tokio::net::TcpListener,
    binary: &Path,
    name: &str,
    log: &Path,
) -> Result<Launch, String> {
    let api = listener
        .local_addr()
        .map_err(|e| e.to_string())?
        .to_string();
    let log_file = std::fs::File::create(log).map_err(|e| e.to_string())?;
    let mut command = Command::new(binary);
    command
        .env_clear()
        .envs(function_env(name, &api))
        .stdin(Stdio::null())
        .stdout(log_file.try_clone().map_err(|e| e.to_string())?)
        .stderr(log_file);
    let clock = Instant::now();
    let mut child = command
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let waited = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            let (mut stream, _) = listener.accept().await.map_err(|e| e.to_string())?;
            let line = request_line(&mut stream).await?;
            if line.starts_with("GET /2018-06-01/runtime/invocation/next") {
                return Ok::<_, String>((clock.elapsed(), stream));
            }
        }
    })
    .await;
    let peak = peak_rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    match waited {
        Ok(Ok((ready, _stream))) => Ok(Launch {
            ready,
            peak_rss_kib: peak,
        }),
        Ok(Err(error)) => Err(error),
        Err(_) => Err(format!(
            "{name} asked for no invocation within 10 s; its output:\n{}",
            std::fs::read_to_string(log).unwrap_or_default()
        )),
    }
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / 1_000_000.0)
}

async fn startup(args: &[String]) -> Result<(), String> {
    let native = args
        .first()
        .map(PathBuf::from)
        .ok_or_else(|| "usage: calls startup NATIVE_DIR [ARM64_DIR]".to_owned())?;
    let arm64 = args.get(1).map(PathBuf::from);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| format!("cannot listen on 127.0.0.1: {e}"))?;
    let log = std::env::temp_dir().join(format!("aloft-startup-{}.log", std::process::id()));
    let mut rows = Vec::new();
    for name in FUNCTIONS {
        let binary = native.join(name);
        let native_size = std::fs::metadata(&binary)
            .map_err(|e| format!("{}: {e}", binary.display()))?
            .len();
        let arm64_size = arm64
            .as_ref()
            .and_then(|dir| std::fs::metadata(dir.join(name).join("bootstrap")).ok())
            .map(|m| m.len());
        let mut launches = Vec::new();
        for _ in 0..LAUNCHES {
            launches.push(launch(&listener, &binary, name, &log).await?);
        }
        let mut ready: Vec<f64> = launches
            .iter()
            .map(|l| l.ready.as_secs_f64() * 1000.0)
            .collect();
        ready.sort_by(f64::total_cmp);
        let median = (ready[(LAUNCHES - 1) / 2] + ready[LAUNCHES / 2]) / 2.0;
        let peak = launches.iter().map(|l| l.peak_rss_kib).max().unwrap_or(0);
        rows.push(format!(
            "| {name} | {} | {} | {median:.1} | {:.1} - {:.1} | {:.1} |",
            arm64_size.map_or_else(|| "not built".to_owned(), megabytes),
            megabytes(native_size),
            ready[0],
            ready[LAUNCHES - 1],
            peak as f64 / 1024.0,
        ));
    }
    let _ = std::fs::remove_file(&log);
    println!(
        "| function | arm64 binary, MB (cargo-lambda) | x86_64 binary, MB (native release) \
         | start-up to ready, median of {LAUNCHES}, ms | fastest - slowest, ms | peak RSS \
         at ready, MiB |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for row in rows {
        println!("{row}");
    }
    Ok(())
}
