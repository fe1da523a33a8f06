//! The ports the engine is written against. Each backend (embedded SQLite, AWS)
//! implements them; unit tests may implement them with fakes.
//!
//! Every write that changes a task or a run is conditional on the state (and attempt)
//! it leaves, and reports whether it applied. A write that did not apply is the normal
//! sign of a duplicate or late message, never an error.

use std::future::Future;

use serde_json::Value;

use aloft_core::definition::RunSpec;
use aloft_core::{Duration, Failure, RunStatus, TaskState};

use crate::message::{Message, Outgoing, TaskKey};
use crate::record::{ItemCounts, RunRecord, TaskRecord, WatchLeg};

/// An error from a backend, sorted into retryable (the message is delivered again) or
/// terminal.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct PortError {
    /// What went wrong.
    pub message: String,
    /// True when trying again may succeed.
    pub retryable: bool,
}

impl PortError {
    /// A transient error.
    pub fn retryable(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: true,
        }
    }

    /// A permanent error.
    pub fn terminal(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            retryable: false,
        }
    }
}

/// Result of a port call.
pub type PortResult<T> = Result<T, PortError>;

/// What creating a run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Created {
    /// The run was created.
    New,
    /// A run with the same workflow and key already exists.
    Existing {
        /// Its id.
        run_id: String,
        /// Its canonical input, to compare with the new request's.
        input: String,
        /// Its status.
        status: RunStatus,
    },
}

/// A conditional change of one task: applied only if the task is in `from` with
/// `attempt`.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskChange {
    /// Which task.
    pub key: TaskKey,
    /// The state it must be in.
    pub from: TaskState,
    /// The attempt it must be at.
    pub attempt: u32,
    /// The state it moves to.
    pub to: TaskState,
    /// The attempt it moves to.
    pub new_attempt: u32,
    /// Earliest start of the new attempt.
    pub not_before: Option<u64>,
    /// Start time of the attempt.
    pub started_at: Option<u64>,
    /// Settle time.
    pub ended_at: Option<u64>,
    /// Output JSON text.
    pub output: Option<String>,
    /// Failure.
    pub failure: Option<Failure>,
    /// The task is a sink (no task depends on it): settling it counts down the run's
    /// `unsettled`. A run is done when all its sinks have settled, since a task settles
    /// only after all its upstreams have. So settling any other task successfully
    /// touches no run counter, and needs no transaction.
    pub sink: bool,
}

/// What a conditional task change did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Applied {
    /// False when the condition did not hold: nothing changed.
    pub applied: bool,
    /// The run's counters after a change that touched them (a sink settled, or a
    /// top-level task failed): its unsettled sinks and its failed tasks.
    pub run_counters: Option<(u32, u32)>,
    /// For an item that settled: its parent's counters after the change.
    pub parent: Option<ItemCounts>,
}

/// One concurrency scope a task needs a slot of.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Slot {
    /// Scope name, such as `run:<id>` or `pool:<name>`.
    pub scope: String,
    /// Most holders at once.
    pub capacity: u32,
}

/// Durable state: runs, tasks, definitions and slot leases.
pub trait Store: Send + Sync {
    /// Store a workflow's definition under its version (idempotent: a version is a
    /// content hash, so its JSON never changes).
    fn put_definition(
        &self,
        workflow: &str,
        version: &str,
        json: &str,
    ) -> impl Future<Output = PortResult<()>> + Send;

    /// The definition JSON of `workflow` stored under `version`.
    fn definition(
        &self,
        workflow: &str,
        version: &str,
    ) -> impl Future<Output = PortResult<Option<String>>> + Send;

    /// Create a run and its tasks, unless a run with the same workflow and key exists.
    fn create_run(
        &self,
        run: &RunRecord,
        tasks: &[TaskRecord],
    ) -> impl Future<Output = PortResult<Created>> + Send;

    /// One run.
    fn run(&self, run_id: &str) -> impl Future<Output = PortResult<Option<RunRecord>>> + Send;

    /// Some tasks of a run; keys never written are left out.
    fn tasks(
        &self,
        run_id: &str,
        keys: &[TaskKey],
    ) -> impl Future<Output = PortResult<Vec<TaskRecord>>> + Send;

    /// Every task and item of a run.
    fn all_tasks(&self, run_id: &str) -> impl Future<Output = PortResult<Vec<TaskRecord>>> + Send;

    /// The outputs of a `for_each` task's items, in item order (`None` for items
    /// without output).
    fn item_outputs(
        &self,
        run_id: &str,
        task: &str,
    ) -> impl Future<Output = PortResult<Vec<Option<String>>>> + Send;

    /// The total size of the stored outputs of some tasks and their `for_each` items.
    fn output_bytes(
        &self,
        run_id: &str,
        tasks: &[&str],
    ) -> impl Future<Output = PortResult<u64>> + Send;

    /// Move a run from `queued` to `running`, with its deadline and, when the engine
    /// keeps a run watchdog, when the watchdog's first leg is due.
    fn start_run(
        &self,
        run_id: &str,
        now: u64,
        deadline_at: Option<u64>,
        watch: Option<WatchLeg>,
    ) -> impl Future<Output = PortResult<bool>> + Send;

    /// Move a run's watchdog from the leg named `from` (`None`: the run has none) to the
    /// leg `to`; false when the run's watchdog is not at `from` any more (another
    /// delivery moved it) or the run is gone. Only the delivery whose write applies keeps
    /// the watchdog going, so duplicates of one leg never multiply it. A store that
    /// keeps no watchdog answers false, and the engine then times every attempt with
    /// its own check.
    fn move_watch(
        &self,
        run_id: &str,
        from: Option<u64>,
        to: WatchLeg,
    ) -> impl Future<Output = PortResult<bool>> + Send {
        let _ = (run_id, from, to);
        std::future::ready(Ok(false))
    }

    /// Move a run from `from` to the settled `to`.
    fn settle_run(
        &self,
        run_id: &str,
        from: RunStatus,
        to: RunStatus,
        now: u64,
    ) -> impl Future<Output = PortResult<bool>> + Send;

    /// Record that a run missed its deadline; false if already recorded.
    fn mark_sla_missed(&self, run_id: &str) -> impl Future<Output = PortResult<bool>> + Send;

    /// Apply a conditional task change. When the task settles, the run's counters (or
    /// for an item, its parent's) are updated in the same atomic write.
    fn update_task(
        &self,
        run_id: &str,
        change: &TaskChange,
    ) -> impl Future<Output = PortResult<Applied>> + Send;

    /// Expand a waiting `for_each` task into ready items, moving it to running.
    fn add_items(
        &self,
        run_id: &str,
        task: &str,
        items: &[Value],
        now: u64,
    ) -> impl Future<Output = PortResult<bool>> + Send;

    /// Take one slot in every scope for `holder`, all or none. Returns the first full
    /// scope, or `None` when granted. A holder that already holds a scope keeps it.
    fn acquire(
        &self,
        slots: &[Slot],
        holder: &str,
        now: u64,
        expires_at: u64,
    ) -> impl Future<Output = PortResult<Option<String>>> + Send;

    /// Release the slots `holder` holds in `scopes` (every scope it may have taken one
    /// in: the engine derives them from the run's definition, as it did to acquire
    /// them); returns the scopes where it held one.
    fn release(
        &self,
        holder: &str,
        scopes: &[String],
    ) -> impl Future<Output = PortResult<Vec<String>>> + Send;

    /// Park a message until a slot of `scope` is released.
    fn park(&self, scope: &str, message: &Message) -> impl Future<Output = PortResult<()>> + Send;

    /// Take up to `limit` messages parked on `scope`, oldest first.
    fn unpark(
        &self,
        scope: &str,
        limit: usize,
    ) -> impl Future<Output = PortResult<Vec<Message>>> + Send;

    /// Record that the wake-up `timer` of a run is armed for `at`; false when it already
    /// was. A delayed message sends its next leg only when this returns true, so that
    /// duplicates of one leg do not multiply the chain. The record may go once the run
    /// settles. The embedded backend commits this write and the leg's send together; a
    /// backend that cannot would lose the leg if it stopped between the two, until it
    /// writes them through one transaction or an outbox.
    fn arm(
        &self,
        run_id: &str,
        timer: &str,
        at: u64,
    ) -> impl Future<Output = PortResult<bool>> + Send;

    /// Record that the upstreams `settled` (indexes of tasks in the run's workflow) of
    /// `task` have settled, and return how many distinct upstreams of `task` have been
    /// recorded so far; recording one twice counts it once. `None` when the store keeps
    /// no such record, and the engine reads the upstreams to know.
    ///
    /// A task with many upstreams is then read, with its upstreams, once they have all
    /// settled, rather than on every settle of one of them.
    fn note_settled_upstreams(
        &self,
        run_id: &str,
        task: &str,
        settled: &[usize],
    ) -> impl Future<Output = PortResult<Option<usize>>> + Send {
        let _ = (run_id, task, settled);
        std::future::ready(Ok(None))
    }

    /// The runs of `workflow` that have not settled (queued or running), oldest first,
    /// for the overlap policies. `None` from a backend that cannot list them: it then
    /// applies no overlap policy (every start is allowed), and the engine logs so.
    fn active_runs(
        &self,
        workflow: &str,
    ) -> impl Future<Output = PortResult<Option<Vec<RunRecord>>>> + Send {
        let _ = workflow;
        std::future::ready(Ok(None))
    }

    /// The holders of the unexpired leases of `scope`.
    fn holders(&self, scope: &str) -> impl Future<Output = PortResult<Vec<String>>> + Send {
        std::future::ready(Err(PortError::terminal(format!(
            "this backend cannot list the holders of slot scope {scope}"
        ))))
    }

    /// The last schedule tick a scheduler on this store decided for `workflow` (fired,
    /// skipped or passed over), ms since the epoch; `None` before the first.
    fn last_tick(&self, workflow: &str) -> impl Future<Output = PortResult<Option<u64>>> + Send {
        std::future::ready(Err(no_ticks(workflow)))
    }

    /// Record that every tick of `workflow` up to `tick` is decided. The record only
    /// moves forward: an older `tick` leaves it as it is.
    fn record_tick(
        &self,
        workflow: &str,
        tick: u64,
    ) -> impl Future<Output = PortResult<()>> + Send {
        let _ = tick;
        std::future::ready(Err(no_ticks(workflow)))
    }
}

/// What a store without schedule tick records answers.
fn no_ticks(workflow: &str) -> PortError {
    PortError::terminal(format!(
        "this backend keeps no schedule ticks (workflow {workflow}): the cloud's scheduler \
         fires its schedules"
    ))
}

/// The three queues.
pub trait Queue: Send + Sync {
    /// Send messages, each after its delay.
    fn send(&self, messages: Vec<Outgoing>) -> impl Future<Output = PortResult<()>> + Send;
}

/// One attempt of a `command` or `lambda` task to start.
#[derive(Clone, Debug)]
pub struct Job {
    /// The run.
    pub run_id: String,
    /// The workflow.
    pub workflow: String,
    /// The task.
    pub key: TaskKey,
    /// The attempt.
    pub attempt: u32,
    /// What to run.
    pub run: RunSpec,
    /// The task input document, JSON.
    pub input: Vec<u8>,
    /// Working folder for commands.
    pub workdir: Option<String>,
    /// Time limit of the attempt.
    pub timeout: Duration,
}

/// Why a job could not be started.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The attempt cannot run as given; it fails with this failure.
    #[error("{0}")]
    Rejected(Failure),
    /// The backend failed; the dispatch message is delivered again.
    #[error(transparent)]
    Port(#[from] PortError),
}

/// Starts and stops task attempts. A started attempt reports back with a `Complete`
/// message on the complete queue.
pub trait Invoker: Send + Sync {
    /// Start an attempt; returns once it is started, not finished.
    fn start(&self, job: Job) -> impl Future<Output = Result<(), StartError>> + Send;

    /// Stop an attempt that ran out of time (best effort; it may already be gone).
    fn cancel(
        &self,
        run_id: &str,
        key: &TaskKey,
        attempt: u32,
    ) -> impl Future<Output = PortResult<()>> + Send;
}

/// What happened to a run, as published to the world (EventBridge on AWS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LifecycleKind {
    /// A run left `queued`.
    RunStarted,
    /// A run settled as succeeded.
    RunSucceeded,
    /// A run settled as failed.
    RunFailed,
    /// A run was stopped at its deadline.
    RunTimedOut,
    /// A run was cancelled.
    RunCancelled,
    /// A task (or a `for_each` item) settled as failed or timed out.
    TaskFailed,
    /// A run passed its deadline before it settled.
    SlaMissed,
}

impl LifecycleKind {
    /// The event's detail-type.
    pub const fn detail_type(self) -> &'static str {
        match self {
            Self::RunStarted => "Run Started",
            Self::RunSucceeded => "Run Succeeded",
            Self::RunFailed => "Run Failed",
            Self::RunTimedOut => "Run Timed Out",
            Self::RunCancelled => "Run Cancelled",
            Self::TaskFailed => "Task Failed",
            Self::SlaMissed => "SLA Missed",
        }
    }

    /// The event that announces a run settling as `status`.
    pub const fn settled(status: RunStatus) -> Self {
        match status {
            RunStatus::Succeeded => Self::RunSucceeded,
            RunStatus::TimedOut => Self::RunTimedOut,
            RunStatus::Cancelled => Self::RunCancelled,
            _ => Self::RunFailed,
        }
    }
}

/// One lifecycle event.
#[derive(Clone, Debug, PartialEq)]
pub struct Lifecycle {
    /// What happened.
    pub kind: LifecycleKind,
    /// The workflow.
    pub workflow: String,
    /// The definition version of the run.
    pub version: String,
    /// The run.
    pub run_id: String,
    /// The run's status (for `Task Failed`, the task's state).
    pub status: String,
    /// The task, for task events.
    pub task: Option<String>,
    /// The attempt, for task events.
    pub attempt: Option<u32>,
    /// Why, when something failed.
    pub reason: Option<String>,
    /// The workflow's cost and ownership tags.
    pub tags: std::collections::BTreeMap<String, String>,
    /// When, in ms since the epoch.
    pub at: u64,
}

/// Where lifecycle events go. Publishing is best effort: an event is sent after the
/// write it announces, and a failure to publish is logged, never retried by
/// redelivering the message (the write would not apply again).
pub trait Events: Send + Sync {
    /// Publish some events.
    fn publish(&self, events: Vec<Lifecycle>) -> impl Future<Output = PortResult<()>> + Send;
}

/// Drops every event (the embedded backend logs instead).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoEvents;

impl Events for NoEvents {
    async fn publish(&self, _events: Vec<Lifecycle>) -> PortResult<()> {
        Ok(())
    }
}

/// The time, in ms since the Unix epoch, and a source of randomness for jitter.
pub trait Clock: Send + Sync {
    /// Now.
    fn now(&self) -> u64;

    /// A uniformly random u64.
    fn random(&self) -> u64;
}

impl<T: Clock + ?Sized> Clock for std::sync::Arc<T> {
    fn now(&self) -> u64 {
        (**self).now()
    }

    fn random(&self) -> u64 {
        (**self).random()
    }
}
