//! The embedded runner: drives one run by receiving its due messages from the SQLite
//! queues and handling them in batches, one transaction per batch.
//!
//! A batch's writes, sends and acknowledgements commit together; starts of processes
//! happen only after the commit. A runner killed at any point therefore leaves either
//! the batch undone (its messages are received again) or done (its starts are found by
//! [`Runner::recover`]).

use std::path::Path;
use std::sync::Arc;

use rusqlite::{OptionalExtension, params};
use tokio::sync::mpsc::{UnboundedReceiver, unbounded_channel};
use tracing::{error, warn};

use aloft_core::RunStatus;
use aloft_core::definition::{Overlap, RunSpec};
use aloft_core::workflow::TaskPlan;
use aloft_engine::message::{Message, Outgoing};
use aloft_engine::overlap::buffer_scope;
use aloft_engine::ports::{Clock, Invoker, Job, Queue, Store};
use aloft_engine::record::{RunRecord, TaskRecord};
use aloft_engine::{Config, Engine, EngineError, StartRequest, Started};

use crate::db::{DbError, Sqlite, port_error};
use crate::files::AttemptFiles;
use crate::invoker::LocalInvoker;
use crate::process;

/// The engine over the embedded ports.
pub type LocalEngine<I = LocalInvoker> = Engine<Sqlite, Sqlite, I, Arc<dyn Clock>>;

/// An invoker whose starts wait for the runner's commit: the runner flushes them after
/// the transaction that moved their tasks to running, and discards them if it rolled
/// back.
pub trait DeferredInvoker: Invoker {
    /// How many starts are waiting.
    fn pending(&self) -> usize;
    /// Forget the starts recorded after the first `keep`.
    fn discard_after(&self, keep: usize);
    /// Start everything recorded.
    fn flush(&self);
}

/// Most messages handled in one transaction.
const BATCH: usize = 2048;

/// A message that fails this many times is dropped and its run failed.
const MAX_RECEIVES: u32 = 5;

/// Longest idle wait before looking at the queues again (other processes may have
/// woken a parked message of this run).
const IDLE_POLL_MS: u64 = 100;

/// The embedded backend: database, invoker and engine, driving runs in this process.
pub struct Runner<I = LocalInvoker> {
    engine: LocalEngine<I>,
    completions: UnboundedReceiver<Message>,
}

impl<I: DeferredInvoker> std::fmt::Debug for Runner<I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("db", self.engine.store())
            .finish_non_exhaustive()
    }
}

/// What one step did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct StepReport {
    /// Messages handled.
    pub handled: usize,
}

impl Runner<LocalInvoker> {
    /// Open the database at `path` and build the engine over it.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        Ok(Self::over(Sqlite::open(path, clock)?))
    }

    /// Open an existing database only to read runs from it.
    pub fn open_read_only(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        Ok(Self::over(Sqlite::open_read_only(path, clock)?))
    }

    fn over(db: Sqlite) -> Self {
        let (sender, completions) = unbounded_channel();
        let invoker = LocalInvoker::new(db.files(), sender);
        Self::with_invoker(db, invoker, completions, Config::default())
    }
}

impl<I: DeferredInvoker> Runner<I> {
    /// A runner over an open database and an invoker that reports to `completions`.
    pub fn with_invoker(
        db: Sqlite,
        invoker: I,
        completions: UnboundedReceiver<Message>,
        config: Config,
    ) -> Self {
        let clock = db.clock().clone();
        let engine = Engine::new(db.clone(), db, invoker, clock, config);
        Self {
            engine,
            completions,
        }
    }

    /// The database.
    pub fn db(&self) -> &Sqlite {
        self.engine.store()
    }

    /// The engine.
    pub fn engine(&self) -> &LocalEngine<I> {
        &self.engine
    }

    /// Create a run (or find the one its idempotency key names), under the workflow's
    /// overlap policy.
    pub async fn start(&self, request: StartRequest) -> Result<Started, EngineError> {
        self.start_with(request, None).await
    }

    /// [`Self::start`] under the overlap policy `overlap` (`None`: the workflow's). The
    /// policy's look at the runs going and the start are one transaction.
    pub async fn start_with(
        &self,
        request: StartRequest,
        overlap: Option<Overlap>,
    ) -> Result<Started, EngineError> {
        self.db().begin()?;
        match self.engine.trigger_with_overlap(request, overlap).await {
            Ok(started) => {
                self.db().commit()?;
                Ok(started)
            }
            Err(error) => {
                self.db().rollback();
                Err(error)
            }
        }
    }

    /// Start the workflow's waiting `buffer_one` run if every run before it has settled;
    /// its id when it was released.
    pub async fn wake_buffered(&self, workflow: &str) -> Result<Option<String>, EngineError> {
        self.db().begin()?;
        match self.engine.wake_buffered(workflow).await {
            Ok(woken) => {
                self.db().commit()?;
                Ok(woken)
            }
            Err(error) => {
                self.db().rollback();
                Err(error)
            }
        }
    }

    /// After a run settled, or while one waits: release the waiting run of its
    /// workflow if it may go now. A failure is logged; the next look tries again.
    async fn wake_after(&self, workflow: &str) {
        if let Err(error) = self.wake_buffered(workflow).await {
            warn!(workflow, %error, "waiting run not released, will look again");
        }
    }

    /// Stop being the driver of a run (it settled, or this process stops).
    pub fn let_go(&self, run_id: &str) -> Result<(), EngineError> {
        release_driver(self.db(), run_id)
    }

    /// Wait until the clock reads `until` (at most), or an attempt finishes.
    pub async fn wait_until(&mut self, until: u64) -> Result<(), EngineError> {
        let wait = until.saturating_sub(self.engine.clock().now());
        tokio::select! {
            finished = self.completions.recv() => {
                if let Some(message) = finished {
                    self.enqueue(vec![Outgoing::now(message)]).await?;
                }
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
        Ok(())
    }

    /// Drive a run until it settles, calling `progress` after every step that did work.
    pub async fn drive(
        &mut self,
        run_id: &str,
        progress: &mut dyn FnMut(&Sqlite),
    ) -> Result<RunRecord, EngineError> {
        let mut last_beat = 0;
        loop {
            let now = self.engine.clock().now();
            if now.saturating_sub(last_beat) >= DRIVER_BEAT_MS {
                heartbeat(self.db(), run_id, now)?;
                last_beat = now;
                if let Some(run) = self.engine.store().run(run_id).await?
                    && run.status == RunStatus::Queued
                {
                    // A `buffer_one` run whose predecessors' drivers are gone.
                    self.wake_after(&run.workflow).await;
                }
            }
            let report = self.step(run_id).await?;
            if report.handled > 0 {
                progress(self.db());
            }
            let run = self.engine.store().run(run_id).await?;
            match run {
                Some(run) if run.status.is_settled() => {
                    release_driver(self.db(), run_id)?;
                    self.wake_after(&run.workflow).await;
                    return Ok(run);
                }
                None => {
                    return Err(EngineError::Port(port_error(
                        rusqlite::Error::QueryReturnedNoRows,
                    )));
                }
                Some(_) if report.handled > 0 => continue,
                Some(_) => self.idle(run_id).await?,
            }
        }
    }

    /// Wait until a message of the run is due or an attempt finishes.
    async fn idle(&mut self, run_id: &str) -> Result<(), EngineError> {
        let now = self.engine.clock().now();
        let wait = match next_visible(self.db(), run_id)? {
            Some(at) => at.saturating_sub(now).min(IDLE_POLL_MS),
            None => IDLE_POLL_MS,
        };
        tokio::select! {
            finished = self.completions.recv() => {
                if let Some(message) = finished {
                    self.enqueue(vec![Outgoing::now(message)]).await?;
                }
            }
            () = tokio::time::sleep(std::time::Duration::from_millis(wait)) => {}
        }
        Ok(())
    }

    async fn enqueue(&self, messages: Vec<Outgoing>) -> Result<(), EngineError> {
        self.db().begin()?;
        let sent = self.db().send(messages).await;
        match sent {
            Ok(()) => Ok(self.db().commit()?),
            Err(error) => {
                self.db().rollback();
                Err(error.into())
            }
        }
    }

    /// Handle every message of the run that is due now, in one transaction, then start
    /// the attempts it dispatched.
    pub async fn step(&mut self, run_id: &str) -> Result<StepReport, EngineError> {
        let mut finished = Vec::new();
        while let Ok(message) = self.completions.try_recv() {
            finished.push(Outgoing::now(message));
        }
        let db = self.db().clone();
        db.begin()?;
        let result = self.step_in_transaction(&db, run_id, finished).await;
        match result {
            Ok(report) => {
                db.commit()?;
                self.engine.invoker().flush();
                Ok(report)
            }
            Err(error) => {
                db.rollback();
                self.engine.invoker().discard_after(0);
                Err(error)
            }
        }
    }

    async fn step_in_transaction(
        &self,
        db: &Sqlite,
        run_id: &str,
        finished: Vec<Outgoing>,
    ) -> Result<StepReport, EngineError> {
        if !finished.is_empty() {
            db.send(finished).await?;
        }
        // Messages sent while handling are visible to this transaction at once, so keep
        // receiving until nothing is due or the batch is full: a chain of tasks advances
        // several steps per commit.
        let mut handled = 0;
        while handled < BATCH {
            let now = self.engine.clock().now();
            let due = receive(db, run_id, now, BATCH - handled)?;
            if due.is_empty() {
                break;
            }
            handled += due.len();
            for (ids, message) in coalesce(due) {
                self.handle_one(db, &ids, message).await?;
            }
        }
        Ok(StepReport { handled })
    }

    /// Handle one message inside a savepoint; a failure undoes only its own writes.
    async fn handle_one(
        &self,
        db: &Sqlite,
        ids: &[i64],
        message: Message,
    ) -> Result<(), EngineError> {
        let starts = self.engine.invoker().pending();
        db.savepoint("message")?;
        match self.engine.handle(message.clone()).await {
            Ok(()) => {
                db.release_savepoint("message")?;
                delete(db, ids)
            }
            Err(failure) => {
                db.rollback_savepoint("message")?;
                self.engine.invoker().discard_after(starts);
                self.redeliver_or_drop(db, ids, &message, &failure).await
            }
        }
    }

    async fn redeliver_or_drop(
        &self,
        db: &Sqlite,
        ids: &[i64],
        message: &Message,
        failure: &EngineError,
    ) -> Result<(), EngineError> {
        let receives = bump_receives(db, ids, self.engine.clock().now())?;
        if failure.is_retryable() && receives < MAX_RECEIVES {
            warn!(run_id = message.run_id(), receives, error = %failure, "message failed, will be received again");
            return Ok(());
        }
        error!(run_id = message.run_id(), receives, error = %failure, "message dropped, run failed");
        delete(db, ids)?;
        let now = self.engine.clock().now();
        for from in [RunStatus::Queued, RunStatus::Running] {
            self.engine
                .store()
                .settle_run(message.run_id(), from, RunStatus::Failed, now)
                .await?;
        }
        Ok(())
    }
}

impl Runner<LocalInvoker> {
    /// After the runner of a run was killed: learn how each attempt that was running
    /// ended, follow the ones still running, start the ones never started, and plan
    /// the run again.
    pub async fn recover(&mut self, run_id: &str) -> Result<Option<RunRecord>, EngineError> {
        let Some(run) = self.engine.store().run(run_id).await? else {
            return Ok(None);
        };
        if run.status.is_settled() {
            return Ok(Some(run));
        }
        let workflow = self.engine.workflow(&run).await?;
        let mut finished = Vec::new();
        for task in self.engine.store().all_tasks(run_id).await? {
            if task.state != aloft_core::TaskState::Running || task.items.is_some() {
                continue;
            }
            if let Some(plan) = workflow.task(&task.key.task) {
                finished.extend(self.recover_attempt(&run, plan, &task));
            }
        }
        // A `buffer_one` run waiting for its turn is not planned: it would start at once.
        let waiting = run.status == RunStatus::Queued
            && self
                .engine
                .store()
                .holders(&buffer_scope(&run.workflow))
                .await?
                .contains(&run.id);
        self.enqueue_recovered(run_id, finished, !waiting).await?;
        Ok(Some(run))
    }
}

impl Runner<LocalInvoker> {
    /// Learn how one running attempt ended, or take it over: the completion to handle
    /// now, or `None` when the attempt goes on (followed or started here).
    fn recover_attempt(
        &self,
        run: &RunRecord,
        plan: &TaskPlan,
        task: &TaskRecord,
    ) -> Option<Message> {
        let files = AttemptFiles::new(self.db().files(), &run.id, &task.key, task.attempt);
        let complete = |outcome| Message::Complete {
            run_id: run.id.clone(),
            key: task.key.clone(),
            attempt: task.attempt,
            outcome,
            ended_at: process::ended_at(&files),
            started_at: None,
            run: None,
        };
        if let Some(outcome) =
            process::read_outcome(&files).or_else(|| process::read_result(&files))
        {
            return Some(complete(outcome));
        }
        let lambda_called = matches!(plan.run, RunSpec::Lambda(_)) && files.claim().exists();
        if !files.input().exists() || matches!(plan.run, RunSpec::Pass(_)) || lambda_called {
            // Nothing to start, or a Lambda call that may have been made: it cannot be
            // followed, so the attempt counts as interrupted.
            return Some(complete(process::lost()));
        }
        let job = Job {
            run_id: run.id.clone(),
            workflow: run.workflow.clone(),
            key: task.key.clone(),
            attempt: task.attempt,
            run: plan.run.clone(),
            input: std::fs::read(files.input()).unwrap_or_default(),
            workdir: run.workdir.clone(),
            timeout: plan.timeout,
        };
        let taken = self.engine.invoker().recover(job, files.clone());
        taken
            .err()
            .map(|failure| complete(aloft_engine::Outcome::Failed { failure }))
    }

    /// Queue what a resume learned ahead of every due message, then a full planning.
    async fn enqueue_recovered(
        &self,
        run_id: &str,
        finished: Vec<Message>,
        plan: bool,
    ) -> Result<(), EngineError> {
        let plan: Vec<Outgoing> = plan
            .then(|| {
                Outgoing::now(Message::Plan {
                    run_id: run_id.to_owned(),
                    settled: Vec::new(),
                })
            })
            .into_iter()
            .collect();
        self.db().begin()?;
        let sent = match self.db().send_ahead(finished) {
            Ok(()) => self.db().send(plan).await,
            Err(error) => Err(error),
        };
        match sent {
            Ok(()) => Ok(self.db().commit()?),
            Err(error) => {
                self.db().rollback();
                Err(error.into())
            }
        }
    }
}

/// How often a driving runner says it is alive.
const DRIVER_BEAT_MS: u64 = 5_000;

/// A driver not heard from for this long is gone, whatever its pid now names.
const DRIVER_STALE_MS: u64 = 30_000;

/// Become the one process driving a run, unless another live process is: then its pid.
/// Two runners on one run would be safe (every change is conditional, every attempt
/// claimed) but would split its messages and its output; one drives, others wait.
pub fn claim_driver(db: &Sqlite, run_id: &str) -> Result<Option<u32>, EngineError> {
    let now = db.clock().now();
    let me = std::process::id();
    db.begin()?;
    let current: Option<(u32, u64)> = {
        let conn = db.conn();
        conn.query_row(
            "SELECT pid, seen_at FROM drivers WHERE run_id = ?1",
            [run_id],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()
        .map_err(port_error)?
    };
    let other = current.filter(|&(pid, seen_at)| {
        pid != me && now.saturating_sub(seen_at) < DRIVER_STALE_MS && pid_alive(pid)
    });
    if let Some((pid, _)) = other {
        db.rollback();
        return Ok(Some(pid));
    }
    let claimed = db
        .conn()
        .execute(
            "INSERT OR REPLACE INTO drivers (run_id, pid, seen_at) VALUES (?1, ?2, ?3)",
            params![run_id, me, now],
        )
        .map_err(port_error);
    match claimed {
        Ok(_) => {
            db.commit()?;
            Ok(None)
        }
        Err(error) => {
            db.rollback();
            Err(error.into())
        }
    }
}

fn pid_alive(pid: u32) -> bool {
    i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
        .is_some_and(|pid| rustix::process::test_kill_process(pid).is_ok())
}

fn heartbeat(db: &Sqlite, run_id: &str, now: u64) -> Result<(), EngineError> {
    let conn = db.conn();
    conn.execute(
        "UPDATE drivers SET seen_at = ?3 WHERE run_id = ?1 AND pid = ?2",
        params![run_id, std::process::id(), now],
    )
    .map_err(port_error)?;
    Ok(())
}

fn release_driver(db: &Sqlite, run_id: &str) -> Result<(), EngineError> {
    let conn = db.conn();
    conn.execute(
        "DELETE FROM drivers WHERE run_id = ?1 AND pid = ?2",
        params![run_id, std::process::id()],
    )
    .map_err(port_error)?;
    Ok(())
}

/// Messages of a run due at `now`, oldest first.
fn receive(
    db: &Sqlite,
    run_id: &str,
    now: u64,
    limit: usize,
) -> Result<Vec<(i64, Message)>, EngineError> {
    let conn = db.conn();
    let mut select = conn
        .prepare_cached(
            "SELECT id, body FROM messages WHERE run_id = ?1 AND visible_at <= ?2 \
             ORDER BY visible_at, id LIMIT ?3",
        )
        .map_err(port_error)?;
    let rows = select
        .query_map(params![run_id, now, limit as i64], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, String>(1)?))
        })
        .map_err(port_error)?;
    let mut due = Vec::new();
    for row in rows {
        let (id, body) = row.map_err(port_error)?;
        match serde_json::from_str(&body) {
            Ok(message) => due.push((id, message)),
            Err(e) => {
                error!(run_id, message_id = id, error = %e, "unreadable message dropped");
                conn.execute("DELETE FROM messages WHERE id = ?1", [id])
                    .map_err(port_error)?;
            }
        }
    }
    Ok(due)
}

/// Merge the plan messages of a batch into one: planning the union of what settled is
/// what planning each would do, and a fan-in then reads its upstreams once per batch.
fn coalesce(due: Vec<(i64, Message)>) -> Vec<(Vec<i64>, Message)> {
    let mut out: Vec<(Vec<i64>, Message)> = Vec::with_capacity(due.len());
    let mut plan_at: Option<usize> = None;
    for (id, message) in due {
        match (message, plan_at) {
            (Message::Plan { settled, .. }, Some(at)) => {
                let (ids, merged) = &mut out[at];
                ids.push(id);
                if let Message::Plan { settled: all, .. } = merged {
                    merge_settled(all, settled);
                }
            }
            (message @ Message::Plan { .. }, None) => {
                plan_at = Some(out.len());
                out.push((vec![id], message));
            }
            (message, _) => out.push((vec![id], message)),
        }
    }
    out
}

/// An empty list means "every task", which absorbs any other list.
fn merge_settled(all: &mut Vec<String>, more: Vec<String>) {
    if all.is_empty() || more.is_empty() {
        all.clear();
    } else {
        all.extend(more);
    }
}

fn delete(db: &Sqlite, ids: &[i64]) -> Result<(), EngineError> {
    let conn = db.conn();
    let mut delete = conn
        .prepare_cached("DELETE FROM messages WHERE id = ?1")
        .map_err(port_error)?;
    for id in ids {
        delete.execute([id]).map_err(port_error)?;
    }
    Ok(())
}

fn bump_receives(db: &Sqlite, ids: &[i64], now: u64) -> Result<u32, EngineError> {
    let conn = db.conn();
    let mut most = 0;
    for id in ids {
        let receives: u32 = conn
            .query_row(
                "UPDATE messages SET receives = receives + 1, visible_at = ?2 + 1000 * (receives + 1) \
                 WHERE id = ?1 RETURNING receives",
                params![id, now],
                |r| r.get(0),
            )
            .map_err(port_error)?;
        most = most.max(receives);
    }
    Ok(most)
}

/// When the next message of a run becomes due.
pub fn next_visible(db: &Sqlite, run_id: &str) -> Result<Option<u64>, EngineError> {
    let conn = db.conn();
    conn.query_row(
        "SELECT min(visible_at) FROM messages WHERE run_id = ?1",
        [run_id],
        |r| r.get(0),
    )
    .map_err(|e| port_error(e).into())
}
