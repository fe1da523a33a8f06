//! At-least-once delivery (S18): every message handled is delivered again, at once and
//! after the queue's visibility timeout, and still each attempt starts once.

mod sim;

use std::collections::BTreeMap;

use aloft_core::{RunStatus, TaskState};
use sim::{Duplicates, Report, S, Sim};

const HOUR: u64 = 3600 * S;

const DUP_DELIVERY: &str = r#"
name: dup-delivery
tasks:
  slow: {timeout: 10m, run: {command: [sleep, "150"]}}
  after: {depends_on: [slow], run: {command: ["true"]}}
  flaky:
    retry: {max_attempts: 2, backoff: fixed, initial_delay: 6h, on: [error]}
    run: {command: [fail-once]}
"#;

/// Every (task, item, attempt) started exactly once.
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

fn every_message_twice() -> Duplicates {
    // Once right after it was handled, and again a visibility timeout (60 s) and two
    // later, as if it had never been acknowledged.
    Duplicates {
        after_ms: vec![0, 60 * S, 120 * S],
    }
}

#[tokio::test]
async fn every_message_delivered_again_still_starts_each_attempt_once() {
    let mut sim = Sim::new();
    sim.duplicates = every_message_twice();
    let report = sim.run_yaml(DUP_DELIVERY).await;

    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_eq!(report.state("slow"), (TaskState::Succeeded, 1));
    assert_eq!(report.state("after"), (TaskState::Succeeded, 1));
    assert_eq!(report.state("flaky"), (TaskState::Succeeded, 2));
    assert_each_attempt_started_once(&report);
    let starts = |task| -> Vec<(u32, u64)> {
        report
            .starts_of(task)
            .iter()
            .map(|s| (s.attempt, s.at))
            .collect()
    };
    assert_eq!(starts("slow"), [(1, 0)]);
    assert_eq!(starts("after"), [(1, 150 * S)]);
    // Attempt 1 fails at once at t = 0; attempt 2 waits its 6 h, re-armed past the
    // 15-minute queue cap, and starts once.
    assert_eq!(starts("flaky"), [(1, 0), (2, 6 * HOUR)]);
    assert!(
        report.observed.count("dispatch") > 3,
        "duplicates were delivered"
    );
}

#[tokio::test]
async fn duplicates_do_not_multiply_re_armed_messages() {
    let mut sim = Sim::new();
    sim.duplicates = every_message_twice();
    let report = sim.run_yaml(DUP_DELIVERY).await;
    // 6 h in legs of at most 15 min is 24 legs; each leg is delivered four times
    // (original and three copies). Without de-duplication the chain would grow
    // fourfold per leg.
    let dispatches = report.observed.count("dispatch");
    assert!(dispatches < 24 * 4 * 3, "{dispatches} dispatch deliveries");
}

#[tokio::test]
async fn duplicated_timeouts_and_pools_start_each_attempt_once() {
    let yaml = r#"
name: dup-slots
pools: {gate: 2}
defaults: {timeout: 5s, retry: {max_attempts: 2, backoff: fixed, initial_delay: 20m}}
tasks:
  a: {pool: gate, run: {command: [sleep, "60"]}}
  b: {pool: gate, run: {command: [sleep, "60"]}}
  c: {pool: gate, run: {command: [sleep, "60"]}}
  d: {pool: gate, depends_on: [a], trigger_rule: all_done, run: {command: [sleep, "1"]}}
"#;
    let mut sim = Sim::new();
    sim.duplicates = every_message_twice();
    let report = sim.run_yaml(yaml).await;

    assert_each_attempt_started_once(&report);
    for task in ["a", "b", "c"] {
        assert_eq!(report.state(task), (TaskState::TimedOut, 2), "{task}");
    }
    assert_eq!(report.state("d"), (TaskState::Succeeded, 1));
    assert_eq!(report.status(), RunStatus::Failed);
    assert!(
        report
            .observed
            .most_leases
            .get("pool:gate")
            .copied()
            .unwrap_or(0)
            <= 2
    );
    let leases: u32 = sim
        .raw()
        .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))
        .expect("count leases");
    assert_eq!(leases, 0, "every slot released");
}
