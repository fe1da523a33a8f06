//! Concurrency slots: excess demand waits in `ready` (S10), and every way a holder ends
//! frees its slots exactly once (S11).

mod sim;

use aloft_core::{RunStatus, TaskState};
use sim::{S, Sim};

const MIN: u64 = 60 * S;

fn pool_wait(seconds: u64) -> String {
    format!(
        r#"
name: pool-wait
pools: {{warehouse: 2}}
tasks:
  a: {{pool: warehouse, run: {{command: [sleep, "{seconds}"]}}}}
  b: {{pool: warehouse, run: {{command: [sleep, "{seconds}"]}}}}
  c: {{pool: warehouse, run: {{command: [sleep, "{seconds}"]}}}}
"#
    )
}

fn max_tasks_wait(seconds: u64) -> String {
    format!(
        r#"
name: pool-wait
concurrency: {{max_tasks: 2}}
tasks:
  a: {{run: {{command: [sleep, "{seconds}"]}}}}
  b: {{run: {{command: [sleep, "{seconds}"]}}}}
  c: {{run: {{command: [sleep, "{seconds}"]}}}}
"#
    )
}

/// The S10 timeline, whatever scope limits the run to two tasks at once.
async fn assert_third_task_waits_ready(yaml: &str, scope: &str) {
    let mut sim = Sim::new();
    let run = sim.start_yaml(yaml).await;

    sim.run_until(&run, 5 * MIN).await;
    let middle = sim.report(&run).await;
    let states = middle.states();
    let running: Vec<&String> = states
        .iter()
        .filter(|(_, s)| **s == (TaskState::Running, 1))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(running, ["a", "b"], "at 5 min: {states:?}");
    let waiting = middle.task("c");
    assert_eq!((waiting.state, waiting.attempt), (TaskState::Ready, 1));
    assert_eq!(
        waiting.started_at, None,
        "waiting must not start an attempt"
    );
    assert!(waiting.failure.is_none());
    assert_eq!(middle.starts_of("c").len(), 0);

    let report = sim.run_to_end(&run).await;
    assert_eq!(report.status(), RunStatus::Succeeded);
    for task in ["a", "b", "c"] {
        assert_eq!(report.state(task), (TaskState::Succeeded, 1), "{task}");
    }
    let starts: Vec<(String, u32, u64)> = report
        .starts
        .iter()
        .map(|s| (s.key.task.clone(), s.attempt, s.at))
        .collect();
    assert_eq!(
        starts,
        [
            ("a".to_owned(), 1, 0),
            ("b".to_owned(), 1, 0),
            ("c".to_owned(), 1, 10 * MIN)
        ]
    );
    assert_eq!(report.ended_at(), 20 * MIN);
    let usage = report.observed.usage(scope);
    assert_eq!(usage, [(0, 2), (10 * MIN, 1), (20 * MIN, 0)]);
    let most = report.observed.most_leases.values().copied().max();
    assert_eq!(most, Some(2), "{:?}", report.observed.most_leases);
}

#[tokio::test]
async fn excess_pool_demand_waits_ready_and_starts_when_a_slot_frees() {
    assert_third_task_waits_ready(&pool_wait(600), "pool:warehouse").await;
}

#[tokio::test]
async fn excess_max_tasks_demand_waits_ready_and_starts_when_a_slot_frees() {
    assert_third_task_waits_ready(&max_tasks_wait(600), "run:").await;
}

/// Dispatch messages handled for the pool timeline with tasks of `seconds`.
async fn dispatches_while_waiting(yaml: &str) -> usize {
    let mut sim = Sim::new();
    let report = sim.run_yaml(yaml).await;
    assert_eq!(report.status(), RunStatus::Succeeded);
    report.observed.count("dispatch")
}

#[tokio::test]
async fn a_waiting_dispatch_never_spins() {
    // Three first dispatches, one wake-up, and a few backed-off re-checks: a handful,
    // not one per poll interval of the ten minutes waited.
    let ten_minutes = dispatches_while_waiting(&pool_wait(600)).await;
    assert!(ten_minutes < 12, "{ten_minutes} dispatches in 10 min");
    // A wait a hundred times longer costs at most one re-check per queue delay (15 min).
    let long = dispatches_while_waiting(&pool_wait(60_000)).await;
    assert!(
        long < 12 + 2 * 60_000 / 900,
        "{long} dispatches in 1000 min"
    );
    let long = dispatches_while_waiting(&max_tasks_wait(60_000)).await;
    assert!(
        long < 12 + 2 * 60_000 / 900,
        "{long} dispatches in 1000 min"
    );
}

const SLOT_LEAK: &str = r#"
name: slot-leak
pools: {gate: 2}
defaults: {timeout: 5s, retry: {max_attempts: 1}}
tasks:
  a: {pool: gate, run: {command: [sleep, "60"]}}
  b: {pool: gate, run: {command: [sleep, "60"]}}
  c: {pool: gate, run: {command: [sleep, "60"]}}
"#;

#[tokio::test]
async fn timeouts_free_their_slots_for_the_waiting_task() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(SLOT_LEAK).await;

    assert_eq!(report.status(), RunStatus::Failed);
    for task in ["a", "b", "c"] {
        assert_eq!(report.state(task), (TaskState::TimedOut, 1), "{task}");
    }
    let starts: Vec<(&str, u64)> = report
        .starts
        .iter()
        .map(|s| (s.key.task.as_str(), s.at))
        .collect();
    assert_eq!(starts, [("a", 0), ("b", 0), ("c", 5 * S)]);
    let cancels: Vec<(&str, u32, u64)> = report
        .cancels
        .iter()
        .map(|c| (c.key.task.as_str(), c.attempt, c.at))
        .collect();
    assert_eq!(
        cancels,
        [("a", 1, 5 * S), ("b", 1, 5 * S), ("c", 1, 10 * S)]
    );
    assert_eq!(report.ended_at(), 10 * S);
    assert_eq!(
        report.observed.usage("pool:gate"),
        [(0, 2), (5 * S, 1), (10 * S, 0)]
    );
    assert_eq!(report.observed.most_leases.get("pool:gate"), Some(&2));
}

#[tokio::test]
async fn a_killed_runner_resumed_later_times_out_the_same_and_leaks_no_slot() {
    let mut sim = Sim::new();
    let run = sim.start_yaml(SLOT_LEAK).await;
    sim.run_until(&run, 2 * S).await;
    assert_eq!(sim.starts().len(), 2);

    sim.kill();
    sim.clock.set(sim::T0 + 30 * S);
    sim.resume(&run).await;
    let report = sim.run_to_end(&run).await;

    assert_eq!(report.status(), RunStatus::Failed);
    for task in ["a", "b", "c"] {
        assert_eq!(report.state(task), (TaskState::TimedOut, 1), "{task}");
    }
    // The timeout checks queued before the kill fire on resume; the third task starts
    // after the resume and is timed out 5 s later.
    let cancels: Vec<(&str, u64)> = report
        .cancels
        .iter()
        .map(|c| (c.key.task.as_str(), c.at))
        .collect();
    assert_eq!(cancels, [("a", 30 * S), ("b", 30 * S), ("c", 35 * S)]);
    let c = report.starts_of("c");
    assert_eq!(c.len(), 1);
    assert_eq!((c[0].attempt, c[0].at), (1, 30 * S));
    let leases: u32 = sim
        .raw()
        .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))
        .expect("count leases");
    assert_eq!(leases, 0, "a slot stayed leased");
    assert_eq!(report.observed.most_leases.get("pool:gate"), Some(&2));
}

#[tokio::test]
async fn a_run_stopped_at_its_deadline_hands_its_pool_slot_to_another_run_at_once() {
    // Two workflows share the pool `gate` of one slot. `stopped` holds it and has a
    // second task waiting for it when its deadline stops the run at t = 3 s; `other`
    // has waited since t = 1 s and must get the slot at 3 s, not at a later re-check.
    let stopped = r#"
name: stopped
deadline: 3s
on_deadline: fail
pools: {gate: 1}
tasks:
  a1: {pool: gate, run: {command: [sleep, "60"]}}
  a2: {pool: gate, run: {command: [sleep, "60"]}}
"#;
    let other = r#"
name: other
pools: {gate: 1}
tasks:
  b1: {pool: gate, run: {command: [sleep, "5"]}}
"#;
    let mut sim = Sim::new();
    let first = sim.start_yaml(stopped).await;
    sim.run_until(&first, S).await;
    let second = sim.start_yaml(other).await;
    let runs = [first.clone(), second.clone()];
    sim.drive_all(&runs, None).await;

    let stopped = sim.report(&first).await;
    assert_eq!(stopped.status(), RunStatus::TimedOut);
    assert_eq!(stopped.state("a1"), (TaskState::TimedOut, 1));
    assert_eq!(
        stopped.state("a2"),
        (TaskState::Skipped, 0),
        "a2 never started"
    );
    let other = sim.report(&second).await;
    assert_eq!(other.status(), RunStatus::Succeeded);
    let b1 = other.starts_of("b1");
    assert_eq!(
        (b1.len(), b1[0].at),
        (1, 3 * S),
        "b1 gets the slot when a1 stops"
    );
    assert_eq!(other.ended_at(), 8 * S);
    assert_eq!(other.observed.most_leases.get("pool:gate"), Some(&1));
}
