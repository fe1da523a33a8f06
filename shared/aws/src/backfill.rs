//! Backfill on AWS: one run per schedule tick of a past range, started the way the
//! trigger function starts an EventBridge Scheduler invocation.
//!
//! Each tick goes through [`parse`] as the invocation Scheduler makes for it
//! ([`scheduler_invocation`]), so its run is keyed `schedule:<tick>`: a tick that already
//! has a run (fired by its schedule, or by an earlier backfill) is reported with that run
//! instead of running again. As on the embedded backend the overlap policy does not
//! apply (`allow`): a backfill is many runs on purpose, and `max_parallel` is its limit.
//! The runs are driven by whatever handles the queues (the deployed functions, or
//! `aloft dev`); this loop only starts them, oldest first, and polls their status on
//! the table, as `aloft start --wait` does.

use std::time::Duration;

use jiff::Timestamp;
use tracing::info;

use aloft_core::RunStatus;
use aloft_core::definition::Overlap;
pub use aloft_core::schedule::ticks::Filled;
use aloft_engine::EngineError;
use aloft_engine::ports::Store;

use crate::AwsEngine;
use crate::trigger::{TriggerError, parse, scheduler_invocation, start};

/// A tick whose run is going.
#[derive(Debug)]
struct Going {
    index: usize,
    tick: u64,
    run_id: String,
    created: bool,
}

/// Start the ticks of the stored workflow (oldest first), at most `max_parallel` going at
/// once, and wait until every run has settled, looking at the table every `poll`.
/// `on_settled` hears of each tick as its run settles (or is found settled). Returns
/// every tick's result, in tick order.
pub async fn backfill(
    engine: &AwsEngine,
    workflow: &str,
    ticks: &[Timestamp],
    max_parallel: usize,
    poll: Duration,
    on_settled: &mut dyn FnMut(&Filled),
) -> Result<Vec<Filled>, TriggerError> {
    let max_parallel = max_parallel.max(1);
    let mut results: Vec<Option<Filled>> = vec![None; ticks.len()];
    let mut going: Vec<Going> = Vec::new();
    let mut next = 0;
    loop {
        while going.len() < max_parallel && next < ticks.len() {
            match start_tick(engine, workflow, ticks[next], next).await? {
                Ok(run) => going.push(run),
                Err(filled) => {
                    on_settled(&filled);
                    results[next] = Some(filled);
                }
            }
            next += 1;
        }
        if going.is_empty() && next == ticks.len() {
            break;
        }
        let before = going.len();
        for (index, filled) in settle(engine, &mut going).await? {
            on_settled(&filled);
            results[index] = Some(filled);
        }
        if going.len() == before {
            tokio::time::sleep(poll).await;
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// Start the run of one tick: the run going (`Ok`), or the settled run the tick already
/// has (`Err`).
async fn start_tick(
    engine: &AwsEngine,
    workflow: &str,
    at: Timestamp,
    index: usize,
) -> Result<Result<Going, Filled>, TriggerError> {
    let mut trigger = parse(&scheduler_invocation(workflow, at))?;
    trigger.overlap = Some(Overlap::Allow);
    let tick = trigger.scheduled_time.unwrap_or_default();
    match start(engine, trigger).await {
        Ok(started) => {
            let run_id = &started.run_id;
            info!(workflow, %run_id, created = started.created, "backfill tick started");
            Ok(Ok(Going {
                index,
                tick,
                run_id: started.run_id,
                created: started.created,
            }))
        }
        Err(TriggerError::Engine(EngineError::KeyConflict { run_id, .. })) => {
            // The key names a run that has settled: that run is the tick's.
            let status = status_of(engine, &run_id).await?;
            Ok(Err(Filled {
                tick,
                run_id,
                status,
                created: false,
            }))
        }
        Err(error) => Err(error),
    }
}

/// Drop the runs that settled from `going`; their results, with their tick's index.
async fn settle(
    engine: &AwsEngine,
    going: &mut Vec<Going>,
) -> Result<Vec<(usize, Filled)>, TriggerError> {
    let mut settled = Vec::new();
    let mut kept = Vec::new();
    for run in going.drain(..) {
        let status = status_of(engine, &run.run_id).await?;
        if status.is_settled() {
            let filled = Filled {
                tick: run.tick,
                run_id: run.run_id,
                status,
                created: run.created,
            };
            settled.push((run.index, filled));
        } else {
            kept.push(run);
        }
    }
    *going = kept;
    Ok(settled)
}

/// A run's status on the table; a run that is not there counts as failed.
async fn status_of(engine: &AwsEngine, run_id: &str) -> Result<RunStatus, TriggerError> {
    let run = engine.store().run(run_id).await?;
    Ok(run.map_or(RunStatus::Failed, |run| run.status))
}
