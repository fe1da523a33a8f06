//! Overlap policies: what a start does while other runs of its workflow are going.
//!
//! The policy is the workflow's `schedule.overlap` (a workflow without a schedule has
//! none: every start is allowed), unless the caller names one for this start. It governs
//! every start that goes through [`Engine::trigger`]: schedule ticks, events and manual
//! starts alike.
//!
//! - `allow`: start.
//! - `skip`: while a run of the workflow is queued or running, make no run; the start
//!   reports what it skipped for, and is no error.
//! - `buffer_one`: while runs are going, make the run but keep it queued, without asking
//!   for its planning, until every run before it has settled; at most one run waits so,
//!   a further start is skipped. The waiting run holds the one slot of the scope
//!   `overlap:<workflow>` (a lease, as `max_runs` slots are), which makes "at most one"
//!   a single conditional write; [`Engine::wake_buffered`] releases it.
//! - `cancel_running`: cancel the runs going (running attempts are stopped and fail with
//!   kind `cancelled`, tasks not started are skipped), then start.
//!
//! A start that repeats the idempotency key of a run that is going is that run, whatever
//! the policy: a tick delivered twice makes one run, never a skip of itself.
//!
//! Deciding and creating are two steps. The embedded backend does both in one
//! transaction. A backend that cannot list a workflow's runs (its store answers `None` to
//! [`Store::active_runs`]) applies no policy and says so in its log.

use tracing::{info, warn};

use aloft_core::definition::{Definition, Overlap};
use aloft_core::{Failure, RunStatus, TaskState};

use crate::engine::{Engine, EngineError};
use crate::message::{Message, Outgoing};
use crate::ports::{Clock, Events, Invoker, Queue, Slot, Store};
use crate::record::RunRecord;
use crate::trigger::{StartRequest, Started};

/// The failure kind of attempts stopped because a newer run replaced their run.
pub const CANCELLED: &str = "cancelled";

/// How long the waiting place of a `buffer_one` run is held before it lapses (a year):
/// longer than any run should wait, short enough that a lost release cannot hold it
/// for good.
const BUFFER_LEASE_MS: u64 = 366 * 24 * 3600 * 1000;

/// How the overlap policy admitted a start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Admission {
    /// The run was created and asked for planning (or the key named a run going).
    Started,
    /// The run was created and waits, queued, until these runs have settled.
    Buffered {
        /// The runs before it.
        behind: Vec<String>,
    },
    /// No run was created: these runs of the workflow are going.
    Skipped {
        /// The runs going.
        active: Vec<String>,
    },
    /// These runs were cancelled, then the run was created.
    Replaced {
        /// The cancelled runs.
        cancelled: Vec<String>,
    },
}

/// A run of the workflow that has not settled, as the policy sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Going {
    /// Its id.
    pub run_id: String,
    /// True for a run waiting under `buffer_one`.
    pub buffered: bool,
}

/// What a policy decides for a new start.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Create the run and plan it.
    Start,
    /// Create the run, queued, behind these runs.
    Buffer {
        /// The runs going.
        behind: Vec<String>,
    },
    /// Create nothing.
    Skip {
        /// The runs going.
        active: Vec<String>,
    },
    /// Cancel these runs, then create the run and plan it.
    CancelThenStart {
        /// The runs going.
        runs: Vec<String>,
    },
}

/// The policy's decision, given the runs of the workflow that are going.
pub fn decide(policy: Overlap, going: &[Going]) -> Verdict {
    let ids = || going.iter().map(|g| g.run_id.clone()).collect();
    if going.is_empty() {
        return Verdict::Start;
    }
    match policy {
        Overlap::Allow => Verdict::Start,
        Overlap::Skip => Verdict::Skip { active: ids() },
        Overlap::BufferOne if going.iter().any(|g| g.buffered) => Verdict::Skip { active: ids() },
        Overlap::BufferOne => Verdict::Buffer { behind: ids() },
        Overlap::CancelRunning => Verdict::CancelThenStart { runs: ids() },
    }
}

/// The workflow's own policy: its schedule's `overlap`; `allow` without a schedule.
pub fn policy_of(definition: &Definition) -> Overlap {
    definition
        .schedule
        .as_ref()
        .map_or(Overlap::Allow, |schedule| schedule.overlap)
}

/// The slot scope whose one holder is the workflow's waiting `buffer_one` run.
pub fn buffer_scope(workflow: &str) -> String {
    format!("overlap:{workflow}")
}

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// [`Engine::trigger`] under an overlap policy: `None` follows the workflow's.
    pub async fn trigger_with_overlap(
        &self,
        request: StartRequest,
        overlap: Option<Overlap>,
    ) -> Result<Started, EngineError> {
        let policy = overlap.unwrap_or_else(|| policy_of(&request.definition));
        if policy == Overlap::Allow {
            return self.create(request, Admission::Started).await;
        }
        let workflow = request.definition.name.clone();
        let Some(active) = self.store.active_runs(&workflow).await? else {
            warn!(workflow = %workflow, "overlap policy not applied: this backend does not list the runs going");
            return self.create(request, Admission::Started).await;
        };
        let going = self.going(&workflow, active).await?;
        if let Some(key) = &request.idempotency_key
            && let Some((_, buffered)) = going.iter().find(|(r, _)| r.key.as_ref() == Some(key))
        {
            // A repeated start of a run that is going is that run, whatever the policy.
            let admission = if *buffered {
                Admission::Buffered { behind: Vec::new() }
            } else {
                Admission::Started
            };
            return self.create(request, admission).await;
        }
        let seen: Vec<Going> = going
            .iter()
            .map(|(run, buffered)| Going {
                run_id: run.id.clone(),
                buffered: *buffered,
            })
            .collect();
        match decide(policy, &seen) {
            Verdict::Start => self.create(request, Admission::Started).await,
            Verdict::Skip { active } => {
                info!(workflow = %workflow, active = ?active, policy = ?policy, "start skipped: a run of the workflow is going");
                Ok(Started {
                    run_id: active.first().cloned().unwrap_or_default(),
                    created: false,
                    admission: Admission::Skipped { active },
                })
            }
            Verdict::Buffer { behind } => self.buffer(request, behind).await,
            Verdict::CancelThenStart { runs } => {
                let records: Vec<RunRecord> = going.into_iter().map(|(run, _)| run).collect();
                self.replace(request, &records, runs).await
            }
        }
    }

    /// The runs going, each with whether it waits under `buffer_one`. A waiting run
    /// whose predecessors have all settled is released first (and then counts as going,
    /// not waiting).
    async fn going(
        &self,
        workflow: &str,
        active: Vec<RunRecord>,
    ) -> Result<Vec<(RunRecord, bool)>, EngineError> {
        Ok(self.sort_going(workflow, active).await?.0)
    }

    /// Start the workflow's waiting `buffer_one` run if every run before it has settled;
    /// returns its id when it was released. A backend calls this when one of its runs
    /// settles; every later start of the workflow does it too.
    pub async fn wake_buffered(&self, workflow: &str) -> Result<Option<String>, EngineError> {
        let Some(active) = self.store.active_runs(workflow).await? else {
            return Ok(None);
        };
        Ok(self.sort_going(workflow, active).await?.1)
    }

    /// [`Self::going`], and the id of the run it released, if any.
    async fn sort_going(
        &self,
        workflow: &str,
        active: Vec<RunRecord>,
    ) -> Result<(Vec<(RunRecord, bool)>, Option<String>), EngineError> {
        if active.is_empty() {
            return Ok((Vec::new(), None));
        }
        let holders = self.store.holders(&buffer_scope(workflow)).await?;
        let mut going: Vec<(RunRecord, bool)> = active
            .into_iter()
            .map(|run| {
                let buffered = run.status == RunStatus::Queued && holders.contains(&run.id);
                (run, buffered)
            })
            .collect();
        let mut released = None;
        if going.iter().all(|(_, buffered)| *buffered)
            && let Some((run, buffered)) = going.first_mut()
        {
            self.release_buffered(run).await?;
            *buffered = false;
            released = Some(run.id.clone());
        }
        Ok((going, released))
    }

    /// Let a waiting run go: free its waiting place and ask for its planning.
    async fn release_buffered(&self, run: &RunRecord) -> Result<(), EngineError> {
        self.store
            .release(&run.id, &[buffer_scope(&run.workflow)])
            .await?;
        let plan = Message::Plan {
            run_id: run.id.clone(),
            settled: Vec::new(),
        };
        self.queue.send(vec![Outgoing::now(plan)]).await?;
        info!(workflow = %run.workflow, run_id = %run.id, "waiting run released: the runs before it settled");
        Ok(())
    }

    /// Create a run that waits behind `behind`, unless another run already waits.
    async fn buffer(
        &self,
        request: StartRequest,
        behind: Vec<String>,
    ) -> Result<Started, EngineError> {
        let workflow = request.definition.name.clone();
        let (run, tasks) = self.new_run(request).await?;
        let now = self.clock.now();
        let slot = Slot {
            scope: buffer_scope(&workflow),
            capacity: 1,
        };
        let expires = now.saturating_add(BUFFER_LEASE_MS);
        if let Some(full) = self.store.acquire(&[slot], &run.id, now, expires).await? {
            let active = self.store.holders(&full).await?;
            info!(workflow = %workflow, "start skipped: a run already waits (overlap buffer_one)");
            return Ok(Started {
                run_id: active.first().cloned().unwrap_or_default(),
                created: false,
                admission: Admission::Skipped { active },
            });
        }
        let run_id = run.id.clone();
        let started = self
            .insert(run, tasks, Admission::Buffered { behind }, false)
            .await;
        if !matches!(&started, Ok(s) if s.created) {
            self.store
                .release(&run_id, &[buffer_scope(&workflow)])
                .await?;
        }
        if let Ok(s) = &started
            && s.created
        {
            info!(workflow = %workflow, run_id = %run_id, "run waits for the runs going to settle (overlap buffer_one)");
        }
        started
    }

    /// Create and plan the new run, then cancel the runs going. Creating first means a
    /// start refused for its key (a tick whose run has settled) cancels nothing.
    async fn replace(
        &self,
        request: StartRequest,
        going: &[RunRecord],
        ids: Vec<String>,
    ) -> Result<Started, EngineError> {
        let (run, tasks) = self.new_run(request).await?;
        let workflow = run.workflow.clone();
        let admission = Admission::Replaced { cancelled: ids };
        let mut started = self.insert(run, tasks, admission, true).await?;
        if !started.created {
            started.admission = Admission::Started;
            return Ok(started);
        }
        let why = Failure::new(
            CANCELLED,
            format!(
                "run {} of the workflow replaced it (overlap cancel_running)",
                started.run_id
            ),
        );
        for old in going {
            self.stop_run_because(old, RunStatus::Cancelled, TaskState::Failed, why.clone())
                .await?;
        }
        info!(workflow = %workflow, run_id = %started.run_id, "runs going cancelled (overlap cancel_running)");
        Ok(started)
    }

    /// Create a run and plan it (the admission is reported back as given).
    async fn create(
        &self,
        request: StartRequest,
        admission: Admission,
    ) -> Result<Started, EngineError> {
        let plan = !matches!(admission, Admission::Buffered { .. });
        let (run, tasks) = self.new_run(request).await?;
        self.insert(run, tasks, admission, plan).await
    }
}
