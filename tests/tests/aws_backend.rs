//! The AWS backend on the local stack: the engine with the DynamoDB, SQS, Lambda and
//! EventBridge adapters against moto's server (one per test, on 127.0.0.1), driven by
//! the same batch handler the functions use, polled as `aloft dev` polls.
//!
//! Faults are injected by wrapping the real adapters: a write that happens and then
//! reports an error is a handler that died right after it; a send that fails is a
//! handler that died right before it. Either way SQS delivers the message again.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use futures::future::{BoxFuture, join_all};
use serde_json::{Value, json};

use aloft_aws::batch::{Received, handle_batch};
use aloft_aws::dev::{PollOptions, poll_once};
use aloft_aws::read::AttemptRecord;
use aloft_aws::store::get_s;
use aloft_aws::{
    Backend, CallCounter, DynamoStore, LocalCommands, Settings, SqsQueue, SystemClock,
};
use aloft_core::source::load_str;
use aloft_core::{RunStatus, TaskState};
use aloft_engine::message::{Message, Outgoing, QueueName, TaskKey};
use aloft_engine::ports::{
    Applied, Clock, Created, Events, Invoker, Job, PortError, PortResult, Queue, Slot, StartError,
    Store, TaskChange,
};
use aloft_engine::record::{RunRecord, TaskRecord, WatchLeg};
use aloft_engine::{Admission, Engine, StartRequest};
use aloft_tests::aws::{LocalAws, Resources};

/// Longest wait for a run to settle. A guard against a hang, never a measurement.
const GUARD: Duration = Duration::from_secs(180);

async fn backend(stack: &LocalAws, resources: &Resources, extra: &[(&str, &str)]) -> Backend {
    counted_backend(stack, resources, extra, CallCounter::new()).await
}

/// A backend whose requests `counter` counts.
async fn counted_backend(
    stack: &LocalAws,
    resources: &Resources,
    extra: &[(&str, &str)],
    counter: CallCounter,
) -> Backend {
    let mut vars = resources.vars.clone();
    for (name, value) in extra {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    let settings = Settings::from_lookup(|name| vars.get(name).cloned()).expect("settings");
    let config = stack.sdk_config().await;
    Backend::from_config(settings, &config, Some(counter))
}

fn definition(yaml: &str) -> aloft_core::Definition {
    load_str("workflow.yaml", yaml).unwrap_or_else(|problems| panic!("{problems}"))
}

/// Start a run and poll the three queues until it settles.
async fn run_to_end<S, Q, I, C, E>(
    backend: &Backend,
    engine: &Engine<S, Q, I, C, E>,
    yaml: &str,
    input: Value,
) -> RunRecord
where
    S: Store,
    Q: Queue,
    I: Invoker,
    C: Clock,
    E: Events,
{
    // A start that fails is tried again by its caller, with the same key.
    let request = StartRequest {
        definition: definition(yaml),
        input,
        idempotency_key: Some("the-start".into()),
        scheduled_time: None,
        workdir: None,
    };
    let mut tries = 0;
    let started = loop {
        tries += 1;
        match engine.trigger(request.clone()).await {
            Ok(started) => break started,
            Err(error) if error.is_retryable() && tries < 3 => continue,
            Err(error) => panic!("trigger: {error}"),
        }
    };
    drive(backend, engine, &started.run_id).await
}

/// Poll until the run settles; handler errors only mean the message comes again.
async fn drive<S, Q, I, C, E>(
    backend: &Backend,
    engine: &Engine<S, Q, I, C, E>,
    run_id: &str,
) -> RunRecord
where
    S: Store,
    Q: Queue,
    I: Invoker,
    C: Clock,
    E: Events,
{
    let store = backend.store();
    let start = Instant::now();
    let options = PollOptions { wait_seconds: 0 };
    loop {
        let mut received = 0;
        for queue in [QueueName::Plan, QueueName::Dispatch, QueueName::Complete] {
            received += poll_once(backend, engine, queue, options)
                .await
                .unwrap_or(0);
        }
        let run = store
            .run(run_id)
            .await
            .expect("read the run")
            .expect("the run exists");
        if run.status.is_settled() {
            return run;
        }
        assert!(
            start.elapsed() < GUARD,
            "run {run_id} still {} after {GUARD:?}",
            run.status
        );
        if received == 0 {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

async fn tasks(store: &DynamoStore, run_id: &str) -> Vec<(TaskRecord, Vec<AttemptRecord>)> {
    store
        .show_run(run_id)
        .await
        .expect("show")
        .expect("the run exists")
        .1
}

fn state_of(tasks: &[(TaskRecord, Vec<AttemptRecord>)], key: &TaskKey) -> (TaskState, u32) {
    let (task, _) = tasks
        .iter()
        .find(|(t, _)| &t.key == key)
        .unwrap_or_else(|| panic!("no task {key}"));
    (task.state, task.attempt)
}

/// Every item of the table (one page is all a test's table holds).
async fn table_items(backend: &Backend) -> Vec<aloft_aws::store::Item> {
    backend
        .dynamodb
        .scan()
        .table_name(&backend.settings.table)
        .send()
        .await
        .expect("scan")
        .items
        .unwrap_or_default()
}

/// Every lease left on the table's concurrency scopes.
async fn leases(backend: &Backend) -> Vec<String> {
    let items = table_items(backend).await;
    let mut held = Vec::new();
    for item in items.iter().filter(|i| get_s(i, "sk") == Some("LIMIT")) {
        let holders = item
            .get("holders")
            .and_then(|h| h.as_m().ok())
            .map(|m| m.keys().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        held.extend(
            holders
                .into_iter()
                .map(|h| format!("{}: {h}", get_s(item, "pk").unwrap_or_default())),
        );
    }
    held
}

/// Drain a queue of JSON bodies.
async fn drain(backend: &Backend, url: &str) -> Vec<Value> {
    let mut bodies = Vec::new();
    loop {
        let got = backend
            .sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("receive");
        let messages = got.messages.unwrap_or_default();
        if messages.is_empty() {
            return bodies;
        }
        for message in messages {
            bodies.push(serde_json::from_str(message.body().unwrap_or("null")).expect("JSON body"));
            backend
                .sqs
                .delete_message()
                .queue_url(url)
                .receipt_handle(message.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("delete");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fault injection around the real adapters.

/// Counts effect calls; the `fail_at`-th one (1-based) fails.
#[derive(Clone, Debug)]
struct Faults {
    calls: Arc<AtomicUsize>,
    fail_at: usize,
    /// A task that is started, as a result that did not know its run had stopped would
    /// start it, right before the first write that would skip it.
    started_before_skip: Arc<std::sync::Mutex<Option<String>>>,
}

impl Faults {
    fn new(fail_at: usize) -> Self {
        Self {
            calls: Arc::new(AtomicUsize::new(0)),
            fail_at,
            started_before_skip: Arc::default(),
        }
    }

    /// No failure; `task` is started right before the first write that skips it.
    fn starting_before_skip(task: &str) -> Self {
        let faults = Self::new(0);
        *faults.started_before_skip.lock().expect("race") = Some(task.to_owned());
        faults
    }

    /// True once, for the write that skips the task to be started first.
    fn races(&self, change: &TaskChange) -> bool {
        let mut racing = self.started_before_skip.lock().expect("race");
        let due =
            change.to == TaskState::Skipped && racing.as_deref() == Some(change.key.task.as_str());
        if due {
            *racing = None;
        }
        due
    }

    /// True when this call is the one to fail.
    fn strikes(&self) -> bool {
        self.calls.fetch_add(1, Ordering::SeqCst) + 1 == self.fail_at
    }

    fn count(&self) -> usize {
        self.calls.load(Ordering::SeqCst)
    }
}

fn died(after: &str) -> PortError {
    PortError::retryable(format!("injected: the handler died {after}"))
}

/// A store whose writes happen and then, once, report that the handler died.
#[derive(Debug)]
struct DyingStore {
    inner: DynamoStore,
    faults: Faults,
}

impl DyingStore {
    async fn write<T>(
        &self,
        what: &str,
        call: impl Future<Output = PortResult<T>>,
    ) -> PortResult<T> {
        let value = call.await?;
        if self.faults.strikes() {
            return Err(died(&format!("right after {what}")));
        }
        Ok(value)
    }
}

impl Store for DyingStore {
    async fn put_definition(&self, workflow: &str, version: &str, json: &str) -> PortResult<()> {
        self.inner.put_definition(workflow, version, json).await
    }
    async fn definition(&self, workflow: &str, version: &str) -> PortResult<Option<String>> {
        self.inner.definition(workflow, version).await
    }
    async fn create_run(&self, run: &RunRecord, tasks: &[TaskRecord]) -> PortResult<Created> {
        self.inner.create_run(run, tasks).await
    }
    async fn run(&self, run_id: &str) -> PortResult<Option<RunRecord>> {
        self.inner.run(run_id).await
    }
    async fn tasks(&self, run_id: &str, keys: &[TaskKey]) -> PortResult<Vec<TaskRecord>> {
        self.inner.tasks(run_id, keys).await
    }
    async fn all_tasks(&self, run_id: &str) -> PortResult<Vec<TaskRecord>> {
        self.inner.all_tasks(run_id).await
    }
    async fn item_outputs(&self, run_id: &str, task: &str) -> PortResult<Vec<Option<String>>> {
        self.inner.item_outputs(run_id, task).await
    }
    async fn output_bytes(&self, run_id: &str, tasks: &[&str]) -> PortResult<u64> {
        self.inner.output_bytes(run_id, tasks).await
    }
    async fn start_run(
        &self,
        run_id: &str,
        now: u64,
        deadline: Option<u64>,
        watch: Option<WatchLeg>,
    ) -> PortResult<bool> {
        let start = self.inner.start_run(run_id, now, deadline, watch);
        self.write("start_run", start).await
    }
    async fn settle_run(
        &self,
        run_id: &str,
        from: RunStatus,
        to: RunStatus,
        now: u64,
    ) -> PortResult<bool> {
        self.write("settle_run", self.inner.settle_run(run_id, from, to, now))
            .await
    }
    async fn mark_sla_missed(&self, run_id: &str) -> PortResult<bool> {
        self.write("mark_sla_missed", self.inner.mark_sla_missed(run_id))
            .await
    }
    async fn update_task(&self, run_id: &str, change: &TaskChange) -> PortResult<Applied> {
        let label = format!(
            "update_task {} {}:{}->{}:{}",
            change.key, change.from, change.attempt, change.to, change.new_attempt
        );
        if self.faults.races(change) {
            let start = TaskChange {
                from: TaskState::Waiting,
                attempt: 0,
                to: TaskState::Running,
                new_attempt: 1,
                started_at: Some(SystemClock.now()),
                ..change.clone()
            };
            assert!(self.inner.update_task(run_id, &start).await?.applied);
        }
        self.write(&label, self.inner.update_task(run_id, change))
            .await
    }
    async fn add_items(
        &self,
        run_id: &str,
        task: &str,
        items: &[Value],
        now: u64,
    ) -> PortResult<bool> {
        self.write("add_items", self.inner.add_items(run_id, task, items, now))
            .await
    }
    async fn acquire(
        &self,
        slots: &[Slot],
        holder: &str,
        now: u64,
        expires_at: u64,
    ) -> PortResult<Option<String>> {
        self.write(
            "acquire",
            self.inner.acquire(slots, holder, now, expires_at),
        )
        .await
    }
    async fn release(&self, holder: &str, scopes: &[String]) -> PortResult<Vec<String>> {
        self.write("release", self.inner.release(holder, scopes))
            .await
    }
    async fn park(&self, scope: &str, message: &Message) -> PortResult<()> {
        self.write("park", self.inner.park(scope, message)).await
    }
    async fn unpark(&self, scope: &str, limit: usize) -> PortResult<Vec<Message>> {
        self.write("unpark", self.inner.unpark(scope, limit)).await
    }
    async fn arm(&self, run_id: &str, timer: &str, at: u64) -> PortResult<bool> {
        self.write("arm", self.inner.arm(run_id, timer, at)).await
    }
    async fn move_watch(&self, run_id: &str, from: Option<u64>, to: WatchLeg) -> PortResult<bool> {
        let moved = self.inner.move_watch(run_id, from, to);
        self.write("move_watch", moved).await
    }
    async fn note_settled_upstreams(
        &self,
        run_id: &str,
        task: &str,
        settled: &[usize],
    ) -> PortResult<Option<usize>> {
        let noted = self.inner.note_settled_upstreams(run_id, task, settled);
        self.write("note_settled_upstreams", noted).await
    }
}

/// Queues whose sends fail once, before sending, like a handler that died just then;
/// and which can send every message twice, like at-least-once delivery at its worst.
/// They note the type of every message sent.
#[derive(Debug)]
struct OddQueue {
    inner: SqsQueue,
    faults: Faults,
    twice: bool,
    sent: Arc<std::sync::Mutex<Vec<String>>>,
}

/// A message's type, as it travels (`plan`, `timeout_check`, `watch`, ...), with
/// ` later` when it is sent with a delay.
fn kind_of(outgoing: &Outgoing) -> String {
    let json = serde_json::to_value(&outgoing.message).expect("message JSON");
    let kind = json["type"].as_str().unwrap_or_default();
    if outgoing.delay_ms > 0 {
        format!("{kind} later")
    } else {
        kind.to_owned()
    }
}

impl Queue for OddQueue {
    async fn send(&self, messages: Vec<Outgoing>) -> PortResult<()> {
        if self.faults.strikes() {
            return Err(died("right before a send"));
        }
        self.sent
            .lock()
            .expect("sent")
            .extend(messages.iter().map(kind_of));
        if self.twice {
            self.inner.send(messages.clone()).await?;
        }
        self.inner.send(messages).await
    }
}

/// `command` tasks that start and never report, like a Lambda with no destination.
#[derive(Debug, Default)]
struct Silent {
    started: AtomicUsize,
    cancelled: AtomicUsize,
}

impl LocalCommands for Silent {
    fn start(&self, _job: Job, _results: SqsQueue) -> BoxFuture<'static, Result<(), StartError>> {
        self.started.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(()) })
    }

    fn cancel(&self, _run_id: &str, _key: &TaskKey, _attempt: u32) {
        self.cancelled.fetch_add(1, Ordering::SeqCst);
    }
}

/// `command` tasks answered at once by the destination record their function's invoke
/// would give, with a task document claiming the attempt started `earlier_ms` before it
/// did: the record, not the stored start, tells how long the attempt ran.
#[derive(Debug)]
struct ClaimsEarlierStart {
    earlier_ms: i64,
}

impl LocalCommands for ClaimsEarlierStart {
    fn start(&self, job: Job, results: SqsQueue) -> BoxFuture<'static, Result<(), StartError>> {
        use aloft_aws::destination::DestinationRecord;
        let earlier = jiff::SignedDuration::from_millis(self.earlier_ms);
        Box::pin(async move {
            let mut document: Value = serde_json::from_slice(&job.input).expect("document");
            let started: jiff::Timestamp = document["run"]["attempt_started_at"]
                .as_str()
                .expect("the task document names the attempt's start")
                .parse()
                .expect("an RFC 3339 time");
            document["run"]["attempt_started_at"] = (started - earlier).to_string().into();
            let record = DestinationRecord::ended_now(
                "arn:aws:lambda:us-east-1:123456789012:function:task",
                "claims-earlier-start".into(),
                document,
                200,
                None,
                json!({"done": true}),
            );
            let done = record.to_message().expect("a record aloft can read");
            results
                .send(vec![Outgoing::now(done)])
                .await
                .map_err(StartError::Port)
        })
    }

    fn cancel(&self, _run_id: &str, _key: &TaskKey, _attempt: u32) {}
}

/// `command` tasks answered at once by the destination record their function's invoke
/// would give, whose task document keeps the run it carries (`aloft`) or has it cut.
#[derive(Debug)]
struct AnsweredLikeLambda {
    keep_run: bool,
}

impl LocalCommands for AnsweredLikeLambda {
    fn start(&self, job: Job, results: SqsQueue) -> BoxFuture<'static, Result<(), StartError>> {
        use aloft_aws::destination::DestinationRecord;
        let keep_run = self.keep_run;
        Box::pin(async move {
            let mut document: Value = serde_json::from_slice(&job.input).expect("document");
            assert_eq!(
                document["aloft"]["id"],
                json!(job.run_id),
                "the run it carries"
            );
            if !keep_run {
                document.as_object_mut().expect("an object").remove("aloft");
            }
            let task = document["task"].clone();
            let record = DestinationRecord::ended_now(
                "arn:aws:lambda:us-east-1:123456789012:function:task",
                format!("{}/{}/{}", job.run_id, job.key, job.attempt),
                document,
                200,
                None,
                json!({"done": task}),
            );
            results.send_record(&record).await.map_err(StartError::Port)
        })
    }

    fn cancel(&self, _run_id: &str, _key: &TaskKey, _attempt: u32) {}
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_that_brings_its_run_is_handled_without_reading_the_run() {
    let stack = LocalAws::start();
    let yaml = "
name: carried
tasks:
  a: {run: {command: [answers]}}
  b: {depends_on: [a], run: {command: [answers]}}
  c: {depends_on: [b], run: {command: [answers]}}
  d: {depends_on: [c], run: {command: [answers]}}
";
    let mut reads = Vec::new();
    for keep_run in [true, false] {
        let resources = stack.create(if keep_run { "kept" } else { "cut" }, 5, 1);
        let counter = CallCounter::new();
        let backend = counted_backend(&stack, &resources, &[], counter.clone()).await;
        let engine = backend.engine_with(Some(Arc::new(AnsweredLikeLambda { keep_run })));
        let run = run_to_end(&backend, &engine, yaml, json!({"day": 4})).await;
        assert_eq!(run.status, RunStatus::Succeeded, "keep_run {keep_run}");
        let outputs: Vec<(TaskKey, TaskState, Option<String>)> = tasks(&backend.store(), &run.id)
            .await
            .into_iter()
            .map(|(t, _)| (t.key, t.state, t.output))
            .collect();
        for (key, state, output) in &outputs {
            assert_eq!(*state, TaskState::Succeeded, "{key}");
            let expected = json!({"done": key.task}).to_string();
            assert_eq!(output.as_deref(), Some(expected.as_str()), "{key}");
        }
        reads.push(dynamodb_calls(&counter, "GetItem"));
    }
    // The same run, the same requests, but one read of the run for each of the four
    // results whose document lost the run it carried.
    assert_eq!(
        reads[1],
        reads[0] + 4,
        "GetItem requests with and without: {reads:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_started_while_its_run_stops_is_stopped_too() {
    let stack = LocalAws::start();
    let resources = stack.create("stopping", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let silent = Arc::new(Silent::default());
    let commands: Arc<dyn LocalCommands> = silent.clone();
    // `later` is started (by a result that came with a copy of the run from before it
    // stopped) between the stop's read of the tasks and its write that skips `later`.
    let faults = Faults::starting_before_skip("later");
    let engine = recording_engine(&backend, &faults, false, Some(commands), Arc::default());
    let yaml = "
name: stopping
deadline: 2s
on_deadline: fail
tasks:
  first: {run: {command: [never-answers]}}
  later: {depends_on: [first], run: {command: [never-answers]}}
  last: {depends_on: [later], run: {command: [never-answers]}}
";
    let run = run_to_end(&backend, &engine, yaml, json!({})).await;

    assert_eq!(run.status, RunStatus::TimedOut);
    let tasks = tasks(&backend.store(), &run.id).await;
    assert_eq!(
        state_of(&tasks, &TaskKey::task("first")),
        (TaskState::TimedOut, 1)
    );
    // Refused as a skip, it was stopped as the running attempt it had become.
    assert_eq!(
        state_of(&tasks, &TaskKey::task("later")),
        (TaskState::TimedOut, 1)
    );
    assert_eq!(
        state_of(&tasks, &TaskKey::task("last")),
        (TaskState::Skipped, 0)
    );
    assert_eq!(
        faults.started_before_skip.lock().expect("race").as_deref(),
        None
    );
    assert_eq!(
        silent.started.load(Ordering::SeqCst),
        1,
        "only `first` was invoked"
    );
    assert_eq!(
        silent.cancelled.load(Ordering::SeqCst),
        2,
        "both running attempts"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runs_history_expires_after_the_retention_and_definitions_never() {
    let stack = LocalAws::start();
    let resources = stack.create("retained", 5, 1);
    let backend = backend(&stack, &resources, &[("ALOFT_RUN_RETENTION_DAYS", "30")]).await;
    let yaml = "
name: retained
concurrency: {max_tasks: 2}
tasks:
  a: {run: {pass: {}}}
  b: {run: {pass: {}}}
  join: {depends_on: [a, b], run: {pass: {}}}
";
    let before = SystemClock.now() / 1000;
    let run = run_to_end(&backend, &backend.engine(), yaml, json!({})).await;
    let after = SystemClock.now() / 1000;
    assert_eq!(run.status, RunStatus::Succeeded);

    let thirty_days = 30 * 86_400;
    let mut kinds = std::collections::BTreeMap::new();
    for item in table_items(&backend).await {
        let pk = get_s(&item, "pk").unwrap_or_default().to_owned();
        let sk = get_s(&item, "sk").unwrap_or_default().to_owned();
        let expires: Option<u64> = item
            .get("expires_at")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok());
        let kind = format!(
            "{}/{}",
            pk.split('#').next().unwrap_or(""),
            sk.split('#').next().unwrap_or("")
        );
        if pk.starts_with("RUN#") || pk.starts_with("KEY#") {
            let at = expires.unwrap_or_else(|| panic!("{pk} {sk} has no expiry"));
            assert!(
                (before + thirty_days..=after + thirty_days).contains(&at),
                "{pk} {sk} expires at {at}, not 30 days after {before}..{after}"
            );
        } else {
            assert_eq!(expires, None, "{pk} {sk} must not expire");
        }
        kinds.insert(kind, ());
    }
    // The run, its tasks, the join's upstream record, its run key; the definition and
    // the run's concurrency scope.
    let kinds: Vec<&str> = kinds.keys().map(String::as_str).collect();
    for kind in [
        "RUN/RUN",
        "RUN/TASK",
        "RUN/UP",
        "KEY/KEY",
        "WF/V",
        "LIMIT/LIMIT",
    ] {
        assert!(kinds.contains(&kind), "no {kind} item among {kinds:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_result_is_judged_by_the_start_its_task_document_carried() {
    let stack = LocalAws::start();
    let resources = stack.create("claimed", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let engine = backend.engine_with(Some(Arc::new(ClaimsEarlierStart { earlier_ms: 60_000 })));
    let yaml = "
name: claimed
tasks:
  short: {run: {command: [answers]}, timeout: 30s}
  long: {run: {command: [answers]}, timeout: 5m}
";
    let run = run_to_end(&backend, &engine, yaml, json!({})).await;

    // Both answered within a second of their start as stored; the records said a minute.
    let tasks = tasks(&backend.store(), &run.id).await;
    let short = tasks
        .iter()
        .find(|(t, _)| t.key == TaskKey::task("short"))
        .expect("short");
    assert_eq!((short.0.state, short.0.attempt), (TaskState::TimedOut, 1));
    assert_eq!(
        short.0.failure.as_ref().map(|f| f.kind.as_str()),
        Some("timeout")
    );
    assert_eq!(
        state_of(&tasks, &TaskKey::task("long")),
        (TaskState::Succeeded, 1)
    );
    assert_eq!(run.status, RunStatus::Failed);
}

// ---------------------------------------------------------------------------------------

const FAN: &str = "
name: faults
tags: {team: data}
concurrency: {max_tasks: 2}
tasks:
  start: {run: {pass: {result: {items: [1, 2, 3]}}}}
  each:
    depends_on: [start]
    for_each: $.start.items
    max_concurrency: 2
    run: {pass: {result: done}}
  left: {depends_on: [start], run: {pass: {result: left}}}
  right: {depends_on: [start], run: {pass: {result: right}}}
  # Skipped while planning, and so is what follows: a planner that stops after the
  # first skip must still get to the second.
  gate: {depends_on: [start], trigger_rule: all_failed, run: {pass: {}}}
  after_gate: {depends_on: [gate], run: {pass: {}}}
  join:
    depends_on: [each, left, right, after_gate]
    trigger_rule: none_failed
    run: {pass: {result: {ok: true}}}
";

fn faulty_engine(
    backend: &Backend,
    faults: &Faults,
    twice: bool,
) -> Engine<DyingStore, OddQueue, aloft_aws::LambdaInvoker, SystemClock, aloft_aws::EventBridgeEvents>
{
    recording_engine(backend, faults, twice, None, Arc::default())
}

/// [`faulty_engine`] running `command` tasks with `commands`, noting the type of every
/// message it sends in `sent`.
fn recording_engine(
    backend: &Backend,
    faults: &Faults,
    twice: bool,
    commands: Option<Arc<dyn LocalCommands>>,
    sent: Arc<std::sync::Mutex<Vec<String>>>,
) -> Engine<DyingStore, OddQueue, aloft_aws::LambdaInvoker, SystemClock, aloft_aws::EventBridgeEvents>
{
    let invoker = backend.engine_with(commands).invoker().clone();
    Engine::new(
        DyingStore {
            inner: backend.store(),
            faults: faults.clone(),
        },
        OddQueue {
            inner: backend.queue(),
            faults: faults.clone(),
            twice,
            sent,
        },
        invoker,
        SystemClock,
        aloft_aws::engine_config(),
    )
    .with_events(aloft_aws::EventBridgeEvents::new(
        backend.eventbridge.clone(),
        &backend.settings.event_bus,
    ))
}

async fn assert_fan_settled_once(backend: &Backend, run: &RunRecord, what: &str) {
    assert_eq!(run.status, RunStatus::Succeeded, "{what}");
    let tasks = tasks(&backend.store(), &run.id).await;
    for name in ["start", "each", "left", "right", "join"] {
        assert_eq!(
            state_of(&tasks, &TaskKey::task(name)),
            (TaskState::Succeeded, 1),
            "{what}: task {name}"
        );
    }
    for name in ["gate", "after_gate"] {
        assert_eq!(
            state_of(&tasks, &TaskKey::task(name)),
            (TaskState::Skipped, 0),
            "{what}: task {name}"
        );
    }
    for index in 0..3 {
        assert_eq!(
            state_of(&tasks, &TaskKey::item("each", index)),
            (TaskState::Succeeded, 1),
            "{what}: item {index}"
        );
    }
    let join = tasks
        .iter()
        .find(|(t, _)| t.key == TaskKey::task("join"))
        .map(|(t, _)| t.output.clone());
    assert_eq!(join, Some(Some("{\"ok\":true}".to_owned())), "{what}");
    assert_eq!(
        leases(backend).await,
        Vec::<String>::new(),
        "{what}: leases left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_message_sent_twice_still_settles_each_task_once() {
    let stack = LocalAws::start();
    let resources = stack.create("twice", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let engine = faulty_engine(&backend, &Faults::new(0), true);
    let run = run_to_end(&backend, &engine, FAN, json!({})).await;
    assert_fan_settled_once(&backend, &run, "doubled sends").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_dying_after_any_write_or_before_any_send_loses_nothing() {
    let stack = LocalAws::start();
    die_everywhere(&stack, Shape::Fan, 20).await;
}

/// The workflows the fault sweeps run, and what each run must end as.
#[derive(Clone, Copy)]
enum Shape {
    /// [`FAN`]: every task run once.
    Fan,
    /// [`WATCHED`]: attempts that never report, each timed out once.
    Watched,
}

impl Shape {
    fn yaml(self) -> &'static str {
        match self {
            Self::Fan => FAN,
            Self::Watched => WATCHED,
        }
    }

    fn engine(
        self,
        backend: &Backend,
        faults: &Faults,
    ) -> Engine<
        DyingStore,
        OddQueue,
        aloft_aws::LambdaInvoker,
        SystemClock,
        aloft_aws::EventBridgeEvents,
    > {
        let commands: Option<Arc<dyn LocalCommands>> = match self {
            Self::Fan => None,
            Self::Watched => Some(Arc::new(Silent::default())),
        };
        recording_engine(backend, faults, false, commands, Arc::default())
    }

    async fn check(self, backend: &Backend, run: &RunRecord, case: &str) {
        match self {
            Self::Fan => assert_fan_settled_once(backend, run, case).await,
            Self::Watched => assert_watched_timed_out(backend, run, case).await,
        }
    }
}

/// Run `shape` once to count the places a handler could die (more than `least`), then
/// once per place, each dying there once, all at the same time.
async fn die_everywhere(stack: &LocalAws, shape: Shape, least: usize) {
    let clean = stack.create("clean", 5, 1);
    let backend_clean = backend(stack, &clean, &[]).await;
    let counting = Faults::new(0);
    let engine = shape.engine(&backend_clean, &counting);
    let run = run_to_end(&backend_clean, &engine, shape.yaml(), json!({})).await;
    shape.check(&backend_clean, &run, "clean run").await;
    let places = counting.count();
    assert!(
        places > least,
        "a run of this shape writes and sends more than {places} times"
    );
    let mut runs = Vec::new();
    for place in 1..=places {
        let resources = stack.create(&format!("die{place}"), 5, 1);
        runs.push(async move {
            let backend = backend(stack, &resources, &[]).await;
            let engine = shape.engine(&backend, &Faults::new(place));
            let run = run_to_end(&backend, &engine, shape.yaml(), json!({})).await;
            shape
                .check(&backend, &run, &format!("dying at place {place}"))
                .await;
        });
    }
    join_all(runs).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wide_fan_in_reads_its_upstreams_once_they_have_all_settled() {
    let stack = LocalAws::start();
    let resources = stack.create("fanin", 5, 1);
    let counter = CallCounter::new();
    let backend = counted_backend(&stack, &resources, &[], counter.clone()).await;
    let middle: Vec<String> = (0..40).map(|i| format!("m{i:02}")).collect();
    let mut yaml = String::from("name: wide\ntasks:\n  root: {run: {pass: {}}}\n");
    for name in &middle {
        yaml.push_str(&format!(
            "  {name}: {{depends_on: [root], run: {{pass: {{}}}}}}\n"
        ));
    }
    yaml.push_str(&format!(
        "  sink: {{depends_on: [{}], run: {{pass: {{result: done}}}}}}\n",
        middle.join(", ")
    ));
    let run = run_to_end(&backend, &backend.engine(), &yaml, json!({})).await;

    assert_eq!(run.status, RunStatus::Succeeded);
    let tasks = tasks(&backend.store(), &run.id).await;
    assert_eq!(
        state_of(&tasks, &TaskKey::task("sink")),
        (TaskState::Succeeded, 1)
    );
    // Task records are read in batches: the first plan reads none, since it started the
    // run and so no task can have been planned yet; nor does the plan after `root`,
    // since `root` settled in that same handling; and the sink's 40 upstreams are read
    // once, when the last of them has settled, not once per upstream (40 batches). A
    // redelivery under a slow machine may add one.
    let batches = dynamodb_calls(&counter, "BatchGetItem");
    assert!(
        (1..=2).contains(&batches),
        "{batches} BatchGetItem requests for a 40-wide fan-in"
    );
    // The 40 dispatches arrive ten to a batch: each reads its task, and the run is read
    // once per batch, not once per message (that would be 80 and more).
    let gets = dynamodb_calls(&counter, "GetItem");
    assert!(gets <= 60, "{gets} GetItem requests for a 40-wide fan-out");
}

/// How many requests of DynamoDB `operation` `counter` has seen.
fn dynamodb_calls(counter: &CallCounter, operation: &str) -> u64 {
    counter
        .snapshot()
        .get(&("DynamoDB".to_owned(), operation.to_owned()))
        .copied()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slot_leases_keep_their_capacity_and_most_cost_one_write() {
    let stack = LocalAws::start();
    let resources = stack.create("leases", 5, 1);
    let counter = CallCounter::new();
    let backend = counted_backend(&stack, &resources, &[], counter.clone()).await;
    let store = backend.store();
    let pool = Slot {
        scope: "pool:db".into(),
        capacity: 2,
    };
    let run = Slot {
        scope: "run:r1".into(),
        capacity: 10,
    };
    let take = |slots: Vec<Slot>, holder: &'static str, now: u64, expires: u64| {
        let store = store.clone();
        async move {
            store
                .acquire(&slots, holder, now, expires)
                .await
                .expect("acquire")
        }
    };

    assert_eq!(take(vec![pool.clone()], "a", 1_000, 5_000).await, None);
    assert_eq!(take(vec![pool.clone()], "b", 1_000, 9_000).await, None);
    assert_eq!(
        take(vec![pool.clone()], "c", 1_000, 9_000).await,
        Some("pool:db".to_owned()),
        "a third holder of a 2-slot scope"
    );
    // A holder that asks again (a duplicate dispatch) keeps its lease.
    assert_eq!(take(vec![pool.clone()], "a", 1_000, 5_000).await, None);
    // Once a's lease has expired, c takes its place.
    assert_eq!(take(vec![pool.clone()], "c", 6_000, 9_000).await, None);
    let mut held = leases(&backend).await;
    held.sort();
    assert_eq!(held, ["LIMIT#pool:db: b", "LIMIT#pool:db: c"]);
    // All or none: d's run slot is given back when the pool is full.
    assert_eq!(
        take(vec![run.clone(), pool.clone()], "d", 6_000, 9_000).await,
        Some("pool:db".to_owned())
    );
    assert!(!leases(&backend).await.iter().any(|l| l.ends_with(": d")));

    // With room in an existing scope, a lease is one UpdateItem and nothing else.
    counter.reset();
    assert_eq!(take(vec![run.clone()], "e", 6_000, 9_000).await, None);
    let requests: u64 = counter.snapshot().values().sum();
    assert_eq!(
        (dynamodb_calls(&counter, "UpdateItem"), requests),
        (1, 1),
        "requests for one lease: {:?}",
        counter.snapshot()
    );

    // A release frees the scopes named where the holder held a lease, once.
    let both = ["pool:db".to_owned(), "run:r1".to_owned()];
    assert_eq!(
        store.release("b", &both).await.expect("release"),
        ["pool:db"]
    );
    assert_eq!(
        store.release("b", &both).await.expect("again"),
        Vec::<String>::new()
    );
    assert_eq!(take(vec![pool.clone()], "f", 6_000, 9_000).await, None);
    let mut held = leases(&backend).await;
    held.sort();
    assert_eq!(
        held,
        ["LIMIT#pool:db: c", "LIMIT#pool:db: f", "LIMIT#run:r1: e"]
    );
}

const BUFFERED: &str = "
name: buffered
schedule: {expression: rate(1 hour), overlap: buffer_one}
tasks:
  a: {run: {pass: {result: 1}}}
  b: {depends_on: [a], run: {pass: {result: 2}}}
";

fn keyed(yaml: &str, key: &str) -> StartRequest {
    StartRequest {
        definition: definition(yaml),
        input: json!({}),
        idempotency_key: Some(key.to_owned()),
        scheduled_time: None,
        workdir: None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlap_policies_hold_on_dynamodb() {
    let stack = LocalAws::start();
    let resources = stack.create("overlap", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let engine = backend.engine();

    // buffer_one: the second start waits behind the first, a third is skipped.
    let first = engine.trigger(keyed(BUFFERED, "t1")).await.expect("first");
    assert_eq!(first.admission, Admission::Started);
    let second = engine.trigger(keyed(BUFFERED, "t2")).await.expect("second");
    assert_eq!(
        second.admission,
        Admission::Buffered {
            behind: vec![first.run_id.clone()]
        }
    );
    let third = engine.trigger(keyed(BUFFERED, "t3")).await.expect("third");
    assert!(
        matches!(&third.admission, Admission::Skipped { .. }),
        "{:?}",
        third.admission
    );
    assert!(!third.created);
    // The same tick again is the run it made, not a skip.
    let again = engine.trigger(keyed(BUFFERED, "t2")).await.expect("again");
    assert_eq!(again.run_id, second.run_id);

    // When the first settles, the waiting run goes on by itself and settles too.
    let first_run = drive(&backend, &engine, &first.run_id).await;
    assert_eq!(first_run.status, RunStatus::Succeeded);
    let second_run = drive(&backend, &engine, &second.run_id).await;
    assert_eq!(second_run.status, RunStatus::Succeeded);
    assert!(
        second_run.started_at >= first_run.ended_at,
        "the waiting run started before the first settled"
    );

    // skip: nothing going, so a start runs; while it is going, another is skipped.
    let skip = BUFFERED.replace("buffer_one", "skip");
    let fourth = engine.trigger(keyed(&skip, "t4")).await.expect("fourth");
    assert_eq!(fourth.admission, Admission::Started);
    let fifth = engine.trigger(keyed(&skip, "t5")).await.expect("fifth");
    assert_eq!(
        fifth.admission,
        Admission::Skipped {
            active: vec![fourth.run_id.clone()]
        }
    );
    drive(&backend, &engine, &fourth.run_id).await;
}

/// Three attempts that never report: `a` and `b` start at once, `c` once both ended.
const WATCHED: &str = "
name: watched
tasks:
  a: {run: {command: [never-reports]}, timeout: 3s}
  b: {run: {command: [never-reports]}, timeout: 4s}
  c:
    depends_on: [a, b]
    trigger_rule: all_done
    run: {command: [never-reports]}
    timeout: 3s
";

/// How many messages of `kind` were sent.
fn sent_of(sent: &std::sync::Mutex<Vec<String>>, kind: &str) -> usize {
    sent.lock()
        .expect("sent")
        .iter()
        .filter(|k| *k == kind)
        .count()
}

async fn assert_watched_timed_out(backend: &Backend, run: &RunRecord, case: &str) {
    assert_eq!(run.status, RunStatus::Failed, "{case}");
    let tasks = tasks(&backend.store(), &run.id).await;
    for (name, limit) in [("a", 3000), ("b", 4000), ("c", 3000)] {
        let (record, history) = tasks
            .iter()
            .find(|(t, _)| t.key.task == name)
            .unwrap_or_else(|| panic!("{case}: no task {name}"));
        assert_eq!(
            (record.state, record.attempt, history.len()),
            (TaskState::TimedOut, 1, 1),
            "{case}: task {name}"
        );
        let ran = record.ended_at.unwrap_or(0) - record.started_at.unwrap_or(u64::MAX);
        assert!(
            ran >= limit,
            "{case}: {name} timed out after {ran} ms, its limit is {limit}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_watchdog_per_run_times_out_the_attempts_that_never_report() {
    let stack = LocalAws::start();
    let resources = stack.create("watched", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let silent = Arc::new(Silent::default());
    let sent = Arc::default();
    let commands: Arc<dyn LocalCommands> = silent.clone();
    let engine = recording_engine(
        &backend,
        &Faults::new(0),
        false,
        Some(commands),
        Arc::clone(&sent),
    );
    let run = run_to_end(&backend, &engine, WATCHED, json!({})).await;

    assert_watched_timed_out(&backend, &run, "one run").await;
    assert_eq!(silent.started.load(Ordering::SeqCst), 3);
    assert_eq!(silent.cancelled.load(Ordering::SeqCst), 3);
    // The run's watchdog is due 3 s after its start (its shortest limit), before the
    // deadlines of `a` and `b`: they are timed by it, with no delayed check of their
    // own, and the leg that finds each past its limit sends it a check due at once. It
    // comes back at each next deadline, and after `b` times out, one queue delay later;
    // `c` starts then, with its deadline before that, and sends its own delayed check.
    let all = sent.lock().map(|s| s.clone()).unwrap_or_default();
    assert_eq!(sent_of(&sent, "timeout_check later"), 1, "{all:?}");
    assert_eq!(sent_of(&sent, "timeout_check"), 2, "{all:?}");
    let legs = sent_of(&sent, "watch later");
    assert!(
        (2..=4).contains(&legs),
        "{legs} watchdog legs: {:?}",
        sent.lock()
    );
    assert!(
        backend
            .store()
            .run(&run.id)
            .await
            .expect("run")
            .and_then(|r| r.watch)
            .is_some(),
        "the run records its watchdog"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_watchdog_survives_doubled_messages_and_a_handler_dying_anywhere() {
    let stack = LocalAws::start();
    // Every message twice: each leg's duplicate ends on arrival instead of starting a
    // second watchdog.
    let doubled = stack.create("doubled", 5, 1);
    let backend_doubled = backend(&stack, &doubled, &[]).await;
    let sent = Arc::default();
    let commands: Arc<dyn LocalCommands> = Arc::new(Silent::default());
    let engine = recording_engine(
        &backend_doubled,
        &Faults::new(0),
        true,
        Some(commands),
        Arc::clone(&sent),
    );
    let run = run_to_end(&backend_doubled, &engine, WATCHED, json!({})).await;
    assert_watched_timed_out(&backend_doubled, &run, "doubled").await;
    let legs = sent_of(&sent, "watch later");
    assert!(
        legs <= 10,
        "{legs} watchdog legs sent for a run of three deadlines"
    );

    // A handler dying after any write or before any send.
    die_everywhere(&stack, Shape::Watched, 10).await;
}

const SILENT: &str = "
name: silent
tags: {team: ops, cost-center: cc-7}
pools: {solo: 1}
tasks:
  quiet:
    run: {command: [never-reports]}
    pool: solo
    timeout: 2s
    retry: {max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [timeout]}
  after:
    depends_on: [quiet]
    trigger_rule: all_done
    pool: solo
    run: {pass: {result: after}}
";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_task_that_never_reports_times_out_frees_its_slot_and_retries() {
    let stack = LocalAws::start();
    let resources = stack.create("silent", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let silent = Arc::new(Silent::default());
    let engine = backend.engine_with(Some(silent.clone()));
    let run = run_to_end(&backend, &engine, SILENT, json!({})).await;

    assert_eq!(run.status, RunStatus::Failed);
    let tasks = tasks(&backend.store(), &run.id).await;
    assert_eq!(
        state_of(&tasks, &TaskKey::task("quiet")),
        (TaskState::TimedOut, 2)
    );
    assert_eq!(
        state_of(&tasks, &TaskKey::task("after")),
        (TaskState::Succeeded, 1)
    );
    let history: Vec<(u32, String, String)> = tasks
        .iter()
        .find(|(t, _)| t.key.task == "quiet")
        .map(|(_, h)| {
            h.iter()
                .map(|a| {
                    (
                        a.attempt,
                        a.state.clone(),
                        a.failure.clone().unwrap_or_default().0,
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        history,
        vec![
            (1, "timed_out".to_owned(), "timeout".to_owned()),
            (2, "timed_out".to_owned(), "timeout".to_owned())
        ]
    );
    assert_eq!(
        silent.started.load(Ordering::SeqCst),
        2,
        "each attempt started once"
    );
    assert_eq!(
        silent.cancelled.load(Ordering::SeqCst),
        2,
        "each attempt stopped at its timeout"
    );
    assert_eq!(leases(&backend).await, Vec::<String>::new());

    // The lifecycle events, as EventBridge delivered them to the test's queue.
    let events = drain(&backend, resources.get("ALOFT_EVENTS_QUEUE_URL")).await;
    let mut seen: Vec<(String, String)> = events
        .iter()
        .map(|e| {
            (
                e["detail-type"].as_str().unwrap_or_default().to_owned(),
                e["detail"]["status"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(
        seen,
        vec![
            ("Run Failed".to_owned(), "failed".to_owned()),
            ("Run Started".to_owned(), "running".to_owned()),
            ("Task Failed".to_owned(), "timed_out".to_owned()),
        ]
    );
    for event in &events {
        assert_eq!(event["source"], "aloft");
        assert_eq!(event["detail"]["workflow"], "silent");
        assert_eq!(event["detail"]["run_id"], run.id.as_str());
        assert_eq!(event["detail"]["version"], run.version.as_str());
        assert_eq!(
            event["detail"]["tags"],
            json!({"team": "ops", "cost-center": "cc-7"})
        );
    }
    let failed = events
        .iter()
        .find(|e| e["detail-type"] == "Task Failed")
        .expect("Task Failed");
    assert_eq!(failed["detail"]["task"], "quiet");
    assert_eq!(failed["detail"]["attempt"], 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_poison_message_goes_to_the_dead_letter_queue_and_fails_its_run() {
    let stack = LocalAws::start();
    let resources = stack.create("poison", 2, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let starter = backend.engine();
    let started = starter
        .trigger(StartRequest {
            definition: definition(FAN),
            input: json!({}),
            idempotency_key: None,
            scheduled_time: None,
            workdir: None,
        })
        .await
        .expect("trigger");
    // The definition the run names is lost: planning it fails on every delivery.
    let run = backend
        .store()
        .run(&started.run_id)
        .await
        .expect("read")
        .expect("run");
    backend
        .dynamodb
        .delete_item()
        .table_name(&backend.settings.table)
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S("WF#faults".into()),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("V#{}", run.version)),
        )
        .send()
        .await
        .expect("delete the definition");

    let engine = backend.engine();
    let settled = drive(&backend, &engine, &started.run_id).await;
    assert_eq!(settled.status, RunStatus::Failed);
    let tasks = tasks(&backend.store(), &started.run_id).await;
    for name in ["start", "each", "left", "right", "join"] {
        assert_eq!(
            state_of(&tasks, &TaskKey::task(name)),
            (TaskState::Skipped, 0),
            "{name}"
        );
    }
    // Its third receive finds it over the redrive count: SQS moves it aside.
    let mut dead = Vec::new();
    let start = Instant::now();
    while dead.is_empty() {
        assert!(
            start.elapsed() < GUARD,
            "the message never reached the dead-letter queue"
        );
        let _ = poll_once(
            &backend,
            &engine,
            QueueName::Plan,
            PollOptions { wait_seconds: 1 },
        )
        .await;
        dead = drain(&backend, resources.get("ALOFT_PLAN_DLQ_URL")).await;
    }
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["type"], "plan");
    assert_eq!(dead[0]["run_id"], started.run_id.as_str());

    let events = drain(&backend, resources.get("ALOFT_EVENTS_QUEUE_URL")).await;
    let failed = events
        .iter()
        .find(|e| e["detail-type"] == "Run Failed")
        .expect("a Run Failed event");
    let reason = failed["detail"]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("a plan message failed on all 2 deliveries")
            && reason.contains("is missing from the store"),
        "{reason}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_reports_only_its_failed_messages() {
    let stack = LocalAws::start();
    let resources = stack.create("batch", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let engine = backend.engine();
    let unknown_run = Message::Plan {
        run_id: "20261204-000000-000000000000".into(),
        settled: Vec::new(),
    };
    let batch = vec![
        Received {
            id: "good".into(),
            body: serde_json::to_string(&unknown_run).expect("serialise"),
            receive_count: 1,
        },
        Received {
            id: "garbage".into(),
            body: "{\"type\": \"launch\"}".into(),
            receive_count: 1,
        },
    ];
    assert_eq!(
        handle_batch(&engine, batch, 5).await,
        vec!["garbage".to_owned()]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_input_too_large_for_the_run_item_is_refused_before_anything_is_written() {
    let stack = LocalAws::start();
    let resources = stack.create("big", 5, 1);
    let backend = backend(&stack, &resources, &[]).await;
    let engine = backend.engine();
    let error = engine
        .trigger(StartRequest {
            definition: definition(FAN),
            input: json!({"blob": "x".repeat(400_000)}),
            idempotency_key: Some("big".into()),
            scheduled_time: None,
            workdir: None,
        })
        .await
        .expect_err("too large");
    assert!(!error.is_retryable());
    assert!(
        error.to_string().starts_with("run input is 400011 bytes"),
        "{error}"
    );
    let items = table_items(&backend).await;
    let written: Vec<&str> = items.iter().filter_map(|i| get_s(i, "pk")).collect();
    // Only the definition version: no run, no task, no run key.
    assert_eq!(written, vec!["WF#faults"]);
}
