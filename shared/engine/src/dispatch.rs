//! dispatch: take the task's slots, move it from ready to running for its attempt, and
//! start it. With no free slot the message is parked until one is released.

use tracing::{debug, info};

use aloft_core::definition::RunSpec;
use aloft_core::workflow::TaskPlan;
use aloft_core::{Failure, TaskState, Workflow};

use crate::engine::{Engine, EngineError, WATCH_MARGIN_MS};
use crate::message::{Message, TaskKey};
use crate::plan::holder;
use crate::ports::{Clock, Events, Invoker, Job, Queue, Slot, StartError, Store, TaskChange};
use crate::record::{RunRecord, TaskRecord};

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Handle a dispatch message.
    pub(crate) async fn dispatch(
        &self,
        run_id: &str,
        key: &TaskKey,
        attempt: u32,
    ) -> Result<(), EngineError> {
        let Some(record) = self.dispatched_record(run_id, key).await? else {
            debug!(run_id, task = %key, "dispatch for an unknown task ignored");
            return Ok(());
        };
        let started = record.state == TaskState::Running || record.state.is_settled();
        // A task the planner decided to run without writing it ready (see
        // `Config::start_from_waiting`).
        let waiting = self.config.start_from_waiting
            && record.state == TaskState::Waiting
            && record.attempt == 0
            && attempt == 1;
        if !waiting && (record.attempt != attempt || record.state != TaskState::Ready && !started) {
            debug!(run_id, task = %key, attempt, state = %record.state, "duplicate dispatch ignored");
            return Ok(());
        }
        let Some(run) = self.run_record(run_id).await? else {
            return Ok(());
        };
        if run.status.is_settled() {
            // A delivery that took this attempt's slots and stopped before it used them
            // may come back after the run settled: its leases go now, not at expiry.
            return self.release_task_slots(&run, key, attempt).await;
        }
        if started {
            // A pass task whose dispatcher stopped before it finished, or before the
            // follow-ups of finishing (slots freed, dependents planned): passing has no
            // effect outside the store, so finishing again completes what is missing.
            // Any other attempt may have started, and waits for its result or timeout.
            let workflow = self.workflow(&run).await?;
            if let Some(RunSpec::Pass(pass)) = workflow.task(&key.task).map(|t| &t.run) {
                let outcome = Ok(pass.result.clone());
                return self.finish_attempt(&run, key, attempt, outcome).await;
            }
            debug!(run_id, task = %key, attempt, "duplicate dispatch of a started attempt ignored");
            return Ok(());
        }
        let now = self.clock.now();
        let message = Message::Dispatch {
            run_id: run_id.to_owned(),
            key: key.clone(),
            attempt,
        };
        if now < record.not_before {
            let timer = format!("dispatch/{key}/{attempt}");
            return self.rearm(run_id, &timer, message, record.not_before).await;
        }
        let workflow = self.workflow(&run).await?;
        let Some(task) = workflow.task(&key.task) else {
            return Ok(());
        };
        let holder = holder(run_id, key, attempt);
        let slots = slots(&run, &workflow, task, key);
        if !slots.is_empty() {
            let expires = now + task.timeout.as_millis() + self.config.lease_grace_ms;
            if let Some(full) = self.store.acquire(&slots, &holder, now, expires).await? {
                debug!(run_id, task = %key, attempt, scope = %full, "task waits for a slot");
                let mut since = record.not_before;
                if waiting {
                    // It waits as a ready task: the wake-up's dispatch finds it so.
                    let ready = TaskChange {
                        to: TaskState::Ready,
                        not_before: Some(now),
                        started_at: None,
                        ..start_change(&record, attempt, now)
                    };
                    if !self.update_task(run_id, &ready).await?.applied {
                        return self.release_task_slots(&run, key, attempt).await;
                    }
                    since = now;
                }
                self.store.park(&full, &message).await?;
                let timer = format!("recheck/{key}/{attempt}");
                return self.recheck(run_id, &timer, message, since).await;
            }
        }
        self.start_attempt(&run, &workflow, task, &record, attempt)
            .await
    }

    /// Move the task from its state in `record` (ready, or waiting) to running for
    /// `attempt` and start it; pass tasks finish on the spot.
    async fn start_attempt(
        &self,
        run: &RunRecord,
        workflow: &Workflow,
        task: &TaskPlan,
        record: &TaskRecord,
        attempt: u32,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        let key = &record.key;
        let from = record;
        let record = &TaskRecord {
            state: TaskState::Ready,
            attempt,
            started_at: Some(now),
            ..from.clone()
        };
        let due_at = now + task.timeout.as_millis();
        let check = Message::TimeoutCheck {
            run_id: run.id.clone(),
            key: key.clone(),
            attempt: record.attempt,
            due_at,
        };
        let watched = Self::watched(run, due_at, now);
        if !matches!(task.run, RunSpec::Pass(_)) && !watched {
            // The check goes out before the attempt is marked running: a dispatcher that
            // stops between the two leaves a running attempt that times out and follows
            // its retry policy, never one that waits forever. A check that finds the
            // attempt not running, or running since later, changes nothing. (An attempt
            // the run's watchdog times needs none: its next leg comes before the
            // deadline and scans the run's running attempts when it arrives.)
            self.send(vec![self.delayed(check.clone(), due_at - now)])
                .await?;
        }
        if let RunSpec::Pass(pass) = &task.run {
            // Nothing runs outside the store: ready (or waiting) to succeeded in one write.
            info!(workflow = %run.workflow, run_id = %run.id, task = %key, attempt = record.attempt, "task passed");
            let start = start_change(from, attempt, now);
            return self.finish_pass(run, &start, pass.result.clone()).await;
        }
        let running = start_change(from, attempt, now);
        if !self.update_task(&run.id, &running).await?.applied {
            debug!(run_id = %run.id, task = %key, "task already started");
            return self.release_task_slots(run, key, record.attempt).await;
        }
        if watched
            && run
                .watch
                .is_some_and(|w| self.clock.now() + WATCH_MARGIN_MS / 2 >= w.at)
        {
            // Marked running so late that the watchdog's leg may have scanned before:
            // the attempt gets its own check after all.
            self.send(vec![self.delayed(check, due_at - now)]).await?;
        }
        info!(workflow = %run.workflow, run_id = %run.id, task = %key, attempt = record.attempt, "task started");
        let input = match self.task_input(run, workflow, task, record).await? {
            Ok(input) => input,
            Err(failure) => {
                return self
                    .finish_attempt(run, key, record.attempt, Err(failure))
                    .await;
            }
        };
        let job = Job {
            run_id: run.id.clone(),
            workflow: run.workflow.clone(),
            key: key.clone(),
            attempt: record.attempt,
            run: task.run.clone(),
            input,
            workdir: run.workdir.clone(),
            timeout: task.timeout,
        };
        match self.invoker.start(job).await {
            Ok(()) => Ok(()),
            Err(StartError::Rejected(failure)) => {
                self.finish_attempt(run, key, record.attempt, Err(failure))
                    .await
            }
            Err(StartError::Port(error)) if error.retryable => {
                self.undo_start(run, key, record.attempt).await?;
                Err(error.into())
            }
            Err(StartError::Port(error)) => {
                let failure = Failure::error(format!("could not start: {error}"));
                self.finish_attempt(run, key, record.attempt, Err(failure))
                    .await
            }
        }
    }

    /// Put an attempt the invoker could not start for now back to ready, with its slots
    /// freed, so that the dispatch message delivered again starts that same attempt.
    /// (A backend with transactions rolls this back anyway.)
    async fn undo_start(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        attempt: u32,
    ) -> Result<(), EngineError> {
        let ready = TaskChange {
            key: key.clone(),
            from: TaskState::Running,
            attempt,
            to: TaskState::Ready,
            new_attempt: attempt,
            not_before: None,
            started_at: None,
            ended_at: None,
            output: None,
            failure: None,
            sink: false,
        };
        self.update_task(&run.id, &ready).await?;
        self.release_task_slots(run, key, attempt).await
    }

    /// Release the slots `attempt` of a task took, if its definition gives it any.
    pub(crate) async fn release_task_slots(
        &self,
        run: &RunRecord,
        key: &TaskKey,
        attempt: u32,
    ) -> Result<(), EngineError> {
        let workflow = self.workflow(run).await?;
        let Some(task) = workflow.task(&key.task) else {
            return Ok(());
        };
        let scopes: Vec<String> = slots(run, &workflow, task, key)
            .into_iter()
            .map(|slot| slot.scope)
            .collect();
        self.release_slots(&holder(&run.id, key, attempt), &scopes)
            .await
    }
}

/// The change that starts `attempt` of a task from its state in `record`: to running.
pub(crate) fn start_change(record: &TaskRecord, attempt: u32, now: u64) -> TaskChange {
    TaskChange {
        key: record.key.clone(),
        from: record.state,
        attempt: record.attempt,
        to: TaskState::Running,
        new_attempt: attempt,
        not_before: None,
        started_at: Some(now),
        ended_at: None,
        output: None,
        failure: None,
        sink: false,
    }
}

/// The slot scopes one attempt needs: the run's task limit, its pool, and its
/// `for_each` task's item limit.
fn slots(run: &RunRecord, workflow: &Workflow, task: &TaskPlan, key: &TaskKey) -> Vec<Slot> {
    let mut slots = Vec::new();
    if let Some(capacity) = workflow.definition.concurrency.max_tasks {
        slots.push(Slot {
            scope: format!("run:{}", run.id),
            capacity,
        });
    }
    if let Some((pool, capacity)) = &task.pool {
        slots.push(Slot {
            scope: format!("pool:{pool}"),
            capacity: *capacity,
        });
    }
    if let (Some(_), Some(capacity)) = (
        key.item,
        task.for_each.as_ref().and_then(|f| f.max_concurrency),
    ) {
        slots.push(Slot {
            scope: format!("items:{}/{}", run.id, key.task),
            capacity,
        });
    }
    slots
}
