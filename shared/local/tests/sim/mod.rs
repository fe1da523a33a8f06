//! Scenario harness: the real engine and the real SQLite store (a temporary database per
//! test), a [`ManualClock`] that only moves when nothing is due, and [`SimInvoker`], a
//! fake of the `Invoker` port that plays `command` tasks from a tiny script language
//! instead of running processes. No sleeps, no real time.
//!
//! The script language (the argv of a `command` task):
//!
//! | argv | the simulated attempt |
//! |---|---|
//! | `sleep N` | succeeds N seconds after it starts, output `null` |
//! | `true` / `false` | succeeds (output `null`) / fails with kind `error`, at once |
//! | `fail-once` | fails at once the first time its task (or item) runs, then succeeds |
//! | `fail-after N` | fails N seconds after it starts |
//! | `cat` / `echo-input` | succeeds at once with its input document as output |
//! | `emit JSON` | succeeds at once with JSON as output |
//! | `output-bytes N` | succeeds at once with a string output whose JSON text is N bytes |
//! | `start-error-once` | the first start is refused with a retryable port error, then `true` |
//! | `hang` | never finishes |
//!
//! Anything else is refused at start, as a missing program would be.

#![allow(dead_code)] // each test file uses its own part of the harness

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use rusqlite::{Connection, params};
use serde_json::{Value, json};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

use aloft_core::definition::RunSpec;
use aloft_core::{Failure, RunStatus, TaskState};
use aloft_engine::message::{Message, Outcome, Outgoing, TaskKey};
use aloft_engine::ports::{Clock, Invoker, Job, PortError, PortResult, Queue, StartError, Store};
use aloft_engine::record::{RunRecord, TaskRecord};
use aloft_engine::{Config, EngineError, StartRequest, Started};
use aloft_local::runner::next_visible;
use aloft_local::{DeferredInvoker, ManualClock, Runner, Sqlite};

/// The fake clock's start: 2026-01-01T00:00:00Z. Times in reports are relative to it.
pub const T0: u64 = 1_767_225_600_000;

/// Most loop turns one drive may take before the harness calls the run stuck.
const MAX_TURNS: usize = 2_000_000;

/// Milliseconds in a second, for readable expectations.
pub const S: u64 = 1000;

/// One simulated attempt start, recorded when the runner flushed it (after its commit).
#[derive(Clone, Debug, PartialEq)]
pub struct Start {
    /// The task or item.
    pub key: TaskKey,
    /// The attempt.
    pub attempt: u32,
    /// Start time, ms after [`T0`].
    pub at: u64,
    /// The harness turn it was started in.
    pub turn: usize,
    /// The input document it was given (`null` for `for_each` items, whose inputs are
    /// not kept: ten thousand of them would be large).
    pub input: Value,
}

/// One cancel the engine asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cancel {
    /// The task or item.
    pub key: TaskKey,
    /// The attempt.
    pub attempt: u32,
    /// When, ms after [`T0`].
    pub at: u64,
}

struct Finish {
    due: u64,
    seq: u64,
    key: TaskKey,
    run_id: String,
    attempt: u32,
    outcome: Outcome,
}

#[derive(Default)]
struct World {
    sender: Option<UnboundedSender<Message>>,
    pending: Vec<Job>,
    starts: Vec<Start>,
    cancels: Vec<Cancel>,
    finishing: Vec<Finish>,
    seq: u64,
    turn: usize,
    failed_once: HashSet<TaskKey>,
    refused_once: HashSet<TaskKey>,
    /// How attempts ended, as the real invoker's status files record it.
    finished: Vec<(String, TaskKey, u32, Outcome, u64)>,
    cancel_errors: u32,
    stall_starts: bool,
    most_running: BTreeMap<String, usize>,
}

/// The simulated invoker. Starts are deferred like the real one's: recorded by `start`,
/// begun by `flush` after the runner's commit, forgotten by `discard_after`.
#[derive(Clone)]
pub struct SimInvoker {
    world: Arc<Mutex<World>>,
    clock: ManualClock,
}

impl std::fmt::Debug for SimInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimInvoker").finish_non_exhaustive()
    }
}

impl SimInvoker {
    fn world(&self) -> MutexGuard<'_, World> {
        self.world.lock().expect("sim world lock")
    }
}

impl Invoker for SimInvoker {
    async fn start(&self, job: Job) -> Result<(), StartError> {
        let stall = {
            let mut world = self.world();
            if let RunSpec::Command(argv) = &job.run {
                if argv.first().map(String::as_str) == Some("start-error-once")
                    && world.refused_once.insert(job.key.clone())
                {
                    let error = PortError::retryable("simulated: invoke throttled");
                    return Err(StartError::Port(error));
                }
                if script(argv, &json!(null), false).is_none() {
                    let failure = Failure::error(format!("executable not found: {}", argv[0]));
                    return Err(StartError::Rejected(failure));
                }
            }
            world.pending.push(job);
            world.stall_starts
        };
        if stall {
            // A process killed here, mid-batch: the future is dropped while pending.
            std::future::pending::<()>().await;
        }
        Ok(())
    }

    async fn cancel(&self, _run_id: &str, key: &TaskKey, attempt: u32) -> PortResult<()> {
        let now = self.clock.now() - T0;
        let mut world = self.world();
        if world.cancel_errors > 0 {
            world.cancel_errors -= 1;
            return Err(PortError::retryable("simulated: cancel failed"));
        }
        world.cancels.push(Cancel {
            key: key.clone(),
            attempt,
            at: now,
        });
        world
            .finishing
            .retain(|f| !(f.key == *key && f.attempt == attempt));
        Ok(())
    }
}

impl DeferredInvoker for SimInvoker {
    fn pending(&self) -> usize {
        self.world().pending.len()
    }

    fn discard_after(&self, keep: usize) {
        self.world().pending.truncate(keep);
    }

    fn flush(&self) {
        let now = self.clock.now();
        let mut world = self.world();
        let jobs = std::mem::take(&mut world.pending);
        for job in jobs {
            let RunSpec::Command(argv) = &job.run else {
                panic!("only command tasks reach the invoker, got {:?}", job.run);
            };
            let needed = job.key.item.is_none() || matches!(argv[0].as_str(), "cat" | "echo-input");
            let input: Value = if needed {
                serde_json::from_slice(&job.input).expect("task input is JSON")
            } else {
                Value::Null
            };
            let first_time = world.failed_once.insert(job.key.clone());
            let (after, outcome) = script(argv, &input, first_time).expect("checked at start");
            let turn = world.turn;
            world.starts.push(Start {
                key: job.key.clone(),
                attempt: job.attempt,
                at: now - T0,
                turn,
                input,
            });
            if let Some(outcome) = outcome {
                world.seq += 1;
                let seq = world.seq;
                world.finishing.push(Finish {
                    due: now + after,
                    seq,
                    key: job.key,
                    run_id: job.run_id,
                    attempt: job.attempt,
                    outcome,
                });
            }
        }
        let mut running: HashMap<&str, usize> = HashMap::new();
        for finish in &world.finishing {
            *running.entry(finish.key.task.as_str()).or_default() += 1;
        }
        let running: Vec<(String, usize)> = running
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect();
        for (task, count) in running {
            let most = world.most_running.entry(task).or_default();
            *most = (*most).max(count);
        }
    }
}

/// What a script does: after how long it ends and how (`None`: never), or `None` for an
/// unknown program.
fn script(argv: &[String], input: &Value, first_time: bool) -> Option<(u64, Option<Outcome>)> {
    let ok = |output| Some(Outcome::Succeeded { output });
    let fail = || {
        Some(Outcome::Failed {
            failure: Failure::error("exit status 1"),
        })
    };
    let secs = |i: usize| -> Option<u64> { argv.get(i)?.parse::<u64>().ok().map(|s| s * S) };
    let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
    Some(match argv.as_slice() {
        ["sleep", _] => (secs(1)?, ok(Value::Null)),
        ["fail-after", _] => (secs(1)?, fail()),
        ["true"] | ["start-error-once"] => (0, ok(Value::Null)),
        ["false"] => (0, fail()),
        ["fail-once"] if first_time => (0, fail()),
        ["fail-once"] => (0, ok(Value::Null)),
        ["cat"] | ["echo-input"] => (0, ok(input.clone())),
        ["emit", text] => (0, ok(serde_json::from_str(text).ok()?)),
        ["output-bytes", n] => {
            let n: usize = n.parse().ok()?;
            (0, ok(Value::String("a".repeat(n.checked_sub(2)?))))
        }
        ["hang"] => (0, None),
        _ => return None,
    })
}

/// Everything the harness saw while driving.
#[derive(Clone, Debug, Default)]
pub struct Observed {
    /// Runner steps taken.
    pub steps: usize,
    /// Runner steps that handled at least one message.
    pub busy_steps: usize,
    /// Handled messages by type (`plan`, `dispatch`, `complete`, `timeout_check`, ...),
    /// completions fed through the runner's channel included.
    pub handled: BTreeMap<String, usize>,
    /// Timeout checks handled before their due time (each re-arms).
    pub early_timeout_checks: usize,
    /// Slot leases held per scope after each step that changed them: (time, counts).
    pub leases: Vec<(u64, BTreeMap<String, u32>)>,
    /// Most leases held at once per scope.
    pub most_leases: BTreeMap<String, u32>,
    /// Largest message body seen in the queue.
    pub largest_message: usize,
    /// Top-level tasks by the turn they were first seen settled (when tracking).
    pub settled_turn: BTreeMap<String, usize>,
}

impl Observed {
    /// Handled messages of one type.
    pub fn count(&self, kind: &str) -> usize {
        self.handled.get(kind).copied().unwrap_or(0)
    }

    /// The lease counts of `scope` over time, one entry per time (the last of that time),
    /// consecutive repeats folded.
    pub fn usage(&self, scope_prefix: &str) -> Vec<(u64, u32)> {
        let mut out: Vec<(u64, u32)> = Vec::new();
        for (at, counts) in &self.leases {
            let count = counts
                .iter()
                .filter(|(scope, _)| scope.starts_with(scope_prefix))
                .map(|(_, n)| *n)
                .sum();
            if let Some(last) = out.last_mut().filter(|(t, _)| t == at) {
                last.1 = count;
            } else {
                out.push((*at, count));
            }
        }
        out.dedup_by(|b, a| a.1 == b.1);
        out
    }
}

/// The final picture of a run.
#[derive(Clone, Debug)]
pub struct Report {
    /// The run as stored.
    pub run: RunRecord,
    /// Every task and item as stored.
    pub records: Vec<TaskRecord>,
    /// Every start, in order.
    pub starts: Vec<Start>,
    /// Every cancel, in order.
    pub cancels: Vec<Cancel>,
    /// What the harness saw.
    pub observed: Observed,
}

impl Report {
    /// The run's status.
    pub fn status(&self) -> RunStatus {
        self.run.status
    }

    /// A top-level task's record.
    pub fn task(&self, name: &str) -> &TaskRecord {
        self.records
            .iter()
            .find(|r| r.key == TaskKey::task(name))
            .unwrap_or_else(|| panic!("no task {name}"))
    }

    /// A top-level task's (state, attempts).
    pub fn state(&self, name: &str) -> (TaskState, u32) {
        let record = self.task(name);
        (record.state, record.attempt)
    }

    /// Every top-level task's (state, attempts), by name.
    pub fn states(&self) -> BTreeMap<String, (TaskState, u32)> {
        self.records
            .iter()
            .filter(|r| r.key.item.is_none())
            .map(|r| (r.key.task.clone(), (r.state, r.attempt)))
            .collect()
    }

    /// The items of a `for_each` task.
    pub fn items(&self, name: &str) -> Vec<&TaskRecord> {
        self.records
            .iter()
            .filter(|r| r.key.task == name && r.key.item.is_some())
            .collect()
    }

    /// The starts of one task (items included), in order.
    pub fn starts_of(&self, name: &str) -> Vec<&Start> {
        self.starts.iter().filter(|s| s.key.task == name).collect()
    }

    /// When the run settled, ms after [`T0`].
    pub fn ended_at(&self) -> u64 {
        self.run.ended_at.expect("run settled") - T0
    }
}

/// Re-delivery of every handled message, to model at-least-once queues.
#[derive(Clone, Debug, Default)]
pub struct Duplicates {
    /// For each handled message, one copy per entry, visible this long after it was
    /// handled. Copies are not copied again.
    pub after_ms: Vec<u64>,
}

/// A simulated world: a database file, a manual clock, a simulated invoker and a runner.
pub struct Sim {
    dir: tempfile::TempDir,
    path: PathBuf,
    /// The fake clock.
    pub clock: ManualClock,
    invoker: SimInvoker,
    runner: Option<Runner<SimInvoker>>,
    config: Config,
    raw: Connection,
    /// Deliver every message again, as set here.
    pub duplicates: Duplicates,
    copies: HashSet<i64>,
    /// Record the turn each top-level task settled in (costs a read per step).
    pub track_settles: bool,
    /// What the harness saw.
    pub observed: Observed,
    turn: usize,
}

impl std::fmt::Debug for Sim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sim")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl Default for Sim {
    fn default() -> Self {
        Self::new()
    }
}

impl Sim {
    /// A fresh world with the default engine configuration.
    pub fn new() -> Self {
        Self::with_config(Config::default())
    }

    /// A fresh world with an engine configuration.
    pub fn with_config(config: Config) -> Self {
        let dir = tempfile::tempdir().expect("temp folder");
        let path = dir.path().join("aloft.db");
        let clock = ManualClock::at(T0);
        let invoker = SimInvoker {
            world: Arc::default(),
            clock: clock.clone(),
        };
        let mut sim = Self {
            raw: Connection::open_in_memory().expect("placeholder connection"),
            dir,
            path,
            clock,
            invoker,
            runner: None,
            config,
            duplicates: Duplicates::default(),
            copies: HashSet::new(),
            track_settles: false,
            observed: Observed::default(),
            turn: 0,
        };
        sim.open_runner();
        sim.raw = Connection::open(&sim.path).expect("second connection");
        sim.raw
            .busy_timeout(std::time::Duration::from_secs(30))
            .expect("busy timeout");
        sim
    }

    fn open_runner(&mut self) {
        let clock: Arc<dyn Clock> = Arc::new(self.clock.clone());
        let db = Sqlite::open(&self.path, clock).expect("open database");
        let (sender, completions) = unbounded_channel();
        self.invoker.world().sender = Some(sender);
        let runner =
            Runner::with_invoker(db, self.invoker.clone(), completions, self.config.clone());
        self.runner = Some(runner);
    }

    /// The runner.
    pub fn runner(&self) -> &Runner<SimInvoker> {
        self.runner.as_ref().expect("the runner is running")
    }

    /// The database path.
    pub fn path(&self) -> &std::path::Path {
        &self.path
    }

    /// A second connection to the database file.
    pub fn raw(&self) -> &Connection {
        &self.raw
    }

    /// Now, ms after [`T0`].
    pub fn now(&self) -> u64 {
        self.clock.now() - T0
    }

    /// Refuse the next `n` cancels with a retryable port error.
    pub fn fail_cancels(&self, n: u32) {
        self.invoker.world().cancel_errors = n;
    }

    /// Make every start from now on hang mid-batch (see [`Sim::crash_in_step`]).
    pub fn stall_starts(&self, stall: bool) {
        self.invoker.world().stall_starts = stall;
    }

    /// Most attempts of one task (items included) running at once in the simulation.
    pub fn most_running(&self, task: &str) -> usize {
        self.invoker
            .world()
            .most_running
            .get(task)
            .copied()
            .unwrap_or(0)
    }

    /// The starts so far.
    pub fn starts(&self) -> Vec<Start> {
        self.invoker.world().starts.clone()
    }

    /// Start a run of a workflow file's text with input `{}`.
    pub async fn start_yaml(&self, yaml: &str) -> String {
        self.start_request(request(yaml, json!({}), None))
            .await
            .expect("run starts")
            .run_id
    }

    /// Send a start request through the runner.
    pub async fn start_request(&self, request: StartRequest) -> Result<Started, EngineError> {
        self.runner().start(request).await
    }

    /// Start a workflow and drive it until it settles.
    pub async fn run_yaml(&mut self, yaml: &str) -> Report {
        let run_id = self.start_yaml(yaml).await;
        self.run_to_end(&run_id).await
    }

    /// Drive a run until it settles, then report.
    pub async fn run_to_end(&mut self, run_id: &str) -> Report {
        self.drive(run_id, None).await;
        self.report(run_id).await
    }

    /// Drive a run until the clock reads `until` (ms after [`T0`]) with nothing left due,
    /// or until it settles.
    pub async fn run_until(&mut self, run_id: &str, until: u64) {
        self.drive(run_id, Some(T0 + until)).await;
    }

    /// The run's picture now.
    pub async fn report(&self, run_id: &str) -> Report {
        let db = self.runner().db();
        let run = db.run(run_id).await.expect("read run").expect("run exists");
        let records = db.all_tasks(run_id).await.expect("read tasks");
        let world = self.invoker.world();
        Report {
            run,
            records,
            starts: world.starts.clone(),
            cancels: world.cancels.clone(),
            observed: self.observed.clone(),
        }
    }

    /// The run as stored.
    pub async fn run_record(&self, run_id: &str) -> RunRecord {
        let db = self.runner().db();
        db.run(run_id).await.expect("read run").expect("run exists")
    }

    /// Stop the runner without any cleanup, as SIGKILL would: its uncommitted work is
    /// lost with its connection; simulated attempts go on.
    pub fn kill(&mut self) {
        self.runner = None;
        self.invoker.world().sender = None;
    }

    /// Open a new runner on the same database, as `aloft resume` does: attempts still
    /// going report to it, and the run is planned again.
    pub async fn resume(&mut self, run_id: &str) {
        // Attempts that ended while no runner was alive wrote their status files then.
        let now = self.clock.now();
        {
            let mut world = self.invoker.world();
            let (ended, going): (Vec<Finish>, Vec<Finish>) = std::mem::take(&mut world.finishing)
                .into_iter()
                .partition(|f| f.due <= now);
            world.finishing = going;
            for finish in ended {
                let record = (
                    finish.run_id,
                    finish.key,
                    finish.attempt,
                    finish.outcome,
                    finish.due,
                );
                world.finished.push(record);
            }
        }
        self.open_runner();
        let db = self.runner().db();
        let mut messages = Vec::new();
        // As `Runner::recover` reads the status files of attempts it did not see end.
        for task in db.all_tasks(run_id).await.expect("read tasks") {
            if task.state != TaskState::Running || task.items.is_some() {
                continue;
            }
            let world = self.invoker.world();
            let ended = world.finished.iter().find(|(run, key, attempt, _, _)| {
                run == run_id && *key == task.key && *attempt == task.attempt
            });
            if let Some((_, key, attempt, outcome, due)) = ended {
                messages.push(Message::Complete {
                    run_id: run_id.to_owned(),
                    key: key.clone(),
                    attempt: *attempt,
                    outcome: outcome.clone(),
                    ended_at: Some(*due),
                    started_at: None,
                    run: None,
                });
            }
        }
        db.send_ahead(messages).expect("enqueue what ended");
        let plan = Message::Plan {
            run_id: run_id.to_owned(),
            settled: Vec::new(),
        };
        db.send(vec![Outgoing::now(plan)]).await.expect("enqueue");
    }

    /// Step until a step handles something, moving the clock to the next event while
    /// nothing is due. Returns the messages handled (0: nothing is left to happen).
    pub async fn step_once(&mut self, run_id: &str) -> usize {
        for _ in 0..MAX_TURNS {
            self.release_due();
            let handled = self.step(run_id).await;
            if handled > 0 {
                return handled;
            }
            if self.release_pending() {
                continue;
            }
            let next = [self.next_message(run_id), self.next_finish()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(at) => self.clock.set(at),
                None => return 0,
            }
        }
        panic!("run {run_id} handled nothing in {MAX_TURNS} turns");
    }

    /// Deliver a message through the runner's completion channel, as a worker reporting
    /// late would.
    pub fn deliver(&mut self, message: Message) {
        *self.observed.handled.entry("complete".into()).or_default() += 1;
        let world = self.invoker.world();
        world
            .sender
            .as_ref()
            .expect("a runner is running")
            .send(message)
            .expect("runner listens");
    }

    /// Poll one step until a start stalls, then drop the step and the runner: a process
    /// killed in the middle of a batch, its transaction open. Returns false when the
    /// step started nothing and so finished (the kill then came right after it).
    pub async fn crash_in_step(&mut self, run_id: &str) -> bool {
        let next = [self.next_message(run_id), self.next_finish()]
            .into_iter()
            .flatten()
            .min();
        if let Some(at) = next {
            self.clock.set(at);
        }
        self.release_due();
        self.stall_starts(true);
        let mut runner = self.runner.take().expect("the runner is running");
        let stalled = {
            let step = std::pin::pin!(runner.step(run_id));
            let mut context = std::task::Context::from_waker(std::task::Waker::noop());
            step.poll(&mut context).is_pending()
        };
        drop(runner);
        let mut world = self.invoker.world();
        world.sender = None;
        world.pending.clear();
        world.stall_starts = false;
        stalled
    }

    async fn drive(&mut self, run_id: &str, until: Option<u64>) {
        self.drive_all(&[run_id.to_owned()], until).await;
    }

    /// Drive several runs side by side, as one runner process per run would: each turn
    /// steps every run, and the clock moves only when no run has anything due.
    pub async fn drive_all(&mut self, run_ids: &[String], until: Option<u64>) {
        for _ in 0..MAX_TURNS {
            self.release_due();
            let mut handled = 0;
            let mut settled = true;
            for run_id in run_ids {
                handled += self.step(run_id).await;
                settled &= self.run_record(run_id).await.status.is_settled();
            }
            if settled && until.is_none() {
                return;
            }
            if handled > 0 || self.release_pending() {
                continue;
            }
            let next = run_ids
                .iter()
                .filter_map(|run_id| self.next_message(run_id))
                .chain(self.next_finish())
                .min();
            match (next, until) {
                (Some(at), Some(limit)) if at > limit => return self.clock.set(limit),
                (None, Some(limit)) => return self.clock.set(limit),
                (Some(at), _) if at > self.clock.now() => self.clock.set(at),
                (Some(_), _) => {}
                (None, None) => panic!(
                    "runs {run_ids:?} are stuck at t = {} ms: nothing due",
                    self.now()
                ),
            }
        }
        panic!("runs {run_ids:?} did not settle in {MAX_TURNS} turns");
    }

    /// One runner step, observed.
    async fn step(&mut self, run_id: &str) -> usize {
        self.turn += 1;
        self.invoker.world().turn = self.turn;
        let before = self.due_messages(run_id);
        let runner = self.runner.as_mut().expect("the runner is running");
        let report = runner.step(run_id).await.expect("runner step");
        self.observed.steps += 1;
        self.observed.busy_steps += usize::from(report.handled > 0);
        self.after_step(run_id, before);
        report.handled
    }

    fn due_messages(&self, run_id: &str) -> Vec<(i64, String, String)> {
        let mut select = self
            .raw
            .prepare_cached(
                "SELECT id, queue, body FROM messages WHERE run_id = ?1 AND visible_at <= ?2 \
                 ORDER BY visible_at, id LIMIT 2048",
            )
            .expect("prepare");
        let rows = select
            .query_map(params![run_id, self.clock.now()], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .expect("query due messages");
        rows.collect::<Result<_, _>>().expect("read due messages")
    }

    fn after_step(&mut self, run_id: &str, before: Vec<(i64, String, String)>) {
        let remaining: HashSet<i64> = {
            let mut select = self
                .raw
                .prepare_cached("SELECT id FROM messages WHERE run_id = ?1")
                .expect("prepare");
            let rows = select
                .query_map([run_id], |r| r.get(0))
                .expect("query messages");
            rows.collect::<Result<_, _>>().expect("read messages")
        };
        let now = self.clock.now();
        for (id, queue, body) in before {
            if remaining.contains(&id) {
                continue;
            }
            let copy = self.copies.remove(&id);
            // Completions fed through the channel were counted (and copied) when fed.
            if queue != "complete" || copy || !body.contains(r#""type":"complete""#) {
                self.count(&body, now);
            }
            if !copy && !body.contains(r#""type":"complete""#) {
                self.copy(run_id, &queue, &body, now);
            }
        }
        self.observe_db(run_id, now);
    }

    fn count(&mut self, body: &str, now: u64) {
        let message: Value = serde_json::from_str(body).expect("message JSON");
        let kind = message["type"].as_str().unwrap_or("unknown").to_owned();
        if kind == "timeout_check" && message["due_at"].as_u64().is_some_and(|due| now < due) {
            self.observed.early_timeout_checks += 1;
        }
        *self.observed.handled.entry(kind).or_default() += 1;
        self.observed.largest_message = self.observed.largest_message.max(body.len());
    }

    fn copy(&mut self, run_id: &str, queue: &str, body: &str, now: u64) {
        for delay in self.duplicates.after_ms.clone() {
            self.raw
                .execute(
                    "INSERT INTO messages (run_id, queue, body, visible_at) VALUES (?1, ?2, ?3, ?4)",
                    params![run_id, queue, body, now + delay],
                )
                .expect("insert duplicate");
            self.copies.insert(self.raw.last_insert_rowid());
        }
    }

    fn observe_db(&mut self, run_id: &str, now: u64) {
        let counts: BTreeMap<String, u32> = {
            let mut select = self
                .raw
                .prepare_cached("SELECT scope, count(*) FROM leases GROUP BY scope")
                .expect("prepare");
            let rows = select
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query leases");
            rows.collect::<Result<_, _>>().expect("read leases")
        };
        for (scope, count) in &counts {
            let most = self.observed.most_leases.entry(scope.clone()).or_default();
            *most = (*most).max(*count);
        }
        if self.observed.leases.last().map(|(_, c)| c) != Some(&counts) {
            self.observed.leases.push((now - T0, counts));
        }
        if self.track_settles {
            let mut select = self
                .raw
                .prepare_cached("SELECT task, state FROM tasks WHERE run_id = ?1 AND item = -1")
                .expect("prepare");
            let rows: Vec<(String, String)> = select
                .query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
                .expect("query tasks")
                .collect::<Result<_, _>>()
                .expect("read tasks");
            for (task, state) in rows {
                let settled = TaskState::parse(&state).is_some_and(TaskState::is_settled);
                if settled {
                    self.observed.settled_turn.entry(task).or_insert(self.turn);
                }
            }
        }
    }

    /// Feed the simulated attempts whose end has come to the runner's channel.
    fn release_due(&mut self) {
        let now = self.clock.now();
        let mut world = self.invoker.world();
        let Some(sender) = world.sender.clone() else {
            return;
        };
        let mut due: Vec<Finish> = Vec::new();
        let mut kept = Vec::new();
        for finish in std::mem::take(&mut world.finishing) {
            if finish.due <= now {
                due.push(finish);
            } else {
                kept.push(finish);
            }
        }
        world.finishing = kept;
        drop(world);
        due.sort_by_key(|f| (f.due, f.seq));
        let mut world = self.invoker.world();
        for finish in &due {
            let record = (finish.run_id.clone(), finish.key.clone(), finish.attempt);
            world.finished.push((
                record.0,
                record.1,
                record.2,
                finish.outcome.clone(),
                finish.due,
            ));
        }
        drop(world);
        for finish in due {
            let message = Message::Complete {
                run_id: finish.run_id.clone(),
                key: finish.key,
                attempt: finish.attempt,
                outcome: finish.outcome,
                ended_at: None,
                started_at: None,
                run: None,
            };
            *self.observed.handled.entry("complete".into()).or_default() += 1;
            let body = serde_json::to_string(&message).expect("serialize");
            self.copy(&finish.run_id, "complete", &body, now);
            sender.send(message).expect("runner listens");
        }
    }

    /// True when a simulated attempt is due now (it ends on the next turn).
    fn release_pending(&self) -> bool {
        let now = self.clock.now();
        self.invoker.world().finishing.iter().any(|f| f.due <= now)
    }

    fn next_message(&self, run_id: &str) -> Option<u64> {
        next_visible(self.runner().db(), run_id).expect("next visible")
    }

    fn next_finish(&self) -> Option<u64> {
        self.invoker.world().finishing.iter().map(|f| f.due).min()
    }
}

/// A start request for a workflow file's text.
pub fn request(yaml: &str, input: Value, key: Option<&str>) -> StartRequest {
    let definition = aloft_core::source::load_str("test.yaml", yaml)
        .unwrap_or_else(|problems| panic!("workflow does not load:\n{problems}"));
    StartRequest {
        definition,
        input,
        idempotency_key: key.map(str::to_owned),
        scheduled_time: None,
        workdir: None,
    }
}

/// Run an async test body on a fresh single-threaded runtime (for proptest bodies).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
        .block_on(future)
}
