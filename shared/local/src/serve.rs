//! The embedded scheduler behind `aloft serve`: fires the schedules of some workflows on
//! the local store, on time, and drives the runs it starts in this process.
//!
//! Per workflow the store keeps the last tick decided (fired, skipped by the overlap
//! policy, or passed over). Each turn asks [`ticks::due`] what to fire between that tick
//! and the clock, starts those runs through the engine's trigger (each keyed
//! `schedule:<tick>`, so a tick fired twice is one run), and records the new last tick,
//! all in one transaction. After downtime the same rule makes up missed ticks as the
//! workflow's `catchup` allows. A workflow served for the first time starts from now:
//! nothing before is owed.
//!
//! Events sent to the inbox ([`crate::inbox`]) start runs too: each event starts one run
//! of every served workflow whose `events` triggers match it (the first matching trigger
//! builds the input), keyed `event:<id>`, through the same trigger as ticks, so overlap
//! policies apply; the event is marked handled in the same transaction.
//!
//! The loop reads time only from the engine's [`Clock`] and waits with tokio's timers,
//! so a test with a paused runtime and a [`crate::TokioClock`] drives it through hours
//! in no time.

use std::collections::HashMap;
use std::future::Future;

use jiff::Timestamp;
use jiff::tz::TimeZone;
use serde_json::{Value, json};
use tracing::info;

use aloft_core::events::{EventError, first_match, map_input, run_key};
use aloft_core::schedule::ticks::{self, Catchup};
use aloft_core::schedule::{Schedule, ScheduleError, time_zone};
use aloft_core::{Definition, RunStatus};
use aloft_engine::ports::{Clock, Store};
use aloft_engine::{Admission, EngineError, StartRequest, Started};

use crate::Runner;
use crate::inbox::Pending;
use crate::runner::{claim_driver, next_visible};

/// Longest wait between two looks at the store: runs this process drives may be woken
/// by other processes (a freed slot), and the wall clock may jump.
const POLL_MS: u64 = 1_000;

/// Most inbox events taken in one turn.
const EVENTS_PER_TURN: usize = 100;

/// One workflow with a schedule or event triggers, ready to serve.
#[derive(Debug, Clone)]
pub struct Scheduled {
    /// The workflow.
    pub definition: Definition,
    /// Where its command tasks run.
    pub workdir: Option<String>,
    schedule: Option<(Schedule, TimeZone)>,
}

impl Scheduled {
    /// A workflow to serve; `None` when it has neither a schedule nor event triggers.
    pub fn new(
        definition: Definition,
        workdir: Option<String>,
    ) -> Result<Option<Self>, ScheduleError> {
        let schedule = match &definition.schedule {
            Some(spec) => Some((
                Schedule::parse(&spec.expression)?,
                time_zone(spec.timezone.as_deref().unwrap_or("UTC"))?,
            )),
            None if definition.events.is_empty() => return Ok(None),
            None => None,
        };
        Ok(Some(Self {
            definition,
            workdir,
            schedule,
        }))
    }

    /// The workflow's name.
    pub fn name(&self) -> &str {
        &self.definition.name
    }

    /// Whether the workflow has a schedule (else it is served for its events only).
    pub fn has_schedule(&self) -> bool {
        self.schedule.is_some()
    }

    /// The first tick strictly after `after` (ms since the epoch); `None` without a
    /// schedule.
    pub fn next_after(&self, after: u64) -> Option<u64> {
        let (schedule, zone) = self.schedule.as_ref()?;
        let tick = schedule.next_after(instant(after), zone)?;
        u64::try_from(tick.as_millisecond()).ok()
    }

    fn catchup(&self) -> Option<Catchup> {
        self.definition
            .schedule
            .as_ref()
            .and_then(|s| s.catchup.as_ref())
            .map(Catchup::from)
    }

    fn request(&self, tick: Timestamp) -> StartRequest {
        StartRequest {
            definition: self.definition.clone(),
            input: json!({}),
            idempotency_key: Some(ticks::tick_key(tick)),
            scheduled_time: Some(millis(tick)),
            workdir: self.workdir.clone(),
        }
    }

    /// The start request for an event, if one of the workflow's triggers matches it.
    fn event_request(&self, event: &Value, key: &str) -> Result<Option<StartRequest>, EventError> {
        let Some((_, trigger)) = first_match(&self.definition.events, event)? else {
            return Ok(None);
        };
        Ok(Some(StartRequest {
            definition: self.definition.clone(),
            input: map_input(trigger.input.as_ref(), event),
            idempotency_key: Some(key.to_owned()),
            scheduled_time: None,
            workdir: self.workdir.clone(),
        }))
    }
}

/// Something the scheduler did, for its log.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A workflow served for the first time: its ticks count from `since`.
    FirstServed {
        /// The workflow.
        workflow: String,
        /// Now, when it was first served.
        since: u64,
    },
    /// A tick fired: what the trigger did with it.
    Fired {
        /// The workflow.
        workflow: String,
        /// The tick.
        tick: u64,
        /// The run, or why none was made.
        started: Started,
    },
    /// A tick that already has a run (which has settled): nothing new.
    AlreadyFired {
        /// The workflow.
        workflow: String,
        /// The tick.
        tick: u64,
        /// Its run.
        run_id: String,
    },
    /// Missed ticks were passed over (not made up), from `first` on.
    PassedOver {
        /// The workflow.
        workflow: String,
        /// The oldest tick passed over.
        first: u64,
        /// How many ticks fired instead (made up), just after it.
        made_up: usize,
    },
    /// An inbox event matched a workflow's trigger: what the trigger did with it.
    Triggered {
        /// The event's id.
        event_id: String,
        /// The workflow.
        workflow: String,
        /// The run, or why none was made.
        started: Started,
    },
    /// An inbox event whose run (which has settled) exists already: nothing new.
    AlreadyTriggered {
        /// The event's id.
        event_id: String,
        /// The workflow.
        workflow: String,
        /// Its run.
        run_id: String,
    },
    /// An inbox event matched no served workflow; it is marked handled all the same.
    Unmatched {
        /// The event's id.
        event_id: String,
    },
    /// A run left by a stopped process is driven here now.
    Adopted {
        /// The workflow.
        workflow: String,
        /// The run.
        run_id: String,
    },
    /// A run this process drove settled.
    Settled {
        /// The workflow.
        workflow: String,
        /// The run.
        run_id: String,
        /// How it ended.
        status: RunStatus,
    },
    /// Something failed; the next turn tries again.
    Error {
        /// What was being done.
        doing: String,
        /// The error.
        error: String,
    },
}

/// The scheduler: the workflows it serves and the runs it drives.
#[derive(Debug)]
pub struct Daemon {
    runner: Runner,
    workflows: Vec<Scheduled>,
    /// The last tick decided, per workflow, as recorded in the store.
    last: HashMap<String, u64>,
    /// Runs driven here, with their workflow.
    driving: Vec<(String, String)>,
}

impl Daemon {
    /// A scheduler of `workflows` over `runner`'s database.
    pub fn new(runner: Runner, workflows: Vec<Scheduled>) -> Self {
        Self {
            runner,
            workflows,
            last: HashMap::new(),
            driving: Vec::new(),
        }
    }

    /// The runner (and its database).
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    /// The runs driven here that have not settled yet.
    pub fn driving(&self) -> Vec<String> {
        self.driving.iter().map(|(run, _)| run.clone()).collect()
    }

    /// Take over the runs of the served workflows that no live process drives (left by
    /// a scheduler or a runner that stopped): each is recovered as `aloft resume` does
    /// and driven here.
    pub async fn adopt(&mut self) -> Result<Vec<Event>, EngineError> {
        let mut events = Vec::new();
        let names: Vec<String> = self.workflows.iter().map(|w| w.name().to_owned()).collect();
        for workflow in names {
            let active = self.runner.db().active_runs(&workflow).await?;
            for run in active.unwrap_or_default() {
                if self.is_driving(&run.id) || claim_driver(self.runner.db(), &run.id)?.is_some() {
                    continue;
                }
                self.runner.recover(&run.id).await?;
                info!(workflow = %workflow, run_id = %run.id, "run adopted");
                self.driving.push((run.id.clone(), workflow.clone()));
                events.push(Event::Adopted {
                    workflow: workflow.clone(),
                    run_id: run.id,
                });
            }
        }
        Ok(events)
    }

    /// Serve until `shutdown` completes: fire ticks on time and drive the runs started.
    /// On shutdown the runs still going stay saved in the store: the next `serve` (or
    /// `aloft resume RUN`) picks them up. Every step is logged through `on_event`.
    pub async fn run(
        &mut self,
        shutdown: impl Future<Output = ()>,
        on_event: &mut dyn FnMut(&Event),
    ) -> Result<(), EngineError> {
        let mut shutdown = std::pin::pin!(shutdown);
        loop {
            let (busy, events) = self.turn().await;
            events.iter().for_each(&mut *on_event);
            let stop = tokio::select! {
                biased;
                () = &mut shutdown => true,
                () = std::future::ready(()) => false,
            };
            if stop {
                break;
            }
            if busy {
                continue;
            }
            let failed = events.iter().any(|e| matches!(e, Event::Error { .. }));
            let until = if failed {
                // Whatever failed is tried again after a pause, not in a tight loop.
                let now = self.runner.engine().clock().now();
                now.saturating_add(POLL_MS)
            } else {
                self.next_look()
            };
            let stop = tokio::select! {
                biased;
                () = &mut shutdown => true,
                waited = self.runner.wait_until(until) => {
                    if let Err(error) = waited {
                        on_event(&Event::Error { doing: "waiting".into(), error: error.to_string() });
                    }
                    false
                }
            };
            if stop {
                break;
            }
        }
        for (run_id, _) in &self.driving {
            self.runner.let_go(run_id)?;
        }
        Ok(())
    }

    /// One turn: fire what is due, start the runs of inbox events, release waiting runs,
    /// step the runs driven here. True when it handled messages or a full batch of events
    /// (another turn may have more to do at once).
    pub async fn turn(&mut self) -> (bool, Vec<Event>) {
        let mut events = Vec::new();
        for index in 0..self.workflows.len() {
            if let Err(error) = self.fire_due(index, &mut events).await {
                let doing = format!("firing the ticks of {}", self.workflows[index].name());
                events.push(Event::Error {
                    doing,
                    error: error.to_string(),
                });
            }
        }
        let more_events = self.take_events(&mut events).await;
        let names: Vec<String> = self.workflows.iter().map(|w| w.name().to_owned()).collect();
        for workflow in names {
            self.wake(&workflow, &mut events).await;
        }
        let busy = match self.step_runs(&mut events).await {
            Ok(handled) => handled > 0 || more_events,
            Err(error) => {
                events.push(Event::Error {
                    doing: "driving runs".into(),
                    error: error.to_string(),
                });
                more_events
            }
        };
        (busy, events)
    }

    /// Start the runs of the events waiting in the inbox and drive them here. True when
    /// it took a full batch: more may be waiting.
    async fn take_events(&mut self, events: &mut Vec<Event>) -> bool {
        let pending = match self.runner.db().pending_events(EVENTS_PER_TURN) {
            Ok(pending) => pending,
            Err(error) => {
                events.push(Event::Error {
                    doing: "reading the event inbox".into(),
                    error: error.to_string(),
                });
                return false;
            }
        };
        let full = pending.len() == EVENTS_PER_TURN;
        for pending in pending {
            let runs = match self.take_event(&pending, events).await {
                Ok(runs) => runs,
                Err(error) => {
                    events.push(Event::Error {
                        doing: format!("starting the runs of event {}", pending.id),
                        error: error.to_string(),
                    });
                    continue;
                }
            };
            for (workflow, run_id, created) in runs {
                if let Err(error) = self.take_over(&workflow, run_id.clone(), created).await {
                    events.push(Event::Error {
                        doing: format!("driving run {run_id}"),
                        error: error.to_string(),
                    });
                }
            }
        }
        full
    }

    /// Start the run of every served workflow the event matches and mark the event
    /// handled, all or nothing; the runs it has now: workflow, run, whether created.
    async fn take_event(
        &self,
        pending: &Pending,
        events: &mut Vec<Event>,
    ) -> Result<Vec<(String, String, bool)>, EngineError> {
        // The inbox keeps only events with an id, so the key is always there.
        let key = run_key(&pending.event).unwrap_or_else(|_| format!("event:{}", pending.id));
        let db = self.runner.db();
        db.begin()?;
        let mut taken = Vec::new();
        let result = async {
            for served in &self.workflows {
                taken.extend(self.trigger_one(served, pending, &key).await?);
            }
            db.mark_event_handled(&pending.id)?;
            Ok::<_, EngineError>(())
        }
        .await;
        if let Err(error) = result.and_then(|()| Ok(db.commit()?)) {
            db.rollback();
            return Err(error);
        }
        let matched = taken.iter().any(|e| !matches!(e, Event::Error { .. }));
        if !matched {
            info!(event_id = %pending.id, "event matched no workflow");
            taken.push(Event::Unmatched {
                event_id: pending.id.clone(),
            });
        }
        let mut runs = Vec::new();
        for event in taken {
            if let Event::Triggered {
                workflow, started, ..
            } = &event
                && !matches!(started.admission, Admission::Skipped { .. })
            {
                runs.push((workflow.clone(), started.run_id.clone(), started.created));
            }
            events.push(event);
        }
        Ok(runs)
    }

    /// Start the workflow's run for an event if one of its triggers matches, inside a
    /// savepoint: an event whose run already ran is reported, not an error. An event
    /// the workflow's patterns cannot read is reported and matches nothing.
    async fn trigger_one(
        &self,
        served: &Scheduled,
        pending: &Pending,
        key: &str,
    ) -> Result<Option<Event>, EngineError> {
        let workflow = served.name().to_owned();
        let event_id = pending.id.clone();
        let request = match served.event_request(&pending.event, key) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(None),
            Err(error) => {
                return Ok(Some(Event::Error {
                    doing: format!("matching event {event_id} to {workflow}"),
                    error: error.to_string(),
                }));
            }
        };
        let db = self.runner.db();
        db.savepoint("event")?;
        match self.runner.engine().trigger(request).await {
            Ok(started) => {
                db.release_savepoint("event")?;
                info!(workflow = %workflow, event_id = %event_id, run_id = %started.run_id, admission = ?started.admission, "event triggered");
                Ok(Some(Event::Triggered {
                    event_id,
                    workflow,
                    started,
                }))
            }
            Err(EngineError::KeyConflict { run_id, .. }) => {
                db.rollback_savepoint("event")?;
                Ok(Some(Event::AlreadyTriggered {
                    event_id,
                    workflow,
                    run_id,
                }))
            }
            Err(error) => {
                db.rollback_savepoint("event")?;
                Err(error)
            }
        }
    }

    /// Fire the due ticks of one workflow and record its new last tick, in one
    /// transaction.
    async fn fire_due(&mut self, index: usize, events: &mut Vec<Event>) -> Result<(), EngineError> {
        if !self.workflows[index].has_schedule() {
            return Ok(());
        }
        let name = self.workflows[index].name().to_owned();
        let now = self.runner.engine().clock().now();
        let Some(last) = self.last_tick(&name, now, events).await? else {
            return Ok(());
        };
        let served = &self.workflows[index];
        let Some((schedule, zone)) = &served.schedule else {
            return Ok(());
        };
        let due = ticks::due(
            schedule,
            zone,
            served.catchup(),
            instant(last),
            instant(now),
        );
        let decided = millis(due.last);
        if decided == last && due.fire.is_empty() {
            return Ok(());
        }
        let started = self.fire(index, &due.fire, decided, events).await?;
        self.last.insert(name.clone(), decided);
        if let Some(first) = due.passed_over {
            info!(workflow = %name, first = %first, made_up = due.fire.len(), "missed ticks passed over");
            events.push(Event::PassedOver {
                workflow: name.clone(),
                first: millis(first),
                made_up: due.fire.len(),
            });
        }
        for (run_id, created) in started {
            self.take_over(&name, run_id, created).await?;
        }
        Ok(())
    }

    /// The workflow's last tick decided; `None` when it is served for the first time,
    /// after recording `now` as its last tick.
    async fn last_tick(
        &mut self,
        workflow: &str,
        now: u64,
        events: &mut Vec<Event>,
    ) -> Result<Option<u64>, EngineError> {
        if let Some(last) = self.last.get(workflow) {
            return Ok(Some(*last));
        }
        if let Some(last) = self.runner.db().last_tick(workflow).await? {
            self.last.insert(workflow.to_owned(), last);
            return Ok(Some(last));
        }
        let db = self.runner.db();
        db.begin()?;
        if let Err(error) = db.record_tick(workflow, now).await {
            db.rollback();
            return Err(error.into());
        }
        db.commit()?;
        info!(
            workflow,
            "workflow served for the first time: its ticks count from now"
        );
        events.push(Event::FirstServed {
            workflow: workflow.to_owned(),
            since: now,
        });
        self.last.insert(workflow.to_owned(), now);
        Ok(None)
    }

    /// Drive a run here unless it is already, or a live process drives it. A run this
    /// process did not create (a tick fired by another scheduler that stopped) is first
    /// recovered as `aloft resume` does.
    async fn take_over(
        &mut self,
        workflow: &str,
        run_id: String,
        created: bool,
    ) -> Result<(), EngineError> {
        if self.is_driving(&run_id) || claim_driver(self.runner.db(), &run_id)?.is_some() {
            return Ok(());
        }
        if !created {
            self.runner.recover(&run_id).await?;
        }
        self.driving.push((run_id, workflow.to_owned()));
        Ok(())
    }

    /// Start the runs of `fire` and record `decided`, all or nothing; the runs the ticks
    /// have now, each with whether it was created.
    async fn fire(
        &self,
        index: usize,
        fire: &[Timestamp],
        decided: u64,
        events: &mut Vec<Event>,
    ) -> Result<Vec<(String, bool)>, EngineError> {
        let served = &self.workflows[index];
        let db = self.runner.db();
        db.begin()?;
        let mut fired = Vec::new();
        let result = async {
            for tick in fire {
                fired.push(self.fire_one(served, *tick).await?);
            }
            db.record_tick(served.name(), decided).await?;
            Ok::<_, EngineError>(())
        }
        .await;
        if let Err(error) = result.and_then(|()| Ok(db.commit()?)) {
            db.rollback();
            return Err(error);
        }
        let mut runs = Vec::new();
        for event in fired {
            if let Event::Fired { started, .. } = &event
                && !matches!(started.admission, Admission::Skipped { .. })
            {
                runs.push((started.run_id.clone(), started.created));
            }
            events.push(event);
        }
        Ok(runs)
    }

    /// Start the run of one tick, inside a savepoint: a tick whose run already ran is
    /// reported, not an error.
    async fn fire_one(&self, served: &Scheduled, tick: Timestamp) -> Result<Event, EngineError> {
        let db = self.runner.db();
        let workflow = served.name().to_owned();
        db.savepoint("tick")?;
        match self.runner.engine().trigger(served.request(tick)).await {
            Ok(started) => {
                db.release_savepoint("tick")?;
                info!(workflow = %workflow, tick = %tick, run_id = %started.run_id, admission = ?started.admission, "schedule tick fired");
                Ok(Event::Fired {
                    workflow,
                    tick: millis(tick),
                    started,
                })
            }
            Err(EngineError::KeyConflict { run_id, .. }) => {
                db.rollback_savepoint("tick")?;
                Ok(Event::AlreadyFired {
                    workflow,
                    tick: millis(tick),
                    run_id,
                })
            }
            Err(error) => {
                db.rollback_savepoint("tick")?;
                Err(error)
            }
        }
    }

    /// Release the workflow's waiting run if it may go; drive it here unless a live
    /// process drives it.
    async fn wake(&mut self, workflow: &str, events: &mut Vec<Event>) {
        match self.runner.wake_buffered(workflow).await {
            Ok(Some(run_id)) if !self.is_driving(&run_id) => {
                match claim_driver(self.runner.db(), &run_id) {
                    Ok(None) => self.driving.push((run_id, workflow.to_owned())),
                    Ok(Some(_)) => {}
                    Err(error) => events.push(Event::Error {
                        doing: format!("driving run {run_id}"),
                        error: error.to_string(),
                    }),
                }
            }
            Ok(_) => {}
            Err(error) => events.push(Event::Error {
                doing: format!("releasing the waiting run of {workflow}"),
                error: error.to_string(),
            }),
        }
    }

    /// Step every run driven here; drop the ones that settled. Returns the messages
    /// handled.
    async fn step_runs(&mut self, events: &mut Vec<Event>) -> Result<usize, EngineError> {
        let mut handled = 0;
        for (run_id, _) in self.driving.clone() {
            handled += self.runner.step(&run_id).await?.handled;
        }
        let mut settled = Vec::new();
        for (run_id, workflow) in &self.driving {
            if let Some(run) = self.runner.db().run(run_id).await?
                && run.status.is_settled()
            {
                settled.push((run_id.clone(), workflow.clone(), run.status));
            }
        }
        for (run_id, workflow, status) in settled {
            self.runner.let_go(&run_id)?;
            self.driving.retain(|(id, _)| *id != run_id);
            events.push(Event::Settled {
                workflow: workflow.clone(),
                run_id,
                status,
            });
            self.wake(&workflow, events).await;
        }
        Ok(handled)
    }

    /// When to look again: the next tick of any workflow or the next message due of a
    /// run driven here, and at most [`POLL_MS`] from now.
    fn next_look(&self) -> u64 {
        let now = self.runner.engine().clock().now();
        let mut until = now.saturating_add(POLL_MS);
        for served in &self.workflows {
            let after = self.last.get(served.name()).copied().unwrap_or(now);
            if let Some(tick) = served.next_after(after) {
                until = until.min(tick);
            }
        }
        for (run_id, _) in &self.driving {
            if let Ok(Some(at)) = next_visible(self.runner.db(), run_id) {
                until = until.min(at);
            }
        }
        until
    }

    fn is_driving(&self, run_id: &str) -> bool {
        self.driving.iter().any(|(id, _)| id == run_id)
    }
}

/// An instant from ms since the epoch (saturating at the ends of time).
fn instant(ms: u64) -> Timestamp {
    let ms = i64::try_from(ms).unwrap_or(i64::MAX);
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::MAX)
}

/// Ms since the epoch of an instant (0 before 1970).
fn millis(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}
