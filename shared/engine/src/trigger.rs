//! trigger: create a run idempotently and ask for its first planning.

use serde_json::Value;
use tracing::info;

use aloft_core::canonical::{canonical_json, content_hash};
use aloft_core::{Definition, RunStatus};

use crate::engine::{Engine, EngineError};
use crate::message::{Message, Outgoing, TaskKey};
use crate::overlap::Admission;
use crate::ports::{Clock, Created, Events, Invoker, Queue, Store};
use crate::record::{RunRecord, TaskRecord};

/// A request to start a run.
#[derive(Clone, Debug)]
pub struct StartRequest {
    /// The validated definition to run.
    pub definition: Definition,
    /// The run input.
    pub input: Value,
    /// Caller's idempotency key: one run per workflow and key.
    pub idempotency_key: Option<String>,
    /// The schedule tick this run is for, if any (ms since the epoch).
    pub scheduled_time: Option<u64>,
    /// Working folder of command tasks (embedded backend).
    pub workdir: Option<String>,
}

/// What a start request did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    /// The run's id.
    pub run_id: String,
    /// False when an existing run with the same key and input was returned, or when
    /// no run was created (see `admission`).
    pub created: bool,
    /// How the workflow's overlap policy admitted the start. For a skipped start,
    /// `run_id` names the first run it was skipped for.
    pub admission: Admission,
}

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Create a run, unless the idempotency key already names one, or the workflow's
    /// overlap policy holds it back (see [`crate::overlap`]); then plan it.
    pub async fn trigger(&self, request: StartRequest) -> Result<Started, EngineError> {
        self.trigger_with_overlap(request, None).await
    }

    /// Store the request's definition and build its run and tasks (nothing is created).
    pub(crate) async fn new_run(
        &self,
        request: StartRequest,
    ) -> Result<(RunRecord, Vec<TaskRecord>), EngineError> {
        let now = self.clock.now();
        let definition_json = serde_json::to_value(&request.definition).map_err(|e| {
            EngineError::BadDefinition(request.definition.name.clone(), e.to_string())
        })?;
        let version = content_hash(&definition_json);
        self.store
            .put_definition(
                &request.definition.name,
                &version,
                &definition_json.to_string(),
            )
            .await?;

        let run = RunRecord {
            id: new_run_id(now, self.clock.random()),
            workflow: request.definition.name.clone(),
            version,
            status: RunStatus::Queued,
            input: request.input,
            key: request.idempotency_key,
            created_at: now,
            started_at: None,
            ended_at: None,
            deadline_at: None,
            sla_missed: false,
            unsettled: crate::record::sinks(&request.definition),
            failed: 0,
            scheduled_time: request.scheduled_time.unwrap_or(now),
            workdir: request.workdir,
            watch: None,
        };
        let tasks: Vec<TaskRecord> = request
            .definition
            .tasks
            .keys()
            .map(|name| TaskRecord::waiting(TaskKey::task(name)))
            .collect();
        Ok((run, tasks))
    }

    /// Create the run unless its key names one already, and ask for its planning when
    /// `plan` (a `buffer_one` run waits without).
    pub(crate) async fn insert(
        &self,
        run: RunRecord,
        tasks: Vec<TaskRecord>,
        admission: Admission,
        plan: bool,
    ) -> Result<Started, EngineError> {
        match self.store.create_run(&run, &tasks).await? {
            Created::New => {
                info!(workflow = %run.workflow, run_id = %run.id, "run created");
                if plan {
                    self.queue
                        .send(vec![Outgoing::now(plan_of(&run.id))])
                        .await?;
                }
                Ok(Started {
                    run_id: run.id,
                    created: true,
                    admission,
                })
            }
            Created::Existing {
                run_id,
                input,
                status,
            } => {
                let mut started = existing_run(&run, run_id, &input, status)?;
                if status == RunStatus::Queued && plan {
                    // Its creator may have stopped before asking for planning; planning
                    // twice is harmless, never planning leaves the run queued forever.
                    self.queue
                        .send(vec![Outgoing::now(plan_of(&started.run_id))])
                        .await?;
                }
                started.admission = admission;
                Ok(started)
            }
        }
    }
}

fn plan_of(run_id: &str) -> Message {
    Message::Plan {
        run_id: run_id.to_owned(),
        settled: Vec::new(),
    }
}

/// Decide what a start with an already used key gets: the same run for a true duplicate
/// of a run still going, an error otherwise.
fn existing_run(
    request: &RunRecord,
    run_id: String,
    stored_input: &str,
    status: RunStatus,
) -> Result<Started, EngineError> {
    let key = request.key.clone().unwrap_or_default();
    if stored_input != canonical_json(&request.input) {
        return Err(EngineError::KeyConflict {
            key,
            run_id,
            reason: "with another input",
        });
    }
    if status.is_settled() {
        return Err(EngineError::KeyConflict {
            key,
            run_id,
            reason: "and that run has settled",
        });
    }
    info!(workflow = %request.workflow, run_id = %run_id, "duplicate start returned the existing run");
    Ok(Started {
        run_id,
        created: false,
        admission: Admission::Started,
    })
}

/// A run id that sorts by creation time: `YYYYMMDD-HHMMSS-` and 48 random bits in hex,
/// enough that runs created in the same second do not collide.
pub(crate) fn new_run_id(now_ms: u64, random: u64) -> String {
    let t = crate::time::UtcTime::from_millis(now_ms);
    format!(
        "{:04}{:02}{:02}-{:02}{:02}{:02}-{:012x}",
        t.year,
        t.month,
        t.day,
        t.hour,
        t.minute,
        t.second,
        random & 0xffff_ffff_ffff
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_ids_show_the_utc_creation_time() {
        // 2026-12-04T16:31:50Z
        assert_eq!(
            new_run_id(1_796_401_910_000, 0x1234_abcd_ef12_3456),
            "20261204-163150-abcdef123456"
        );
        assert_eq!(
            new_run_id(951_782_400_000, 1),
            "20000229-000000-000000000001"
        );
        assert_eq!(new_run_id(0, 0), "19700101-000000-000000000000");
    }
}
