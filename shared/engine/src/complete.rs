//! complete: record an attempt's result if the task is still running that attempt, free
//! its slots, then retry it after its backoff or settle it and plan its dependents.

use serde_json::Value;
use tracing::{debug, info, warn};

use aloft_core::{Failure, TaskState};

use crate::engine::{Engine, EngineError, OUTPUT_LIMIT};
use crate::message::{Message, Outcome, TaskKey};
use crate::ports::{Applied, Clock, Events, Invoker, LifecycleKind, Queue, Store, TaskChange};
use crate::record::{ItemCounts, RunRecord};

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Handle a completion message; `times` are the attempt's start and end when the
    /// message knows them.
    pub(crate) async fn complete(
        &self,
        run_id: &str,
        key: &TaskKey,
        attempt: u32,
        outcome: Outcome,
        times: (Option<u64>, Option<u64>),
    ) -> Result<(), EngineError> {
        let (started_at, ended_at) = times;
        let Some(mut run) = self.run_record(run_id).await? else {
            return Ok(());
        };
        let mut result = match outcome {
            Outcome::Succeeded { output } => Ok(output),
            Outcome::Failed { failure } => Err(failure),
        };
        if let Some(ended) = ended_at {
            // An attempt that ended while no runner was alive: what a live runner would
            // have done first, at its own time, happens first.
            if let Some(deadline) = run.deadline_at.filter(|&d| d < ended) {
                self.deadline_check(run_id, deadline).await?;
                run = self.run_record(run_id).await?.unwrap_or(run);
            }
            if let Some(limit) = self.overran(&run, key, attempt, started_at, ended).await? {
                let message = format!("attempt ran past its timeout of {limit}");
                result = Err(Failure::new(Failure::TIMEOUT, message));
            }
        }
        self.finish_attempt_at(
            &run,
            key,
            attempt,
            result,
            ended_at,
            (TaskState::Running, attempt),
        )
        .await
    }

    /// The timeout an attempt that ended at `ended` had already passed, if any. Its
    /// start is `started_at` when the result carried it, else the task's record's.
    async fn overran(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        attempt: u32,
        started_at: Option<u64>,
        ended: u64,
    ) -> Result<Option<aloft_core::Duration>, EngineError> {
        let workflow = self.workflow(run).await?;
        let Some(limit) = workflow.task(&key.task).map(|t| t.timeout) else {
            return Ok(None);
        };
        let started = match started_at {
            Some(started) => Some(started),
            None => self
                .task_record(&run.id, key)
                .await?
                .filter(|r| r.attempt == attempt)
                .and_then(|r| r.started_at),
        };
        Ok(started
            .filter(|&s| ended > s.saturating_add(limit.as_millis()))
            .map(|_| limit))
    }

    /// Handle a timeout check: stop an attempt that is still running past its due time.
    pub(crate) async fn timeout_check(
        &self,
        run_id: &str,
        key: &TaskKey,
        attempt: u32,
        due_at: u64,
    ) -> Result<(), EngineError> {
        let Some(record) = self.task_record(run_id, key).await? else {
            return Ok(());
        };
        let timed_out = record
            .failure
            .as_ref()
            .is_some_and(|f| f.kind == Failure::TIMEOUT);
        let ended_by_timeout = timed_out
            && (record.attempt == attempt && record.state.is_settled()
                || record.attempt == attempt + 1 && record.state == TaskState::Ready);
        if record.state != TaskState::Running || record.attempt != attempt {
            if ended_by_timeout {
                // An earlier delivery timed the attempt out and may have stopped before
                // the follow-ups: the same change again finds it done and repeats them.
                if let Some(run) = self.run_record(run_id).await? {
                    let failure = Failure::new(Failure::TIMEOUT, "attempt ran past its timeout");
                    return self.finish_attempt(&run, key, attempt, Err(failure)).await;
                }
            }
            return Ok(());
        }
        let Some(run) = self.run_record(run_id).await? else {
            return Ok(());
        };
        let workflow = self.workflow(&run).await?;
        let limit = workflow.task(&key.task).map(|t| t.timeout);
        // The attempt's own start decides when its time is up: a check sent for a start
        // that was undone and done again must not cut the new start short.
        let due_at = match (record.started_at, limit) {
            (Some(started), Some(limit)) => due_at.max(started.saturating_add(limit.as_millis())),
            _ => due_at,
        };
        let now = self.clock.now();
        if now < due_at {
            let check = Message::TimeoutCheck {
                run_id: run_id.to_owned(),
                key: key.clone(),
                attempt,
                due_at,
            };
            let timer = format!("timeout/{key}/{attempt}");
            return self.rearm(run_id, &timer, check, due_at).await;
        }
        let limit = limit.map(|l| l.to_string()).unwrap_or_default();
        self.invoker.cancel(run_id, key, attempt).await?;
        let failure = Failure::new(
            Failure::TIMEOUT,
            format!("attempt ran past its timeout of {limit}"),
        );
        self.finish_attempt(&run, key, attempt, Err(failure)).await
    }

    /// Record how an attempt ended: settle, or move to ready for the next attempt.
    pub(crate) async fn finish_attempt(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        attempt: u32,
        result: Result<Value, Failure>,
    ) -> Result<(), EngineError> {
        self.finish_attempt_at(
            run,
            key,
            attempt,
            result,
            None,
            (TaskState::Running, attempt),
        )
        .await
    }

    /// Start and finish a `pass` attempt in one write: the change `start` that would
    /// have marked it running (from ready or waiting) ends it instead.
    pub(crate) async fn finish_pass(
        &self,
        run: &RunRecord,
        start: &TaskChange,
        output: Value,
    ) -> Result<(), EngineError> {
        let key = &start.key;
        let from = (start.from, start.attempt);
        self.finish_attempt_at(run, key, start.new_attempt, Ok(output), None, from)
            .await
    }

    /// [`Self::finish_attempt`] for an attempt known to have ended at `ended_at`, left
    /// from state and attempt `from`: running at `attempt`, or, for a `pass` task that
    /// starts and ends at once, ready at `attempt` or waiting at 0.
    async fn finish_attempt_at(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        attempt: u32,
        result: Result<Value, Failure>,
        ended_at: Option<u64>,
        from: (TaskState, u32),
    ) -> Result<(), EngineError> {
        let (from, from_attempt) = from;
        let now = self.clock.now();
        let ended = ended_at.map_or(now, |at| at.min(now));
        let workflow = self.workflow(run).await?;
        let Some(task) = workflow.task(&key.task) else {
            return Ok(());
        };
        let result = result.and_then(|output| stored_output(&output));
        let mut change = TaskChange {
            key: key.clone(),
            from,
            attempt: from_attempt,
            to: TaskState::Succeeded,
            new_attempt: attempt,
            not_before: None,
            started_at: (from != TaskState::Running).then_some(now),
            ended_at: Some(ended),
            output: None,
            failure: None,
            sink: key.item.is_none() && task.downstream.is_empty(),
        };
        let retry = match &result {
            Ok(text) => {
                change.output = Some(text.clone());
                None
            }
            Err(failure) => {
                let retry = task
                    .retry
                    .next_delay(attempt, &failure.kind, self.clock.random());
                change.to = match (retry, failure.kind.as_str()) {
                    (Some(_), _) => TaskState::Ready,
                    (None, Failure::TIMEOUT) => TaskState::TimedOut,
                    (None, _) => TaskState::Failed,
                };
                change.failure = Some(failure.clone());
                retry
            }
        };
        if let Some(delay) = retry {
            change.new_attempt = attempt + 1;
            change.not_before = Some(now + delay.as_millis());
            change.ended_at = None;
        }
        let applied = self.update_task(&run.id, &change).await?;
        if !applied.applied {
            return self.after_duplicate(run, key, attempt, applied).await;
        }
        if task.for_each.is_none() {
            self.remember_settled(&run.id, &change);
        }
        self.release_task_slots(run, key, attempt).await?;
        if let Some(delay) = retry {
            warn!(
                run_id = %run.id, task = %key, attempt,
                next_delay_ms = delay.as_millis(),
                error = %change.failure.as_ref().map(ToString::to_string).unwrap_or_default(),
                "task attempt failed, will retry"
            );
            let next = Message::Dispatch {
                run_id: run.id.clone(),
                key: key.clone(),
                attempt: attempt + 1,
            };
            return Ok(self
                .send(vec![self.delayed(next, delay.as_millis())])
                .await?);
        }
        info!(run_id = %run.id, task = %key, attempt, state = %change.to, "task settled");
        if change.to.is_failure() {
            let reason = change.failure.as_ref().map(ToString::to_string);
            self.announce(
                run,
                LifecycleKind::TaskFailed,
                change.to.as_str(),
                Some((key, attempt)),
                reason,
            )
            .await;
        }
        self.after_settle(run, key, applied).await
    }

    /// A result for an attempt that is no longer running. If that attempt already
    /// settled the task, or already scheduled its retry, an earlier delivery may have
    /// stopped right after its write: the idempotent follow-ups (free the slots, plan
    /// the dependents or settle the parent, send the retry) are done again. Otherwise
    /// nothing happens.
    async fn after_duplicate(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        attempt: u32,
        applied: Applied,
    ) -> Result<(), EngineError> {
        let Some(record) = self.task_record(&run.id, key).await? else {
            return Ok(());
        };
        if record.attempt == attempt && record.state.is_settled() {
            debug!(run_id = %run.id, task = %key, attempt, "duplicate result: follow-ups repeated");
            self.release_task_slots(run, key, attempt).await?;
            return self.after_settle(run, key, applied).await;
        }
        if record.attempt == attempt + 1 && record.state == TaskState::Ready {
            debug!(run_id = %run.id, task = %key, attempt, "duplicate result: retry sent again");
            self.release_task_slots(run, key, attempt).await?;
            let next = Message::Dispatch {
                run_id: run.id.clone(),
                key: key.clone(),
                attempt: record.attempt,
            };
            let delay = record.not_before.saturating_sub(self.clock.now());
            return Ok(self.send(vec![self.delayed(next, delay)]).await?);
        }
        debug!(run_id = %run.id, task = %key, attempt, state = %record.state, "late result ignored");
        Ok(())
    }

    /// After a task or item settled: plan its dependents, or settle its parent when it
    /// was the parent's last item.
    async fn after_settle(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        applied: Applied,
    ) -> Result<(), EngineError> {
        match (key.item, applied.parent) {
            (Some(_), Some(counts)) if counts.unsettled == 0 => {
                self.settle_parent(run, &key.task, counts).await
            }
            (Some(_), _) => Ok(()),
            (None, _) => {
                let plan = Message::Plan {
                    run_id: run.id.clone(),
                    settled: vec![key.task.clone()],
                };
                Ok(self.send(vec![crate::message::Outgoing::now(plan)]).await?)
            }
        }
    }

    /// Settle a `for_each` task once all its items settled.
    async fn settle_parent(
        &self,
        run: &RunRecord,
        task: &str,
        counts: ItemCounts,
    ) -> Result<(), EngineError> {
        let (to, failure) = if counts.failed == 0 {
            (TaskState::Succeeded, None)
        } else {
            let message = format!("{} of {} items failed", counts.failed, counts.total);
            (
                TaskState::Failed,
                Some(Failure::new("items_failed", message)),
            )
        };
        let change = TaskChange {
            key: TaskKey::task(task),
            from: TaskState::Running,
            attempt: 1,
            to,
            new_attempt: 1,
            not_before: None,
            started_at: None,
            ended_at: Some(self.clock.now()),
            output: None,
            failure,
            sink: self
                .workflow(run)
                .await?
                .task(task)
                .is_some_and(|t| t.downstream.is_empty()),
        };
        if self.update_task(&run.id, &change).await?.applied {
            info!(run_id = %run.id, task, state = %to, items = counts.total, "task settled");
            if let Some(failure) = &change.failure {
                let key = TaskKey::task(task);
                let reason = Some(failure.to_string());
                self.announce(
                    run,
                    LifecycleKind::TaskFailed,
                    to.as_str(),
                    Some((&key, 1)),
                    reason,
                )
                .await;
            }
        }
        let plan = Message::Plan {
            run_id: run.id.clone(),
            settled: vec![task.to_owned()],
        };
        Ok(self.send(vec![crate::message::Outgoing::now(plan)]).await?)
    }
}

/// The stored form of an output, refused when over [`OUTPUT_LIMIT`].
fn stored_output(output: &Value) -> Result<String, Failure> {
    let text = output.to_string();
    if text.len() > OUTPUT_LIMIT {
        let message = format!(
            "output is {} bytes, over the limit of {OUTPUT_LIMIT} bytes",
            text.len()
        );
        return Err(Failure::new(Failure::PAYLOAD_TOO_LARGE, message));
    }
    Ok(text)
}
