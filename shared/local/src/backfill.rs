//! Backfill: one run per schedule tick of a past range, on the embedded backend.
//!
//! Each tick's run is keyed `schedule:<tick>`, the key a scheduler gives it, so a tick
//! that already has a run (from `aloft serve`, or from an earlier backfill) is reported
//! with that run instead of running again, and a repeated backfill makes no duplicates.
//! Runs start oldest first, at most `max_parallel` going at once. The workflow's overlap
//! policy does not apply: a backfill is many runs on purpose, and `max_parallel` is its
//! limit (the workflow's `max_runs` still holds).

use jiff::Timestamp;
use serde_json::json;
use tracing::info;

use aloft_core::definition::Overlap;
pub use aloft_core::schedule::ticks::Filled;
use aloft_core::schedule::ticks::tick_key;
use aloft_core::{Definition, RunStatus};
use aloft_engine::ports::{Clock, Store};
use aloft_engine::{EngineError, StartRequest};

use crate::Runner;
use crate::runner::{claim_driver, next_visible};

/// Longest wait between two looks at runs driven by other processes.
const POLL_MS: u64 = 500;

/// A tick whose run is going.
#[derive(Debug)]
struct Going {
    index: usize,
    run_id: String,
    created: bool,
    /// True when this process drives it; false when another live process does.
    driven_here: bool,
}

/// Run the ticks (oldest first), at most `max_parallel` at once, and wait for every run
/// to settle. `on_settled` hears of each tick as its run settles (or is found settled).
/// Returns every tick's result, in tick order.
pub async fn backfill(
    runner: &mut Runner,
    definition: &Definition,
    workdir: Option<String>,
    ticks: &[Timestamp],
    max_parallel: usize,
    on_settled: &mut dyn FnMut(&Filled),
) -> Result<Vec<Filled>, EngineError> {
    let max_parallel = max_parallel.max(1);
    let mut results: Vec<Option<Filled>> = vec![None; ticks.len()];
    let mut going: Vec<Going> = Vec::new();
    let mut next = 0;
    loop {
        while going.len() < max_parallel && next < ticks.len() {
            let request = StartRequest {
                definition: definition.clone(),
                input: json!({}),
                idempotency_key: Some(tick_key(ticks[next])),
                scheduled_time: Some(millis(ticks[next])),
                workdir: workdir.clone(),
            };
            match start(runner, request, next).await? {
                Started::Going(run) => going.push(run),
                Started::Settled(filled) => {
                    on_settled(&filled);
                    results[next] = Some(filled);
                }
            }
            next += 1;
        }
        if going.is_empty() && next == ticks.len() {
            break;
        }
        let mut handled = 0;
        for run in going.iter().filter(|r| r.driven_here) {
            handled += runner.step(&run.run_id).await?.handled;
        }
        for (index, filled) in settle(runner, &mut going, ticks).await? {
            on_settled(&filled);
            results[index] = Some(filled);
        }
        if handled == 0 {
            let until = next_look(runner, &going)?;
            runner.wait_until(until).await?;
        }
    }
    Ok(results.into_iter().flatten().collect())
}

/// What starting one tick found.
enum Started {
    Going(Going),
    Settled(Filled),
}

/// Start the run of tick `index`, or find the one it has.
async fn start(
    runner: &mut Runner,
    request: StartRequest,
    index: usize,
) -> Result<Started, EngineError> {
    let tick = request.scheduled_time.unwrap_or(0);
    match runner.start_with(request, Some(Overlap::Allow)).await {
        Ok(started) => {
            let driven_here = claim_driver(runner.db(), &started.run_id)?.is_none();
            if driven_here && !started.created {
                // The tick's run was left by a process that stopped: pick it up.
                runner.recover(&started.run_id).await?;
            }
            info!(run_id = %started.run_id, created = started.created, "backfill tick started");
            Ok(Started::Going(Going {
                index,
                run_id: started.run_id,
                created: started.created,
                driven_here,
            }))
        }
        Err(EngineError::KeyConflict { run_id, .. }) => {
            let status = runner
                .db()
                .run(&run_id)
                .await?
                .map_or(RunStatus::Failed, |run| run.status);
            Ok(Started::Settled(Filled {
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
    runner: &Runner,
    going: &mut Vec<Going>,
    ticks: &[Timestamp],
) -> Result<Vec<(usize, Filled)>, EngineError> {
    let mut settled = Vec::new();
    let mut kept = Vec::new();
    for run in going.drain(..) {
        let record = runner.db().run(&run.run_id).await?;
        match record {
            Some(record) if record.status.is_settled() => {
                if run.driven_here {
                    runner.let_go(&run.run_id)?;
                }
                let filled = Filled {
                    tick: millis(ticks[run.index]),
                    run_id: run.run_id,
                    status: record.status,
                    created: run.created,
                };
                settled.push((run.index, filled));
            }
            _ => kept.push(run),
        }
    }
    *going = kept;
    Ok(settled)
}

/// The next message due of a run driven here, at most [`POLL_MS`] from now.
fn next_look(runner: &Runner, going: &[Going]) -> Result<u64, EngineError> {
    let now = runner.engine().clock().now();
    let mut until = now.saturating_add(POLL_MS);
    for run in going.iter().filter(|r| r.driven_here) {
        if let Some(at) = next_visible(runner.db(), &run.run_id)? {
            until = until.min(at);
        }
    }
    Ok(until)
}

fn millis(at: Timestamp) -> u64 {
    u64::try_from(at.as_millisecond()).unwrap_or(0)
}
