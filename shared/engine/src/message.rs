//! Messages between the four handlers. Each goes to one queue: plan, dispatch or complete.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use aloft_core::Failure;

use crate::record::RunRecord;

/// One task, or one item of a `for_each` task.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct TaskKey {
    /// Task name.
    pub task: String,
    /// Item index of a `for_each` task; `None` for the task itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub item: Option<u32>,
}

impl TaskKey {
    /// The key of a whole task.
    pub fn task(name: impl Into<String>) -> Self {
        Self {
            task: name.into(),
            item: None,
        }
    }

    /// The key of item `index` of a `for_each` task.
    pub fn item(name: impl Into<String>, index: u32) -> Self {
        Self {
            task: name.into(),
            item: Some(index),
        }
    }
}

impl std::fmt::Display for TaskKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.item {
            Some(index) => write!(f, "{}[{index}]", self.task),
            None => f.write_str(&self.task),
        }
    }
}

/// The queue a message travels on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum QueueName {
    /// Planning requests.
    Plan,
    /// Task starts.
    Dispatch,
    /// Results and timer checks.
    Complete,
}

impl QueueName {
    /// The queue's name in storage.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Plan => "plan",
            Self::Dispatch => "dispatch",
            Self::Complete => "complete",
        }
    }
}

/// A message between handlers.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Message {
    /// Plan a run: decide which waiting tasks become ready or skipped. `settled` names
    /// the tasks that just settled, so only their dependents are looked at; empty means
    /// look at every task.
    Plan {
        /// The run.
        run_id: String,
        /// Tasks that just settled.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        settled: Vec<String>,
    },
    /// Start one attempt of a ready task.
    Dispatch {
        /// The run.
        run_id: String,
        /// The task.
        key: TaskKey,
        /// The attempt to start.
        attempt: u32,
    },
    /// The result of one attempt.
    Complete {
        /// The run.
        run_id: String,
        /// The task.
        key: TaskKey,
        /// The attempt that finished.
        attempt: u32,
        /// What it produced.
        outcome: Outcome,
        /// When it ended, if known and earlier than the message (an attempt that ended
        /// while no runner was alive); otherwise the handling time counts.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ended_at: Option<u64>,
        /// When the attempt started, as the task document told the task
        /// (`run.attempt_started_at`), so that its timeout is judged without reading
        /// the task's record; `None` reads it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_at: Option<u64>,
        /// The run as its dispatcher knew it when the attempt started, brought back with
        /// the result (the task document's `aloft` member, see
        /// [`crate::engine::Config::document_carries_run`]), so that the result is handled
        /// without reading the run; `None` reads it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        run: Option<Box<RunRecord>>,
    },
    /// Check whether an attempt has run past its time limit.
    TimeoutCheck {
        /// The run.
        run_id: String,
        /// The task.
        key: TaskKey,
        /// The attempt being timed.
        attempt: u32,
        /// When its time is up, in ms since the epoch.
        due_at: u64,
    },
    /// The run's watchdog: time out every attempt of the run running past its time
    /// limit, then come back at the next time one is due (see
    /// [`crate::engine::Config::run_watchdog`]).
    Watch {
        /// The run.
        run_id: String,
        /// When this leg is due, in ms since the epoch.
        at: u64,
        /// The leg's name: the leg is current while the run records it.
        leg: u64,
    },
    /// Check whether a run has passed its deadline.
    DeadlineCheck {
        /// The run.
        run_id: String,
        /// The deadline, in ms since the epoch.
        due_at: u64,
    },
}

impl Message {
    /// The queue this message belongs on.
    pub const fn queue(&self) -> QueueName {
        match self {
            Self::Plan { .. } | Self::DeadlineCheck { .. } => QueueName::Plan,
            Self::Dispatch { .. } => QueueName::Dispatch,
            Self::Complete { .. } | Self::TimeoutCheck { .. } | Self::Watch { .. } => {
                QueueName::Complete
            }
        }
    }

    /// The task attempt the message is about, if it is about one.
    pub fn attempt(&self) -> Option<(&TaskKey, u32)> {
        match self {
            Self::Dispatch { key, attempt, .. }
            | Self::Complete { key, attempt, .. }
            | Self::TimeoutCheck { key, attempt, .. } => Some((key, *attempt)),
            Self::Plan { .. } | Self::DeadlineCheck { .. } | Self::Watch { .. } => None,
        }
    }

    /// The run the message is about.
    pub fn run_id(&self) -> &str {
        match self {
            Self::Plan { run_id, .. }
            | Self::Dispatch { run_id, .. }
            | Self::Complete { run_id, .. }
            | Self::TimeoutCheck { run_id, .. }
            | Self::Watch { run_id, .. }
            | Self::DeadlineCheck { run_id, .. } => run_id,
        }
    }
}

/// How an attempt ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum Outcome {
    /// Success with an output.
    Succeeded {
        /// The output document.
        output: Value,
    },
    /// Failure.
    Failed {
        /// Why.
        failure: Failure,
    },
}

/// A message to send, after `delay_ms`.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The message.
    pub message: Message,
    /// Delay before it becomes visible.
    pub delay_ms: u64,
}

impl Outgoing {
    /// Send at once.
    pub fn now(message: Message) -> Self {
        Self {
            message,
            delay_ms: 0,
        }
    }

    /// Send after a delay.
    pub fn after(message: Message, delay_ms: u64) -> Self {
        Self { message, delay_ms }
    }
}
