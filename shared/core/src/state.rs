//! The state model: task states, run statuses and failures.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The state of one task (or one item of a `for_each` task) in a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskState {
    /// Upstreams not settled yet.
    Waiting,
    /// May start (at or after its `not_before`), waiting for dispatch and slots.
    Ready,
    /// An attempt is running.
    Running,
    /// Finished with an output.
    Succeeded,
    /// Finished with a failure, retries exhausted or not allowed.
    Failed,
    /// Its last attempt ran out of time.
    TimedOut,
    /// Not run: its trigger rule did not hold (or a `for_each` list was empty).
    Skipped,
    /// Not run: an upstream failed and its trigger rule needs success.
    UpstreamFailed,
}

impl TaskState {
    /// True once the task will never change again.
    pub const fn is_settled(self) -> bool {
        !matches!(self, Self::Waiting | Self::Ready | Self::Running)
    }

    /// True for the settled states that count as failure (they fail the run).
    pub const fn is_failure(self) -> bool {
        matches!(self, Self::Failed | Self::TimedOut | Self::UpstreamFailed)
    }

    /// The name used in files, JSON and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Waiting => "waiting",
            Self::Ready => "ready",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::TimedOut => "timed_out",
            Self::Skipped => "skipped",
            Self::UpstreamFailed => "upstream_failed",
        }
    }

    /// Parse the name given by [`TaskState::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        const ALL: [TaskState; 8] = [
            TaskState::Waiting,
            TaskState::Ready,
            TaskState::Running,
            TaskState::Succeeded,
            TaskState::Failed,
            TaskState::TimedOut,
            TaskState::Skipped,
            TaskState::UpstreamFailed,
        ];
        ALL.into_iter().find(|state| state.as_str() == text)
    }
}

impl fmt::Display for TaskState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The status of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Created, waiting for a run slot of its workflow.
    Queued,
    /// Tasks are being planned and run.
    Running,
    /// Every task settled and none failed.
    Succeeded,
    /// Every task settled and at least one failed.
    Failed,
    /// Stopped on request.
    Cancelled,
    /// Passed its deadline with `on_deadline: fail`.
    TimedOut,
}

impl RunStatus {
    /// True once the run will never change again.
    pub const fn is_settled(self) -> bool {
        !matches!(self, Self::Queued | Self::Running)
    }

    /// The name used in JSON and the database.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Running => "running",
            Self::Succeeded => "succeeded",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
            Self::TimedOut => "timed_out",
        }
    }

    /// Parse the name given by [`RunStatus::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        const ALL: [RunStatus; 6] = [
            RunStatus::Queued,
            RunStatus::Running,
            RunStatus::Succeeded,
            RunStatus::Failed,
            RunStatus::Cancelled,
            RunStatus::TimedOut,
        ];
        ALL.into_iter().find(|status| status.as_str() == text)
    }
}

impl fmt::Display for RunStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an attempt failed: a kind that retry policies match on, and a message for people.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// `error`, `timeout`, `payload_too_large`, `interrupted`, `bad_output`, a Lambda
    /// `errorType`, ...
    pub kind: String,
    /// What happened, naming the offending value.
    pub message: String,
}

impl Failure {
    /// The kind of an attempt that ran out of time.
    pub const TIMEOUT: &'static str = "timeout";
    /// The generic kind of a failed attempt.
    pub const ERROR: &'static str = "error";
    /// An output or input over the size limit.
    pub const PAYLOAD_TOO_LARGE: &'static str = "payload_too_large";

    /// A failure of `kind` with `message`.
    pub fn new(kind: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            kind: kind.into(),
            message: message.into(),
        }
    }

    /// A generic `error` failure.
    pub fn error(message: impl Into<String>) -> Self {
        Self::new(Self::ERROR, message)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)
    }
}
