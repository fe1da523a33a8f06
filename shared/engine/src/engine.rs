//! The engine: its configuration, message routing and the steps shared by handlers.

use std::cell::RefCell;
use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

use tracing::{debug, warn};

use aloft_core::{Definition, RunStatus, TaskState, Workflow};

use crate::message::{Message, Outgoing, TaskKey};
use crate::ports::{
    Applied, Clock, Events, Invoker, Lifecycle, LifecycleKind, NoEvents, PortError, Queue, Store,
    TaskChange,
};
use crate::record::{RunRecord, TaskRecord, WatchLeg};

/// Largest stored task output, in bytes of its compact JSON text.
pub const OUTPUT_LIMIT: usize = aloft_core::OUTPUT_LIMIT;

/// Largest task input document, in bytes of its JSON text. An attempt whose input would
/// be larger fails with kind `payload_too_large` without starting.
pub const INPUT_LIMIT: usize = 6 * 1024 * 1024;

/// A burst of more follow-ups than this at once (a fan-out) is sent rather than handled
/// in place, so that it is handled in parallel by as many handlers as the queue feeds.
pub const INLINE_WIDTH: usize = 10;

tokio::task_local! {
    /// The follow-ups held back while one message is handled (see [`Engine::handle`]).
    static HELD: RefCell<Held>;
}

/// Follow-ups held back for the message being handled.
#[derive(Debug)]
struct Held {
    /// The run of the message being handled: only its follow-ups are held.
    run_id: String,
    /// False once held follow-ups have been sent: from then on nothing is held.
    open: bool,
    messages: VecDeque<Message>,
    /// The run's record as last read by this message's handling, until a write of this
    /// handling may have changed it (see [`Engine::run_record`]).
    run: Option<RunRecord>,
    /// Task records as this handling last read or wrote them (see
    /// [`Engine::task_records`]).
    tasks: HashMap<TaskKey, TaskRecord>,
    /// Tasks (not items) this handling settled by a write of its own that applied (see
    /// [`Engine::unplanned`]).
    settled_here: HashSet<TaskKey>,
    /// True once this handling's write started the run (queued to running): every task
    /// of the run is then known to be unplanned (see [`Engine::unplanned`]).
    started_here: bool,
}

/// Hold back the messages the handler will handle in place; the rest are returned. A
/// burst too wide to handle in place closes the hold, and everything held goes out.
fn hold(held: &mut Held, outgoing: Vec<Outgoing>) -> Vec<Outgoing> {
    if !held.open {
        return outgoing;
    }
    let mut rest = Vec::new();
    for out in outgoing {
        let immediate = out.delay_ms == 0
            && matches!(out.message, Message::Plan { .. } | Message::Dispatch { .. })
            && out.message.run_id() == held.run_id;
        if immediate {
            held.messages.push_back(out.message);
        } else {
            rest.push(out);
        }
    }
    if held.messages.len() > INLINE_WIDTH {
        held.open = false;
        rest.extend(held.messages.drain(..).map(Outgoing::now));
    }
    rest
}

/// Timing knobs of the engine.
#[derive(Clone, Debug)]
pub struct Config {
    /// Longest delay one queue message can carry (SQS: 15 minutes). Longer waits re-arm.
    pub max_queue_delay_ms: u64,
    /// A parked message is also re-checked after this long, in case its wake-up was
    /// lost (a lease that expired, a crash between release and wake-up); later
    /// re-checks back off, doubling, to one per `max_queue_delay_ms`.
    pub park_recheck_ms: u64,
    /// Extra lifetime of a slot lease past the attempt's timeout.
    pub lease_grace_ms: u64,
    /// How many immediate follow-ups of one message (plan and dispatch requests of the
    /// same run, due at once) its handler handles in place instead of sending them: each
    /// one handled in place saves a send, a receive and a delete. 0 sends them all.
    /// See [`Engine::handle`].
    pub inline_follow_ups: usize,
    /// Keep one watchdog per run instead of a timeout check per attempt where it can.
    ///
    /// A run that starts with any task that is not `pass` gets a watchdog: one delayed
    /// message, due at the run's start plus its shortest such timeout (at most one queue
    /// delay), recorded as the run's `watch_at`. When it arrives it times out every
    /// attempt of the run running past its limit and comes back at the earliest
    /// deadline of those still running, or one queue delay later, for as long as the
    /// run has not settled. An attempt whose deadline is no earlier than `watch_at`
    /// (and `watch_at` is more than [`WATCH_MARGIN_MS`] away) is timed by the watchdog,
    /// since the watchdog will see it running; any other attempt still sends its own
    /// check. A short run thus pays for one check, not one per attempt. The store must
    /// implement [`Store::move_watch`]; false sends a check per attempt.
    pub run_watchdog: bool,
    /// Start a task the planner decided to run straight from `waiting`, in the write
    /// that marks it running (or, for `pass`, succeeded), instead of writing it `ready`
    /// first. The planner sends the dispatch without writing; the dispatcher takes a
    /// waiting task at attempt 0 for attempt 1. A planner that stops before the send is
    /// delivered again and decides the same way, since a settled upstream never changes.
    /// A task that must wait for a slot is written `ready` before it waits, so that
    /// `runs show` tells it from tasks whose upstreams are still going.
    pub start_from_waiting: bool,
    /// Put the run's record, less its input, in each task document as `aloft`, so that
    /// a result that comes back with its document (a Lambda destination record carries
    /// it as the request payload) is handled without reading the run.
    ///
    /// The copy is the run as the dispatcher knew it, and it is enough: what a result's
    /// handling needs of the run (workflow, version, input, deadline) does not change
    /// once it runs; its watchdog leg, when still ahead, is still the current one (a
    /// leg moves only when it arrives); its counters of unsettled sinks and failures only
    /// go down, so the copy's are never too low, and the run is settled only on counters
    /// that a write returns. A run stopped meanwhile (deadline, cancel, poison message)
    /// is seen through its tasks: stopping it settles every task it has not settled, and
    /// a start that slips in while it does so is stopped too (see
    /// [`Engine::stop_run_because`]).
    pub document_carries_run: bool,
}

/// How far ahead of the watchdog's next leg an attempt must have been marked running to
/// be left to it, so that the leg's scan, made when it arrives, sees the attempt.
pub const WATCH_MARGIN_MS: u64 = 1_000;

impl Default for Config {
    fn default() -> Self {
        Self {
            max_queue_delay_ms: 15 * 60 * 1000,
            park_recheck_ms: 30_000,
            lease_grace_ms: 60_000,
            inline_follow_ups: 0,
            run_watchdog: false,
            start_from_waiting: false,
            document_carries_run: false,
        }
    }
}

/// Why a handler failed. The message is delivered again when the error is retryable.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A port failed.
    #[error(transparent)]
    Port(#[from] PortError),
    /// A run names a definition version the store does not have.
    #[error("definition version {0} of run {1} is missing from the store")]
    MissingDefinition(String, String),
    /// A stored definition could not be read back.
    #[error("stored definition {0} is unreadable: {1}")]
    BadDefinition(String, String),
    /// A start request reused an idempotency key.
    #[error("idempotency key {key:?} was already used by run {run_id} {reason}")]
    KeyConflict {
        /// The key.
        key: String,
        /// The run that holds it.
        run_id: String,
        /// Why it cannot be reused.
        reason: &'static str,
    },
}

impl EngineError {
    /// True when delivering the message again may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Port(e) if e.retryable)
    }
}

/// The engine over a store, a queue, an invoker, a clock and an event sink.
#[derive(Debug)]
pub struct Engine<S, Q, I, C, E = NoEvents> {
    pub(crate) store: S,
    pub(crate) queue: Q,
    pub(crate) invoker: I,
    pub(crate) clock: C,
    pub(crate) events: E,
    pub(crate) config: Config,
    workflows: Mutex<HashMap<String, Arc<Workflow>>>,
}

impl<S: Store, Q: Queue, I: Invoker, C: Clock> Engine<S, Q, I, C> {
    /// An engine over these ports that publishes no lifecycle events.
    pub fn new(store: S, queue: Q, invoker: I, clock: C, config: Config) -> Self {
        Self {
            store,
            queue,
            invoker,
            clock,
            events: NoEvents,
            config,
            workflows: Mutex::new(HashMap::new()),
        }
    }

    /// The same engine, publishing lifecycle events to `events`.
    pub fn with_events<E: Events>(self, events: E) -> Engine<S, Q, I, C, E> {
        Engine {
            store: self.store,
            queue: self.queue,
            invoker: self.invoker,
            clock: self.clock,
            events,
            config: self.config,
            workflows: self.workflows,
        }
    }
}

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// The store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The invoker.
    pub fn invoker(&self) -> &I {
        &self.invoker
    }

    /// The clock.
    pub fn clock(&self) -> &C {
        &self.clock
    }

    /// Handle one message from any queue.
    ///
    /// With [`Config::inline_follow_ups`] set, the plan and dispatch requests for the
    /// same run that handling it asks for at once are handled here too, in order, up to
    /// that many; whatever is left, or a burst wider than [`INLINE_WIDTH`], is sent as
    /// it would have been. Handling a follow-up in place is safe under the same rule
    /// that makes a crash between two steps safe: the message is deleted only after all
    /// of it is done, and a message delivered again repeats the follow-ups of whatever
    /// it finds already done. A follow-up whose handling fails is sent to its queue, to
    /// be retried there like any message.
    pub async fn handle(&self, message: Message) -> Result<(), EngineError> {
        self.handle_with_run(message, None).await
    }

    /// [`Self::handle`], with the record of the message's run as read just before by
    /// whoever handles a batch of messages of that run, so that each of them does not
    /// read it again (see [`Self::run_record`]). Used only with
    /// [`Config::inline_follow_ups`] set.
    pub async fn handle_with_run(
        &self,
        message: Message,
        run: Option<RunRecord>,
    ) -> Result<(), EngineError> {
        let budget = self.config.inline_follow_ups;
        if budget == 0 {
            return self.handle_one(message).await;
        }
        let run = run.filter(|r| r.id == message.run_id());
        let held = RefCell::new(Held {
            run_id: message.run_id().to_owned(),
            open: true,
            messages: VecDeque::new(),
            run,
            tasks: HashMap::new(),
            settled_here: HashSet::new(),
            started_here: false,
        });
        HELD.scope(held, self.handle_in_place(message, budget))
            .await
    }

    async fn handle_in_place(&self, message: Message, budget: usize) -> Result<(), EngineError> {
        if let Err(error) = self.handle_one(message).await {
            self.release_held(None).await?;
            return Err(error);
        }
        let mut handled = 0;
        while let Some(next) = HELD.with(|h| h.borrow_mut().messages.pop_front()) {
            if handled == budget {
                return Ok(self.release_held(Some(next)).await?);
            }
            handled += 1;
            if let Err(error) = self.handle_one(next.clone()).await {
                warn!(run_id = next.run_id(), %error, "follow-up handled in place failed: sent to its queue");
                return Ok(self.release_held(Some(next)).await?);
            }
        }
        Ok(())
    }

    /// Stop holding follow-ups and send the held ones (after `first`).
    async fn release_held(&self, first: Option<Message>) -> Result<(), PortError> {
        let held: Vec<Outgoing> = HELD.with(|h| {
            let mut h = h.borrow_mut();
            h.open = false;
            first
                .into_iter()
                .chain(h.messages.drain(..))
                .map(Outgoing::now)
                .collect()
        });
        if held.is_empty() {
            return Ok(());
        }
        self.queue.send(held).await
    }

    /// A run's record. While a message and its follow-ups are handled in place, the
    /// record read by an earlier step serves the later ones, until a write of this
    /// handling changes the run (a task settles, the run starts or settles): then it is
    /// read again. What other handlers change meanwhile is no more stale here than in a
    /// record read a moment earlier; every write is still conditional.
    pub(crate) async fn run_record(&self, run_id: &str) -> Result<Option<RunRecord>, PortError> {
        let cached = HELD
            .try_with(|h| h.borrow().run.clone().filter(|r| r.id == run_id))
            .ok()
            .flatten();
        if cached.is_some() {
            return Ok(cached);
        }
        let run = self.store.run(run_id).await?;
        if let Some(run) = &run {
            let _ = HELD.try_with(|h| {
                let mut h = h.borrow_mut();
                if h.run_id == run.id {
                    h.run = Some(run.clone());
                }
            });
        }
        Ok(run)
    }

    /// Keep `run`, a copy the message being handled brought, as the run's record for this
    /// handling, unless one was read already.
    fn offer_run(&self, run: RunRecord) {
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if h.run_id == run.id && h.run.is_none() {
                h.run = Some(run);
            }
        });
    }

    /// Forget the run record kept for this handling: a write may have changed it.
    pub(crate) fn forget_run(&self) {
        let _ = HELD.try_with(|h| h.borrow_mut().run = None);
    }

    /// Apply a task change. Settling a sink, or a failure, changes the run's counters
    /// (see [`TaskChange::sink`]).
    pub(crate) async fn update_task(
        &self,
        run_id: &str,
        change: &TaskChange,
    ) -> Result<Applied, PortError> {
        let counted = change.sink || change.to.is_failure();
        if change.key.item.is_none() && change.to.is_settled() && counted {
            self.forget_run();
        }
        let applied = self.store.update_task(run_id, change).await?;
        if applied.applied {
            if change.to.is_settled() && change.key.item.is_none() {
                let _ = HELD.try_with(|h| {
                    let mut h = h.borrow_mut();
                    if h.run_id == run_id {
                        h.settled_here.insert(change.key.clone());
                    }
                });
            }
            self.remember_change(run_id, change);
        } else {
            // Somebody else changed it: what this handling knew of it is stale.
            let _ = HELD.try_with(|h| h.borrow_mut().tasks.remove(&change.key));
        }
        Ok(applied)
    }

    /// Send messages, holding back those the message being handled will handle in place
    /// (see [`Self::handle`]).
    pub(crate) async fn send(&self, mut outgoing: Vec<Outgoing>) -> Result<(), PortError> {
        if let Ok(rest) =
            HELD.try_with(|h| hold(&mut h.borrow_mut(), std::mem::take(&mut outgoing)))
        {
            outgoing = rest;
        }
        if outgoing.is_empty() {
            return Ok(());
        }
        self.queue.send(outgoing).await
    }

    async fn handle_one(&self, message: Message) -> Result<(), EngineError> {
        // Each handler's future lives on the heap: they nest deeply (a dispatch that
        // finishes a `pass` task settles it and plans its dependents), and unoptimised
        // builds would otherwise carry all of it on the stack of whatever polls them.
        match message {
            Message::Plan { run_id, settled } => Box::pin(self.plan(&run_id, &settled)).await,
            Message::Dispatch {
                run_id,
                key,
                attempt,
            } => Box::pin(self.dispatch(&run_id, &key, attempt)).await,
            Message::Complete {
                run_id,
                key,
                attempt,
                outcome,
                ended_at,
                started_at,
                run,
            } => {
                if let Some(run) = run {
                    self.offer_run(*run);
                }
                let times = (started_at, ended_at);
                Box::pin(self.complete(&run_id, &key, attempt, outcome, times)).await
            }
            Message::TimeoutCheck {
                run_id,
                key,
                attempt,
                due_at,
            } => Box::pin(self.timeout_check(&run_id, &key, attempt, due_at)).await,
            Message::DeadlineCheck { run_id, due_at } => {
                Box::pin(self.deadline_check(&run_id, due_at)).await
            }
            Message::Watch { run_id, at, leg } => {
                Box::pin(self.watch(&run_id, WatchLeg { at, leg })).await
            }
        }
    }

    /// The compiled workflow of a run's definition version, cached.
    pub async fn workflow(&self, run: &RunRecord) -> Result<Arc<Workflow>, EngineError> {
        let version = run.version.as_str();
        if let Some(found) = self.cached(version) {
            return Ok(found);
        }
        let missing = || EngineError::MissingDefinition(version.to_owned(), run.id.clone());
        let json = self
            .store
            .definition(&run.workflow, version)
            .await?
            .ok_or_else(missing)?;
        let definition: Definition = serde_json::from_str(&json)
            .map_err(|e| EngineError::BadDefinition(version.to_owned(), e.to_string()))?;
        let compiled = Arc::new(Workflow::compile(definition));
        self.lock_cache()
            .insert(version.to_owned(), compiled.clone());
        Ok(compiled)
    }

    fn cached(&self, version: &str) -> Option<Arc<Workflow>> {
        self.lock_cache().get(version).cloned()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Arc<Workflow>>> {
        // The cache holds only immutable compiled definitions, so a poisoned lock still
        // guards consistent data.
        self.workflows
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Publish one lifecycle event about `run`; a failure is logged, not returned.
    pub(crate) async fn announce(
        &self,
        run: &RunRecord,
        kind: LifecycleKind,
        status: &str,
        task: Option<(&TaskKey, u32)>,
        reason: Option<String>,
    ) {
        let tags = self
            .cached(&run.version)
            .map(|w| w.definition.tags.clone())
            .unwrap_or_default();
        let event = Lifecycle {
            kind,
            workflow: run.workflow.clone(),
            version: run.version.clone(),
            run_id: run.id.clone(),
            status: status.to_owned(),
            task: task.map(|(key, _)| key.to_string()),
            attempt: task.map(|(_, attempt)| attempt),
            reason,
            tags,
            at: self.clock.now(),
        };
        if let Err(error) = self.events.publish(vec![event]).await {
            warn!(run_id = %run.id, event = kind.detail_type(), %error, "lifecycle event not published");
        }
    }

    /// Send `message` after `delay_ms`, re-armed in steps no longer than the queue allows.
    pub(crate) fn delayed(&self, message: Message, delay_ms: u64) -> Outgoing {
        Outgoing::after(message, delay_ms.min(self.config.max_queue_delay_ms))
    }

    /// One task's record, if it exists.
    pub(crate) async fn task_record(
        &self,
        run_id: &str,
        key: &TaskKey,
    ) -> Result<Option<TaskRecord>, EngineError> {
        Ok(self
            .task_records(run_id, std::slice::from_ref(key))
            .await?
            .pop())
    }

    /// Tasks' records, in the order of `keys` (missing ones left out). While a message
    /// and its follow-ups are handled in place, a record this handling already read or
    /// wrote in a settled state is not read again: a settled task never changes.
    pub(crate) async fn task_records(
        &self,
        run_id: &str,
        keys: &[TaskKey],
    ) -> Result<Vec<TaskRecord>, EngineError> {
        let known = self.known_tasks(run_id, keys, |r| r.state.is_settled());
        if known.len() == keys.len() {
            return Ok(known);
        }
        let missing: Vec<TaskKey> = keys
            .iter()
            .filter(|k| !known.iter().any(|r| &r.key == *k))
            .cloned()
            .collect();
        let read = self.store.tasks(run_id, &missing).await?;
        self.remember_tasks(run_id, &read);
        let mut found: Vec<TaskRecord> = known.into_iter().chain(read).collect();
        found.sort_by_key(|r| keys.iter().position(|k| *k == r.key));
        Ok(found)
    }

    /// The record of the task a dispatch is about: as this handling last wrote it (a
    /// planner that just made it ready), if it did. A later change by another handler
    /// makes the dispatch's conditional writes fail, as a record read a moment earlier
    /// would.
    pub(crate) async fn dispatched_record(
        &self,
        run_id: &str,
        key: &TaskKey,
    ) -> Result<Option<TaskRecord>, EngineError> {
        if let Some(record) = self
            .known_tasks(run_id, std::slice::from_ref(key), |_| true)
            .pop()
        {
            return Ok(Some(record));
        }
        self.task_record(run_id, key).await
    }

    /// The records of `keys` this handling knows and `usable` accepts.
    fn known_tasks(
        &self,
        run_id: &str,
        keys: &[TaskKey],
        usable: impl Fn(&TaskRecord) -> bool,
    ) -> Vec<TaskRecord> {
        HELD.try_with(|h| {
            let h = h.borrow();
            if h.run_id != run_id {
                return Vec::new();
            }
            keys.iter()
                .filter_map(|k| h.tasks.get(k))
                .filter(|r| usable(r))
                .cloned()
                .collect()
        })
        .unwrap_or_default()
    }

    fn remember_tasks(&self, run_id: &str, records: &[TaskRecord]) {
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if h.run_id == run_id {
                for record in records {
                    h.tasks.insert(record.key.clone(), record.clone());
                }
            }
        });
    }

    /// Note that this handling's write started run `run_id`: no task of it can have been
    /// planned before, since a run is planned only once it runs.
    pub(crate) fn note_started_here(&self, run_id: &str) {
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if h.run_id == run_id {
                h.started_here = true;
            }
        });
    }

    /// The records of the tasks among `keys` that are known to be unplanned (waiting at
    /// attempt 0) without reading them: every task of a run this handling started (see
    /// [`Self::note_started_here`]), and those with an upstream this handling settled
    /// itself. A task is planned only once all its upstreams have settled, and that one
    /// settled just now, so nobody can have planned it before; anybody planning it
    /// since (a duplicate of this message) races through the same conditional writes
    /// as after a read made a moment earlier. A run stopped meanwhile has skipped it:
    /// the conditional writes find that too. The records are remembered for the rest of
    /// the handling (the dispatch that starts the task takes it from there).
    pub(crate) fn unplanned(
        &self,
        run_id: &str,
        keys: &[(TaskKey, Vec<TaskKey>)],
    ) -> Vec<TaskRecord> {
        HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if h.run_id != run_id {
                return Vec::new();
            }
            let mut found = Vec::new();
            for (key, upstream) in keys {
                let fresh = h.started_here || upstream.iter().any(|u| h.settled_here.contains(u));
                if !fresh || key.item.is_some() {
                    continue;
                }
                match h.tasks.get(key) {
                    // Read (or written) by this handling: as it was then, unless this
                    // handling has moved it since.
                    Some(known) if known.state == TaskState::Waiting && known.attempt == 0 => {
                        found.push(known.clone());
                    }
                    Some(_) => {}
                    None => {
                        let record = TaskRecord::waiting(key.clone());
                        h.tasks.insert(key.clone(), record.clone());
                        found.push(record);
                    }
                }
            }
            found
        })
        .unwrap_or_default()
    }

    /// Remember the record of a task this handling just settled with `change` without
    /// having read it (a result for a plain task: not an item, not a `for_each`), so
    /// that planning its dependents and reading their input do not read it back. A
    /// settled task never changes, and what the dependents use of it (state, output)
    /// is all in the change.
    pub(crate) fn remember_settled(&self, run_id: &str, change: &TaskChange) {
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if h.run_id != run_id || !change.to.is_settled() || change.key.item.is_some() {
                return;
            }
            h.tasks
                .entry(change.key.clone())
                .or_insert_with(|| TaskRecord {
                    state: change.to,
                    attempt: change.new_attempt,
                    started_at: change.started_at,
                    ended_at: change.ended_at,
                    output: change.output.clone(),
                    failure: change.failure.clone(),
                    ..TaskRecord::waiting(change.key.clone())
                });
        });
    }

    /// Bring a remembered record up to date with a change this handling made.
    fn remember_change(&self, run_id: &str, change: &TaskChange) {
        let _ = HELD.try_with(|h| {
            let mut h = h.borrow_mut();
            if h.run_id != run_id {
                return;
            }
            if let Some(record) = h.tasks.get_mut(&change.key) {
                record.state = change.to;
                record.attempt = change.new_attempt;
                if let Some(at) = change.not_before {
                    record.not_before = at;
                }
                if change.started_at.is_some() {
                    record.started_at = change.started_at;
                }
                if change.ended_at.is_some() {
                    record.ended_at = change.ended_at;
                }
                if change.output.is_some() {
                    record.output.clone_from(&change.output);
                }
                if change.to == TaskState::Succeeded {
                    record.failure = None;
                } else if change.failure.is_some() {
                    record.failure.clone_from(&change.failure);
                }
            }
        });
    }

    /// Release a holder's slots in `scopes` and wake a message parked on each freed one.
    pub(crate) async fn release_slots(
        &self,
        holder: &str,
        scopes: &[String],
    ) -> Result<(), EngineError> {
        if scopes.is_empty() {
            return Ok(());
        }
        let freed = self.store.release(holder, scopes).await?;
        let mut woken = Vec::new();
        for scope in freed {
            if let Some(message) = self.wake_one(&scope).await? {
                woken.push(Outgoing::now(message));
            }
        }
        if !woken.is_empty() {
            self.send(woken).await?;
        }
        Ok(())
    }

    /// Take the oldest message parked on `scope` that still waits. Parked messages whose
    /// task or run has moved on (started by a re-check, stopped with its run) are
    /// dropped here, so that they cannot swallow the wake-up of one that waits.
    async fn wake_one(&self, scope: &str) -> Result<Option<Message>, EngineError> {
        while let Some(message) = self.store.unpark(scope, 1).await?.pop() {
            if self.still_waits(&message).await? {
                return Ok(Some(message));
            }
            debug!(
                scope,
                run_id = message.run_id(),
                "stale parked message dropped"
            );
        }
        Ok(None)
    }

    async fn still_waits(&self, message: &Message) -> Result<bool, EngineError> {
        Ok(match message {
            Message::Dispatch {
                run_id,
                key,
                attempt,
            } => self
                .task_record(run_id, key)
                .await?
                .is_some_and(|r| r.state == TaskState::Ready && r.attempt == *attempt),
            Message::Plan { run_id, .. } => self
                .run_record(run_id)
                .await?
                .is_some_and(|r| r.status == RunStatus::Queued),
            _ => true,
        })
    }
}
