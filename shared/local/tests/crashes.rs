//! Crashes and failing handlers: a runner killed between or in the middle of a batch,
//! and ports that fail once, lose nothing and start nothing twice.

mod sim;

use std::collections::BTreeMap;

use aloft_core::{RunStatus, TaskState};
use sim::{Report, S, Sim};

/// A workflow touching every handler: retries, a timeout, a pool, a fan-out and a join.
const MIXED: &str = r#"
name: crash-mix
pools: {gate: 2}
tasks:
  a: {pool: gate, run: {command: [sleep, "10"]}}
  b: {pool: gate, run: {command: [sleep, "10"]}}
  c: {pool: gate, run: {command: [sleep, "10"]}}
  flaky:
    retry: {max_attempts: 2, backoff: fixed, initial_delay: 20s}
    run: {command: [fail-once]}
  slow: {timeout: 4s, run: {command: [sleep, "30"]}}
  list: {depends_on: [a], run: {command: [emit, '{"xs": [1, 2, 3]}']}}
  each: {depends_on: [list], for_each: $.list.xs, max_concurrency: 2, run: {command: [sleep, "3"]}}
  join: {depends_on: [b, c, flaky, each, slow], trigger_rule: all_done, run: {command: [cat]}}
"#;

type Summary = (RunStatus, BTreeMap<String, (TaskState, u32)>, usize);

fn summary(report: &Report) -> Summary {
    let items = report.items("each");
    assert!(
        items
            .iter()
            .all(|i| (i.state, i.attempt) == (TaskState::Succeeded, 1))
    );
    (report.status(), report.states(), items.len())
}

fn assert_each_attempt_started_once(report: &Report) {
    let mut seen = BTreeMap::new();
    for start in &report.starts {
        *seen
            .entry((start.key.clone(), start.attempt))
            .or_insert(0u32) += 1;
    }
    let twice: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).collect();
    assert!(twice.is_empty(), "started more than once: {twice:?}");
}

fn assert_no_slot_left(sim: &Sim) {
    let leases: u32 = sim
        .raw()
        .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))
        .expect("count leases");
    assert_eq!(leases, 0, "a slot stayed leased");
}

async fn undisturbed() -> (Summary, usize) {
    let mut sim = Sim::new();
    let report = sim.run_yaml(MIXED).await;
    assert_each_attempt_started_once(&report);
    (summary(&report), report.observed.busy_steps)
}

#[tokio::test]
async fn the_mixed_workflow_settles_as_expected_when_undisturbed() {
    let ((status, states, items), _) = undisturbed().await;
    assert_eq!(status, RunStatus::Failed, "slow times out");
    assert_eq!(items, 3);
    let expect =
        |name: &str, state, attempts| assert_eq!(states[name], (state, attempts), "{name}");
    expect("a", TaskState::Succeeded, 1);
    expect("b", TaskState::Succeeded, 1);
    expect("c", TaskState::Succeeded, 1);
    expect("flaky", TaskState::Succeeded, 2);
    expect("slow", TaskState::TimedOut, 1);
    expect("list", TaskState::Succeeded, 1);
    expect("each", TaskState::Succeeded, 1);
    expect("join", TaskState::Succeeded, 1);
}

#[tokio::test]
async fn a_runner_killed_after_any_step_and_resumed_ends_the_same() {
    let (expected, steps) = undisturbed().await;
    for kill_after in 1..=steps {
        let mut sim = Sim::new();
        let run = sim.start_yaml(MIXED).await;
        for _ in 0..kill_after {
            sim.step_once(&run).await;
        }
        let at = sim.now();
        sim.kill();
        sim.clock.set(sim::T0 + at + 2 * S);
        sim.resume(&run).await;
        let report = sim.run_to_end(&run).await;

        assert_eq!(summary(&report), expected, "killed after step {kill_after}");
        assert_each_attempt_started_once(&report);
        assert_no_slot_left(&sim);
    }
}

#[tokio::test]
async fn a_runner_killed_in_the_middle_of_any_batch_loses_nothing() {
    let (expected, steps) = undisturbed().await;
    let mut stalled_batches = 0;
    for crash_at in 1..=steps {
        let mut sim = Sim::new();
        let run = sim.start_yaml(MIXED).await;
        for _ in 1..crash_at {
            sim.step_once(&run).await;
        }
        stalled_batches += usize::from(sim.crash_in_step(&run).await);
        sim.resume(&run).await;
        let report = sim.run_to_end(&run).await;

        assert_eq!(summary(&report), expected, "crashed in step {crash_at}");
        assert_each_attempt_started_once(&report);
        assert_no_slot_left(&sim);
    }
    assert!(
        stalled_batches >= 5,
        "only {stalled_batches} crashes hit a start"
    );
}

#[tokio::test]
async fn a_retryable_start_error_delivers_the_dispatch_again_without_using_an_attempt() {
    let yaml = r#"
name: start-error
tasks:
  t: {run: {command: [start-error-once]}}
  u: {depends_on: [t], run: {command: ["true"]}}
"#;
    let mut sim = Sim::new();
    let report = sim.run_yaml(yaml).await;

    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_eq!(report.state("t"), (TaskState::Succeeded, 1));
    assert_eq!(report.state("u"), (TaskState::Succeeded, 1));
    let starts: Vec<(&str, u32)> = report
        .starts
        .iter()
        .map(|s| (s.key.task.as_str(), s.attempt))
        .collect();
    assert_eq!(starts, [("t", 1), ("u", 1)]);
    assert!(report.task("t").failure.is_none());
    assert_no_slot_left(&sim);
}

#[tokio::test]
async fn a_failed_cancel_is_retried_and_the_timeout_still_lands_once() {
    let yaml = r#"
name: cancel-error
pools: {gate: 1}
tasks:
  w: {pool: gate, timeout: 5s, run: {command: [sleep, "60"]}}
  next: {pool: gate, depends_on: [w], trigger_rule: all_done, run: {command: ["true"]}}
"#;
    let mut sim = Sim::new();
    sim.fail_cancels(1);
    let report = sim.run_yaml(yaml).await;

    assert_eq!(report.state("w"), (TaskState::TimedOut, 1));
    assert_eq!(report.state("next"), (TaskState::Succeeded, 1));
    assert_eq!(report.status(), RunStatus::Failed);
    // The check that failed to cancel is received again a second later.
    let cancels: Vec<(&str, u32, u64)> = report
        .cancels
        .iter()
        .map(|c| (c.key.task.as_str(), c.attempt, c.at))
        .collect();
    assert_eq!(cancels, [("w", 1, 6 * S)]);
    assert_each_attempt_started_once(&report);
    assert_no_slot_left(&sim);
}
