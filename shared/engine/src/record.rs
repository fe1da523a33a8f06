//! What the store keeps about runs and tasks.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use aloft_core::{Failure, RunStatus, TaskState};

use crate::message::TaskKey;

/// A run as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Run id.
    pub id: String,
    /// Workflow name.
    pub workflow: String,
    /// Content hash of the definition the run uses.
    pub version: String,
    /// Status.
    pub status: RunStatus,
    /// The run input.
    pub input: Value,
    /// Idempotency key, if the caller gave one.
    pub key: Option<String>,
    /// When it was created, ms since the epoch.
    pub created_at: u64,
    /// When it left `queued`.
    pub started_at: Option<u64>,
    /// When it settled.
    pub ended_at: Option<u64>,
    /// Its SLA deadline, when the definition has one.
    pub deadline_at: Option<u64>,
    /// True once the deadline passed before the run settled.
    pub sla_missed: bool,
    /// Sink tasks (no task depends on them) not yet settled: the run is done when none
    /// is left.
    pub unsettled: u32,
    /// Top-level tasks that settled as a failure.
    pub failed: u32,
    /// Scheduled time for a scheduled run, else the creation time.
    pub scheduled_time: u64,
    /// Where command tasks run (the workflow file's folder), for the embedded backend.
    pub workdir: Option<String>,
    /// The run's current watchdog leg (see [`crate::engine::Config::run_watchdog`]);
    /// `None` while the run has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchLeg>,
}

/// One leg of a run's watchdog.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchLeg {
    /// When it is due, ms since the epoch.
    pub at: u64,
    /// A random number naming this leg, so that the duplicates of the one leg the run
    /// records are told apart from legs sent by deliveries that lost the race to move
    /// the watchdog on, even when both are due at the same time.
    pub leg: u64,
}

/// A task (or item) as stored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TaskRecord {
    /// Which task.
    pub key: TaskKey,
    /// State.
    pub state: TaskState,
    /// The current or last attempt; 0 before the first.
    pub attempt: u32,
    /// A ready task does not start before this time (retry backoff).
    pub not_before: u64,
    /// When the current or last attempt started.
    pub started_at: Option<u64>,
    /// When it settled.
    pub ended_at: Option<u64>,
    /// Output, as stored JSON text.
    pub output: Option<String>,
    /// Last failure.
    pub failure: Option<Failure>,
    /// For a `for_each` item: the item value.
    pub item: Option<Value>,
    /// For a `for_each` task: its items' counters.
    pub items: Option<ItemCounts>,
}

/// Progress of a `for_each` task's items.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemCounts {
    /// Items in all.
    pub total: u32,
    /// Items not yet settled.
    pub unsettled: u32,
    /// Items that settled as a failure.
    pub failed: u32,
}

impl TaskRecord {
    /// A task before planning.
    pub fn waiting(key: TaskKey) -> Self {
        Self {
            key,
            state: TaskState::Waiting,
            attempt: 0,
            not_before: 0,
            started_at: None,
            ended_at: None,
            output: None,
            failure: None,
            item: None,
            items: None,
        }
    }
}

/// How many tasks of a definition are sinks (no task depends on them): the run's
/// initial `unsettled` count.
pub(crate) fn sinks(definition: &aloft_core::Definition) -> u32 {
    let depended: std::collections::HashSet<&str> = definition
        .tasks
        .values()
        .flat_map(|task| task.depends_on.iter().map(String::as_str))
        .collect();
    let sinks = definition
        .tasks
        .keys()
        .filter(|name| !depended.contains(name.as_str()))
        .count();
    u32::try_from(sinks).unwrap_or(u32::MAX)
}
