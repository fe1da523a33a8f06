//! Giving up on a message that keeps failing: its run settles as failed with the reason,
//! rather than waiting for a message that is gone to the dead-letter queue.

use tracing::warn;

use aloft_core::{Failure, RunStatus, TaskState};

use crate::engine::{Engine, EngineError};
use crate::message::Message;
use crate::ports::{Clock, Events, Invoker, Queue, Store, TaskChange};

/// Failure kind of a task whose message could not be handled.
pub const UNDELIVERABLE: &str = "undeliverable";

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Settle the run of `message` as failed because the message could not be handled
    /// (`reason`). The attempt it is about, if still ready or running, fails with kind
    /// `undeliverable`; the run's other running attempts fail and its unstarted tasks
    /// are skipped. A run that already settled is left as it is.
    pub async fn give_up(&self, message: &Message, reason: &str) -> Result<(), EngineError> {
        let run_id = message.run_id();
        let Some(run) = self.run_record(run_id).await? else {
            return Ok(());
        };
        if run.status.is_settled() {
            return Ok(());
        }
        warn!(workflow = %run.workflow, run_id, reason, "giving up on a message: the run fails");
        let failure = Failure::new(UNDELIVERABLE, reason);
        if let Some((key, attempt)) = message.attempt() {
            let record = self.task_record(run_id, key).await?;
            if let Some(record) = record.filter(|r| {
                r.attempt == attempt && matches!(r.state, TaskState::Ready | TaskState::Running)
            }) {
                let change = TaskChange {
                    key: key.clone(),
                    from: record.state,
                    attempt,
                    to: TaskState::Failed,
                    new_attempt: attempt,
                    not_before: None,
                    started_at: None,
                    ended_at: Some(self.clock.now()),
                    output: None,
                    failure: Some(failure.clone()),
                    sink: false,
                };
                self.update_task(run_id, &change).await?;
                self.release_task_slots(&run, key, attempt).await?;
            }
        }
        let why = Failure::new(UNDELIVERABLE, format!("the run failed: {reason}"));
        self.stop_run_because(&run, RunStatus::Failed, TaskState::Failed, why)
            .await
    }
}
