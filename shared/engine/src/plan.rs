//! plan: start a queued run when a run slot is free, decide which waiting tasks become
//! ready or settle as skipped, dispatch ready tasks, and settle the run when every task
//! has settled.

use std::collections::{BTreeSet, HashMap};

use serde_json::Value;
use tracing::{debug, info, warn};

use aloft_core::definition::{DeadlineAction, Overlap};
use aloft_core::rules::{Decision, decide};
use aloft_core::workflow::{ForEach, TaskPlan};
use aloft_core::{Failure, RunStatus, TaskState, Workflow};

use crate::engine::{Engine, EngineError};
use crate::message::{Message, Outgoing, TaskKey};
use crate::ports::{Clock, Events, Invoker, LifecycleKind, Queue, Slot, Store, TaskChange};
use crate::record::{RunRecord, TaskRecord};

/// A run slot lease lasts this long past the deadline, or this long when there is none,
/// so that a run abandoned for good cannot hold its workflow's slot forever.
const RUN_LEASE_MS: u64 = 7 * 24 * 3600 * 1000;

/// How many times stopping a run tries to settle one of its tasks that keeps moving.
const STOP_TRIES: usize = 5;

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Handle a plan message.
    pub(crate) async fn plan(&self, run_id: &str, settled: &[String]) -> Result<(), EngineError> {
        let Some(mut run) = self.run_record(run_id).await? else {
            warn!(run_id, "plan for an unknown run ignored");
            return Ok(());
        };
        if run.status.is_settled() {
            debug!(run_id, "plan for a settled run ignored");
            return Ok(());
        }
        let workflow = self.workflow(&run).await?;
        if run.status == RunStatus::Queued && !self.start_run(&mut run, &workflow).await? {
            return Ok(());
        }

        let mut candidates = if settled.is_empty() {
            (0..workflow.tasks.len()).collect()
        } else {
            let settled = settled.iter().filter_map(|name| workflow.index(name));
            self.decidable(&run, &workflow, settled.collect()).await?
        };
        let mut counters = (run.unsettled, run.failed);
        let mut outgoing = Vec::new();
        while !candidates.is_empty() {
            let step = self
                .plan_step(&run, &workflow, &candidates, &mut outgoing)
                .await?;
            if let Some(latest) = step.counters {
                counters = latest;
            }
            let settled = step.newly_settled.iter().filter_map(|n| workflow.index(n));
            candidates = self.decidable(&run, &workflow, settled.collect()).await?;
        }
        if !outgoing.is_empty() {
            self.send(outgoing).await?;
        }
        if counters.0 == 0 {
            let status = if counters.1 == 0 {
                RunStatus::Succeeded
            } else {
                RunStatus::Failed
            };
            self.settle_run(&run, RunStatus::Running, status).await?;
        }
        Ok(())
    }

    /// Take the workflow's run slot and move the run to running. False when it waits.
    async fn start_run(
        &self,
        run: &mut RunRecord,
        workflow: &Workflow,
    ) -> Result<bool, EngineError> {
        let now = self.clock.now();
        let deadline = workflow
            .definition
            .deadline
            .map(|d| now.saturating_add(d.as_millis()));
        if let Some(max_runs) = workflow.definition.concurrency.max_runs {
            let slot = Slot {
                scope: run_scope(&run.workflow),
                capacity: max_runs,
            };
            let expires = deadline.unwrap_or(now).saturating_add(RUN_LEASE_MS);
            if let Some(full) = self.store.acquire(&[slot], &run.id, now, expires).await? {
                let plan = Message::Plan {
                    run_id: run.id.clone(),
                    settled: Vec::new(),
                };
                self.store.park(&full, &plan).await?;
                self.recheck(&run.id, "recheck/run", plan, run.created_at)
                    .await?;
                info!(workflow = %run.workflow, run_id = %run.id, "run waits for a run slot (max_runs)");
                return Ok(false);
            }
        }
        // The run's timers go out before the write that starts it: a planner that stops
        // between the two leaves a queued run planned again, which sends them again (the
        // checks of a start that did not apply find a deadline or watchdog not theirs).
        // The other way round, the run would go on without them.
        let watch = self.first_watch(workflow, now);
        let mut timers = Vec::new();
        if let Some(due_at) = deadline {
            let check = Message::DeadlineCheck {
                run_id: run.id.clone(),
                due_at,
            };
            timers.push(self.delayed(check, due_at - now));
        }
        if let Some(leg) = watch {
            timers.push(self.watch_message(&run.id, leg, now));
        }
        if !timers.is_empty() {
            self.send(timers).await?;
        }
        self.forget_run();
        if self.store.start_run(&run.id, now, deadline, watch).await? {
            self.note_started_here(&run.id);
            info!(workflow = %run.workflow, run_id = %run.id, "run started");
            self.announce(run, LifecycleKind::RunStarted, "running", None, None)
                .await;
            run.watch = watch;
            run.deadline_at = deadline;
        } else if let Some(stored) = self.run_record(&run.id).await? {
            // Another delivery started it: its deadline and watchdog are the run's.
            run.watch = stored.watch;
            run.deadline_at = stored.deadline_at;
        }
        run.status = RunStatus::Running;
        run.started_at.get_or_insert(now);
        Ok(true)
    }

    /// The dependents of tasks that just settled that may be decided now: a dependent
    /// with more upstreams than just settled is one only once the store has recorded
    /// all of them settled (or keeps no record, and its upstreams are read).
    async fn decidable(
        &self,
        run: &RunRecord,
        workflow: &Workflow,
        settled: BTreeSet<usize>,
    ) -> Result<BTreeSet<usize>, EngineError> {
        let mut decidable = BTreeSet::new();
        for index in dependents(workflow, settled.iter().copied()) {
            let task = &workflow.tasks[index];
            let fresh: Vec<usize> = task
                .upstream
                .iter()
                .copied()
                .filter(|u| settled.contains(u))
                .collect();
            if fresh.len() < task.upstream.len() {
                let noted = self
                    .store
                    .note_settled_upstreams(&run.id, &task.name, &fresh)
                    .await?;
                if noted.is_some_and(|n| n < task.upstream.len()) {
                    debug!(run_id = %run.id, task = %task.name, noted, "task waits for more upstreams");
                    continue;
                }
            }
            decidable.insert(index);
        }
        Ok(decidable)
    }

    /// Decide every candidate whose upstreams have settled.
    async fn plan_step(
        &self,
        run: &RunRecord,
        workflow: &Workflow,
        candidates: &BTreeSet<usize>,
        outgoing: &mut Vec<Outgoing>,
    ) -> Result<Step, EngineError> {
        let records = self.load_with_upstreams(run, workflow, candidates).await?;
        let state_of = |i: usize| records.get(&i).map_or(TaskState::Waiting, |r| r.state);
        let mut step = Step::default();
        for &index in candidates {
            let task = &workflow.tasks[index];
            match records.get(&index) {
                Some(record) if record.state == TaskState::Ready => {
                    outgoing.push(dispatch(run, TaskKey::task(&task.name), record.attempt));
                }
                Some(record) if record.state == TaskState::Running && record.items.is_some() => {
                    // Planned again after fanning out: the planner that wrote the items
                    // may have stopped before it sent their dispatches.
                    for item in self.store.all_tasks(&run.id).await? {
                        if item.key.task == task.name
                            && item.key.item.is_some()
                            && item.state == TaskState::Ready
                        {
                            outgoing.push(dispatch(run, item.key, item.attempt));
                        }
                    }
                }
                // Settled already: by an earlier delivery of this message that stopped
                // before it went on to the dependents, which are looked at now.
                Some(record) if record.state.is_settled() => {
                    step.newly_settled.push(task.name.clone());
                }
                Some(record) if record.state != TaskState::Waiting => {}
                _ if task.upstream.iter().all(|&u| state_of(u).is_settled()) => {
                    let decision = decide(task.rule, task.upstream.iter().map(|&u| state_of(u)));
                    self.apply_decision(run, task, decision, &records, outgoing, &mut step)
                        .await?;
                }
                _ => {}
            }
        }
        Ok(step)
    }

    async fn load_with_upstreams(
        &self,
        run: &RunRecord,
        workflow: &Workflow,
        candidates: &BTreeSet<usize>,
    ) -> Result<HashMap<usize, TaskRecord>, EngineError> {
        let mut wanted: BTreeSet<usize> = candidates.clone();
        for &index in candidates {
            wanted.extend(workflow.tasks[index].upstream.iter().copied());
        }
        let key = |i: usize| TaskKey::task(&workflow.tasks[i].name);
        let with_upstream: Vec<(TaskKey, Vec<TaskKey>)> = candidates
            .iter()
            .map(|&i| {
                (
                    key(i),
                    workflow.tasks[i].upstream.iter().map(|&u| key(u)).collect(),
                )
            })
            .collect();
        let index_of = |r: TaskRecord| workflow.index(&r.key.task).map(|i| (i, r));
        let mut records: HashMap<usize, TaskRecord> = self
            .unplanned(&run.id, &with_upstream)
            .into_iter()
            .filter_map(index_of)
            .collect();
        let keys: Vec<TaskKey> = wanted
            .iter()
            .filter(|i| !records.contains_key(i))
            .map(|&i| key(i))
            .collect();
        let read = self.task_records(&run.id, &keys).await?;
        records.extend(read.into_iter().filter_map(index_of));
        Ok(records)
    }

    async fn apply_decision(
        &self,
        run: &RunRecord,
        task: &TaskPlan,
        decision: Decision,
        records: &HashMap<usize, TaskRecord>,
        outgoing: &mut Vec<Outgoing>,
        step: &mut Step,
    ) -> Result<(), EngineError> {
        let now = self.clock.now();
        if let Some(state) = decision.settled_state() {
            // A `for_each` task that runs no item outputs the empty list, however it ends.
            let output = task.for_each.as_ref().map(|_| "[]");
            let change = settle_waiting(task, state, now, output, None);
            return self.settle_in_plan(run, task, change, step).await;
        }
        let Some(for_each) = &task.for_each else {
            if self.config.start_from_waiting {
                outgoing.push(dispatch(run, TaskKey::task(&task.name), 1));
                return Ok(());
            }
            let change = TaskChange {
                new_attempt: 1,
                not_before: Some(now),
                ended_at: None,
                ..settle_waiting(task, TaskState::Ready, now, None, None)
            };
            if self.update_task(&run.id, &change).await?.applied {
                outgoing.push(dispatch(run, TaskKey::task(&task.name), 1));
            }
            return Ok(());
        };
        let source = records
            .get(&for_each.source)
            .filter(|r| r.state == TaskState::Succeeded);
        let items = match source {
            Some(record) => items_of(self.upstream_output(run, record).await?, for_each),
            // A source that did not succeed (skipped, or failed under a rule that runs
            // anyway) has nothing to map over.
            None => Ok(Vec::new()),
        };
        match items {
            Ok(items) if items.is_empty() => {
                let change = settle_waiting(task, TaskState::Skipped, now, Some("[]"), None);
                self.settle_in_plan(run, task, change, step).await
            }
            Ok(items) => {
                if self
                    .store
                    .add_items(&run.id, &task.name, &items, now)
                    .await?
                {
                    info!(run_id = %run.id, task = %task.name, items = items.len(), "task fanned out");
                    let count = u32::try_from(items.len()).unwrap_or(u32::MAX);
                    outgoing
                        .extend((0..count).map(|i| dispatch(run, TaskKey::item(&task.name, i), 1)));
                }
                Ok(())
            }
            Err(failure) => {
                let change = settle_waiting(task, TaskState::Failed, now, None, Some(failure));
                self.settle_in_plan(run, task, change, step).await
            }
        }
    }

    async fn settle_in_plan(
        &self,
        run: &RunRecord,
        task: &TaskPlan,
        change: TaskChange,
        step: &mut Step,
    ) -> Result<(), EngineError> {
        let applied = self.update_task(&run.id, &change).await?;
        if let Some(counters) = applied.run_counters {
            step.counters = Some(counters);
        }
        if applied.applied {
            info!(run_id = %run.id, task = %task.name, state = %change.to, "task settled without running");
            step.newly_settled.push(task.name.clone());
        }
        Ok(())
    }

    /// Settle a run, release its run slot and record the outcome.
    pub(crate) async fn settle_run(
        &self,
        run: &RunRecord,
        from: RunStatus,
        to: RunStatus,
    ) -> Result<(), EngineError> {
        self.forget_run();
        if self
            .store
            .settle_run(&run.id, from, to, self.clock.now())
            .await?
        {
            info!(workflow = %run.workflow, run_id = %run.id, status = %to, "run settled");
            self.announce(run, LifecycleKind::settled(to), to.as_str(), None, None)
                .await;
        }
        if self
            .workflow(run)
            .await?
            .definition
            .concurrency
            .max_runs
            .is_some()
        {
            self.release_slots(&run.id, &[run_scope(&run.workflow)])
                .await?;
        }
        self.after_run_settled(run).await
    }

    /// A run of a `buffer_one` workflow settled: the run waiting behind it may go.
    async fn after_run_settled(&self, run: &RunRecord) -> Result<(), EngineError> {
        let workflow = self.workflow(run).await?;
        if crate::overlap::policy_of(&workflow.definition) == Overlap::BufferOne {
            self.wake_buffered(&run.workflow).await?;
        }
        Ok(())
    }

    /// Handle a deadline check: record the SLA miss, and fail the run when asked to.
    pub(crate) async fn deadline_check(
        &self,
        run_id: &str,
        due_at: u64,
    ) -> Result<(), EngineError> {
        let Some(run) = self.run_record(run_id).await? else {
            return Ok(());
        };
        if run.status.is_settled() {
            return Ok(());
        }
        // The stored deadline is the run's: a check sent by a start that did not apply
        // carries another, and one for a run that has none yet comes from such a start.
        let Some(due_at) = run.deadline_at else {
            debug!(
                run_id,
                due_at, "deadline check of a start that did not apply ignored"
            );
            return Ok(());
        };
        let now = self.clock.now();
        if now < due_at {
            let check = Message::DeadlineCheck {
                run_id: run_id.to_owned(),
                due_at,
            };
            return self.rearm(run_id, "deadline", check, due_at).await;
        }
        self.forget_run();
        if self.store.mark_sla_missed(run_id).await? {
            warn!(workflow = %run.workflow, run_id, "run missed its deadline");
            self.announce(
                &run,
                LifecycleKind::SlaMissed,
                run.status.as_str(),
                None,
                None,
            )
            .await;
        }
        let workflow = self.workflow(&run).await?;
        if workflow.definition.on_deadline == DeadlineAction::Fail {
            self.stop_run(&run, RunStatus::TimedOut).await?;
        }
        Ok(())
    }

    /// Settle a run as `to` at once: running attempts are stopped and time out, tasks
    /// that have not started are skipped.
    pub(crate) async fn stop_run(&self, run: &RunRecord, to: RunStatus) -> Result<(), EngineError> {
        let why = Failure::new(Failure::TIMEOUT, "the run passed its deadline");
        self.stop_run_because(run, to, TaskState::TimedOut, why)
            .await
    }

    /// [`Self::stop_run`] where running attempts end as `running_to` for `why`.
    pub(crate) async fn stop_run_because(
        &self,
        run: &RunRecord,
        to: RunStatus,
        running_to: TaskState,
        why: Failure,
    ) -> Result<(), EngineError> {
        let reason = (why.kind != Failure::TIMEOUT).then(|| why.to_string());
        self.forget_run();
        let now = self.clock.now();
        if self.store.settle_run(&run.id, run.status, to, now).await? {
            info!(workflow = %run.workflow, run_id = %run.id, status = %to, "run stopped");
            self.announce(run, LifecycleKind::settled(to), to.as_str(), None, reason)
                .await;
        } else if self
            .store
            .run(&run.id)
            .await?
            .is_none_or(|r| r.status != to)
        {
            return Ok(());
        }
        // Stopped, by this handling or by an earlier delivery of its message that may
        // have died before the tasks: every task not settled yet is settled now.
        let mut holders = Vec::new();
        for task in self.store.all_tasks(&run.id).await? {
            if let Some(holder) = self.stop_task(&run.id, task, running_to, &why).await? {
                holders.push(holder);
            }
        }
        // Slots are freed once no task of the run waits any more, so that the wake-ups
        // go to other runs' waiting tasks, not to this run's stopped ones.
        for (key, attempt) in holders {
            self.release_task_slots(run, &key, attempt).await?;
        }
        // The run's own slots: its workflow's run slot, or its place behind the runs
        // before it if it was still waiting there.
        let definition = &self.workflow(run).await?.definition;
        let mut scopes = Vec::new();
        if definition.concurrency.max_runs.is_some() {
            scopes.push(run_scope(&run.workflow));
        }
        if crate::overlap::policy_of(definition) == Overlap::BufferOne {
            scopes.push(crate::overlap::buffer_scope(&run.workflow));
        }
        self.release_slots(&run.id, &scopes).await?;
        self.after_run_settled(run).await
    }

    /// Settle one task of a stopped run: a running attempt ends as `running_to` for
    /// `why`, a pending retry as its last attempt did, a task not started is skipped.
    /// A change refused because the task moved meanwhile (a result that did not know
    /// the run had stopped started it, or settled it) is made again on what it moved
    /// to. Returns the attempt whose slots to free, when it had any.
    async fn stop_task(
        &self,
        run_id: &str,
        mut task: TaskRecord,
        running_to: TaskState,
        why: &Failure,
    ) -> Result<Option<(TaskKey, u32)>, EngineError> {
        // Each refusal means the task moved on; a task moves at most a few times.
        for _ in 0..STOP_TRIES {
            let to_state = match task.state {
                TaskState::Running => running_to,
                // A retry was pending: the task ends as its last attempt did.
                TaskState::Ready if task.attempt > 1 => match &task.failure {
                    Some(f) if f.kind == Failure::TIMEOUT => TaskState::TimedOut,
                    _ => TaskState::Failed,
                },
                TaskState::Waiting | TaskState::Ready => TaskState::Skipped,
                _ => return Ok(None),
            };
            if task.state == TaskState::Running && task.items.is_none() {
                self.invoker.cancel(run_id, &task.key, task.attempt).await?;
            }
            let failure = (task.state == TaskState::Running).then(|| why.clone());
            // A ready task's attempt never started: it counts only the attempts that ran.
            let ran = match task.state {
                TaskState::Ready => task.attempt.saturating_sub(1),
                _ => task.attempt,
            };
            let change = TaskChange {
                key: task.key.clone(),
                from: task.state,
                attempt: task.attempt,
                to: to_state,
                new_attempt: ran,
                not_before: None,
                started_at: None,
                ended_at: Some(self.clock.now()),
                output: None,
                failure,
                sink: false,
            };
            if self.update_task(run_id, &change).await?.applied {
                return Ok(Some((task.key, task.attempt)));
            }
            match self.task_record(run_id, &task.key).await? {
                Some(moved) => task = moved,
                None => return Ok(None),
            }
        }
        warn!(run_id, task = %task.key, "task of a stopped run kept moving; left as it is");
        Ok(Some((task.key, task.attempt)))
    }
}

/// What one planning step found.
#[derive(Default)]
struct Step {
    newly_settled: Vec<String>,
    counters: Option<(u32, u32)>,
}

/// The direct dependents of some tasks.
fn dependents(workflow: &Workflow, settled: impl Iterator<Item = usize>) -> BTreeSet<usize> {
    settled
        .flat_map(|i| workflow.tasks[i].downstream.iter().copied())
        .collect()
}

fn dispatch(run: &RunRecord, key: TaskKey, attempt: u32) -> Outgoing {
    Outgoing::now(Message::Dispatch {
        run_id: run.id.clone(),
        key,
        attempt,
    })
}

/// The scope of a workflow's run slots (`max_runs`), held by run ids.
fn run_scope(workflow: &str) -> String {
    format!("workflow:{workflow}")
}

/// The holder name of one attempt's slot leases.
pub(crate) fn holder(run_id: &str, key: &TaskKey, attempt: u32) -> String {
    format!("{run_id}/{key}/{attempt}")
}

/// A change that settles a waiting task without running it.
fn settle_waiting(
    task: &TaskPlan,
    to: TaskState,
    now: u64,
    output: Option<&str>,
    failure: Option<Failure>,
) -> TaskChange {
    TaskChange {
        sink: task.downstream.is_empty(),
        key: TaskKey::task(&task.name),
        from: TaskState::Waiting,
        attempt: 0,
        to,
        new_attempt: 0,
        not_before: None,
        started_at: None,
        ended_at: Some(now),
        output: output.map(str::to_owned),
        failure,
    }
}

/// The items a `for_each` task maps over, found along its path in its source's output
/// (for a `for_each` source, the list of its items' outputs).
fn items_of(mut value: Value, for_each: &ForEach) -> Result<Vec<Value>, Failure> {
    for field in &for_each.path {
        value = match value {
            Value::Object(mut map) => map.remove(field).unwrap_or(Value::Null),
            _ => Value::Null,
        };
    }
    match value {
        Value::Array(items) => Ok(items),
        other => Err(Failure::new(
            "bad_items",
            format!(
                "for_each path .{} is not a list: found {}",
                for_each.path.join("."),
                kind(&other)
            ),
        )),
    }
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}
