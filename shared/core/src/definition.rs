//! The workflow definition format, v1: the types that YAML and JSON files deserialize into.
//!
//! Field names here are a contract with users; additions are fine, renames are not. The
//! JSON Schema in `statemachines/schema/` is generated from these same types.

use std::collections::BTreeMap;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::duration::Duration;

/// One workflow: a DAG of tasks with its triggers, limits and defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Workflow name: `[a-z0-9][a-z0-9-]{0,63}`.
    pub name: String,
    /// What the workflow does, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Cost and ownership tags, copied onto every run and lifecycle event.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    /// SLA: the run should settle within this long after it starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Duration>,
    /// What a missed deadline does: `report` (default) records it; `fail` also fails the run.
    #[serde(default, skip_serializing_if = "is_default")]
    pub on_deadline: DeadlineAction,
    /// Limits on runs of this workflow and on tasks of one run.
    #[serde(default, skip_serializing_if = "is_default")]
    pub concurrency: Concurrency,
    /// Settings every task inherits unless it sets its own.
    #[serde(default, skip_serializing_if = "is_default")]
    pub defaults: Defaults,
    /// Time trigger.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Event triggers: EventBridge patterns.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub events: Vec<EventTrigger>,
    /// Named slot pools and their capacity, shared by every workflow that names them.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub pools: BTreeMap<String, u32>,
    /// The tasks, by name, in file order.
    pub tasks: IndexMap<String, Task>,
}

/// What happens when a run passes its deadline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineAction {
    /// Record the SLA miss on the run and carry on.
    #[default]
    Report,
    /// Record the SLA miss, stop the running tasks and settle the run as `timed_out`.
    Fail,
}

/// Concurrency limits of a workflow.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Concurrency {
    /// Most runs of this workflow running at once; further runs wait, queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_runs: Option<u32>,
    /// Most tasks of one run running at once; further tasks wait, ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tasks: Option<u32>,
}

/// Settings inherited by every task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    /// Time limit of one attempt.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry policy; a task's own `retry` overrides it field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
}

/// A retry policy as written: every field optional, filled from defaults.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetrySpec {
    /// Attempts in all, the first included (default 1: no retry).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_attempts: Option<u32>,
    /// `fixed` or `exponential` (default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backoff: Option<Backoff>,
    /// Delay before the second attempt (default 1s).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub initial_delay: Option<Duration>,
    /// Growth factor of exponential backoff (default 2.0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub multiplier: Option<f64>,
    /// Cap on any one delay (default 1h, or `initial_delay` when that is longer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<Duration>,
    /// `none` (default) or `full`: a uniform random delay in [0, computed delay].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jitter: Option<Jitter>,
    /// Failure kinds that retry (default `[error, timeout]`). `error` names every kind but
    /// `timeout`; any other entry names one kind, such as `payload_too_large` or a
    /// Lambda `errorType`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on: Option<Vec<String>>,
}

/// How retry delays grow.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    /// Every delay is `initial_delay`.
    Fixed,
    /// Delay n is `initial_delay * multiplier^(n-1)`, capped at `max_delay`.
    #[default]
    Exponential,
}

/// Randomisation of retry delays.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly the computed delay.
    #[default]
    None,
    /// Uniform in [0, computed delay].
    Full,
}

/// A time trigger in EventBridge Scheduler syntax.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// `cron(...)`, `rate(...)` or `at(...)`.
    pub expression: String,
    /// IANA time zone the expression is read in (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// How missed ticks are made up after downtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup: Option<Catchup>,
    /// What a tick does while an earlier run is still going.
    #[serde(default, skip_serializing_if = "is_default")]
    pub overlap: Overlap,
}

/// Catch-up of missed ticks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Catchup {
    /// Only ticks this recent are made up.
    pub window: Duration,
    /// At most this many missed ticks are made up, the most recent ones.
    pub max_runs: u32,
}

/// Overlap policy for a new run while another run of the workflow is going.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Do not start the new run.
    #[default]
    Skip,
    /// Start it anyway.
    Allow,
    /// Keep at most one waiting run.
    BufferOne,
    /// Cancel the running one, then start.
    CancelRunning,
}

/// An event trigger: an EventBridge event pattern.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EventTrigger {
    /// The EventBridge event pattern.
    pub pattern: Value,
    /// Run input built from the matched event.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input: Option<Value>,
}

/// One task of the DAG.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Task {
    /// What the task does, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Tasks that must settle before this one is considered.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub depends_on: Vec<String>,
    /// When the task runs, judged on its direct upstreams' final states.
    #[serde(default, skip_serializing_if = "is_default")]
    pub trigger_rule: TriggerRule,
    /// What the task runs.
    pub run: RunSpec,
    /// Time limit of one attempt (default: `defaults.timeout`, else 24h).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<Duration>,
    /// Retry policy, merged over `defaults.retry` field by field.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetrySpec>,
    /// Slot pool the task takes one slot of while it runs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// Dynamic fan-out: `$.<upstream>.<field>...`, a list in an upstream's output; the
    /// task runs once per item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub for_each: Option<String>,
    /// Most items of a `for_each` task running at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<u32>,
}

/// When a task runs, given its direct upstreams' final states.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum TriggerRule {
    /// Every upstream succeeded.
    #[default]
    AllSuccess,
    /// Every upstream settled, whatever its state.
    AllDone,
    /// Every upstream failed.
    AllFailed,
    /// At least one upstream succeeded.
    OneSuccess,
    /// At least one upstream failed.
    OneFailed,
    /// No upstream failed (succeeded or skipped).
    NoneFailed,
    /// Always, once every upstream settled.
    Always,
}

/// What a task runs: exactly one of `command`, `lambda` or `pass`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum RunSpec {
    /// A local process: program and arguments. It reads the task input as JSON on stdin
    /// and writes its output as JSON on stdout; exit 0 is success.
    Command(Vec<String>),
    /// A Lambda function name or ARN, called through the Lambda Invoke API.
    Lambda(String),
    /// Built in: succeeds at once with `result` as its output.
    Pass(PassSpec),
}

/// The built-in pass task.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PassSpec {
    /// The output (default null).
    #[serde(default)]
    pub result: Value,
}

fn is_default<T: Default + PartialEq>(value: &T) -> bool {
    *value == T::default()
}
