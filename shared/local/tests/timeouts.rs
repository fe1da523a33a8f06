//! Time limits enforced by aloft's own timer (S17): attempt timeouts with retry, late
//! results ignored, timeouts longer than the queue's delay cap, and run deadlines.

mod sim;

use aloft_core::{RunStatus, TaskState};
use aloft_engine::message::{Message, Outcome, TaskKey};
use serde_json::json;
use sim::{S, Sim};

const TASK_TIMEOUT: &str = r#"
name: task-timeout
tasks:
  w:
    timeout: 3s
    retry: {max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [timeout]}
    run: {command: [sleep, "25"]}
  after: {depends_on: [w], run: {command: ["true"]}}
"#;

#[tokio::test]
async fn each_attempt_is_stopped_at_its_timeout_and_retried_after_its_backoff() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(TASK_TIMEOUT).await;

    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.ended_at(), 7 * S);
    assert_eq!(report.state("w"), (TaskState::TimedOut, 2));
    assert_eq!(
        report.task("w").failure.as_ref().map(|f| f.kind.as_str()),
        Some("timeout")
    );
    assert_eq!(report.state("after"), (TaskState::UpstreamFailed, 0));
    let starts: Vec<(u32, u64)> = report
        .starts_of("w")
        .iter()
        .map(|s| (s.attempt, s.at))
        .collect();
    assert_eq!(starts, [(1, 0), (2, 4 * S)]);
    let cancels: Vec<(u32, u64)> = report.cancels.iter().map(|c| (c.attempt, c.at)).collect();
    assert_eq!(
        cancels,
        [(1, 3 * S), (2, 7 * S)],
        "no attempt runs past its 3 s"
    );
}

#[tokio::test]
async fn a_late_success_of_a_timed_out_attempt_changes_nothing() {
    let mut sim = Sim::new();
    let run = sim.start_yaml(TASK_TIMEOUT).await;
    let before = sim.run_to_end(&run).await;

    sim.clock.set(sim::T0 + 25 * S);
    sim.deliver(Message::Complete {
        run_id: run.clone(),
        key: TaskKey::task("w"),
        attempt: 1,
        outcome: Outcome::Succeeded {
            output: json!({"late": true}),
        },
        ended_at: None,
        started_at: None,
        run: None,
    });
    sim.run_until(&run, 26 * S).await;
    let after = sim.report(&run).await;

    assert_eq!(
        after.observed.count("complete"),
        before.observed.count("complete") + 1
    );
    assert_eq!(after.run, before.run);
    assert_eq!(after.records, before.records);
    assert_eq!(after.state("w"), (TaskState::TimedOut, 2));
    assert_eq!(after.task("w").output, None);
    assert_eq!(
        after.starts.len(),
        before.starts.len(),
        "nothing downstream planned"
    );
}

#[tokio::test]
async fn a_two_hour_timeout_fires_exactly_at_two_hours_through_re_armed_checks() {
    let yaml = r#"
name: long-timeout
tasks:
  w: {timeout: 2h, run: {command: [sleep, "10800"]}}
"#;
    let mut sim = Sim::new();
    let report = sim.run_yaml(yaml).await;

    assert_eq!(report.state("w"), (TaskState::TimedOut, 1));
    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.ended_at(), 2 * 3600 * S);
    let cancels: Vec<u64> = report.cancels.iter().map(|c| c.at).collect();
    assert_eq!(cancels, [2 * 3600 * S]);
    // Each queued check waits at most 15 min, so 2 h takes at least 8 of them: the
    // first armed at the start, re-armed by every early one.
    let checks = report.observed.count("timeout_check");
    assert!(checks >= 8, "{checks} checks");
    assert_eq!(report.observed.early_timeout_checks, checks - 1);
}

fn deadline(on_deadline: &str) -> String {
    format!(
        r#"
name: deadline
deadline: 3s
{on_deadline}
tasks:
  w: {{timeout: 1m, run: {{command: [sleep, "25"]}}}}
"#
    )
}

#[tokio::test]
async fn a_deadline_with_on_deadline_fail_times_the_run_out_at_the_deadline() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(&deadline("on_deadline: fail")).await;

    assert_eq!(report.status(), RunStatus::TimedOut);
    assert_eq!(report.ended_at(), 3 * S);
    assert_eq!(report.state("w"), (TaskState::TimedOut, 1));
    assert!(report.run.sla_missed);
    let cancels: Vec<(&str, u64)> = report
        .cancels
        .iter()
        .map(|c| (c.key.task.as_str(), c.at))
        .collect();
    assert_eq!(cancels, [("w", 3 * S)]);
    let leases: u32 = sim
        .raw()
        .query_row("SELECT count(*) FROM leases", [], |r| r.get(0))
        .expect("count leases");
    assert_eq!(leases, 0);
}

#[tokio::test]
async fn a_report_only_deadline_marks_the_miss_at_the_deadline_and_the_run_goes_on() {
    let mut sim = Sim::new();
    let run = sim.start_yaml(&deadline("")).await;

    sim.run_until(&run, 3 * S - 1).await;
    assert!(!sim.run_record(&run).await.sla_missed);
    sim.run_until(&run, 3 * S).await;
    let at_deadline = sim.run_record(&run).await;
    assert!(at_deadline.sla_missed, "missed at t = 3 s");
    assert_eq!(at_deadline.status, RunStatus::Running);

    let report = sim.run_to_end(&run).await;
    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_eq!(report.state("w"), (TaskState::Succeeded, 1));
    assert_eq!(report.ended_at(), 25 * S);
    assert!(report.run.sla_missed);
}

#[tokio::test]
async fn a_long_deadline_is_reached_through_re_armed_checks() {
    let yaml = r#"
name: long-deadline
deadline: 2h
on_deadline: fail
tasks:
  w: {timeout: 3h, run: {command: [sleep, "10800"]}}
"#;
    let mut sim = Sim::new();
    let report = sim.run_yaml(yaml).await;

    assert_eq!(report.status(), RunStatus::TimedOut);
    assert_eq!(report.ended_at(), 2 * 3600 * S);
    assert_eq!(report.state("w"), (TaskState::TimedOut, 1));
}

#[tokio::test]
async fn a_task_that_ended_before_the_deadline_while_no_runner_ran_keeps_its_success() {
    let mut sim = Sim::new();
    let run = sim
        .start_yaml(
            r#"
name: deadline-after-kill
deadline: 2s
on_deadline: fail
tasks:
  a: {run: {command: [sleep, "1"]}}
  b: {depends_on: [a], run: {command: [sleep, "10"]}}
"#,
        )
        .await;
    sim.run_until(&run, S / 2).await;
    sim.kill();
    sim.clock.set(sim::T0 + 3 * S);
    sim.resume(&run).await;
    let report = sim.run_to_end(&run).await;

    assert_eq!(report.status(), RunStatus::TimedOut);
    assert_eq!(report.state("a"), (TaskState::Succeeded, 1));
    assert_eq!(report.state("b"), (TaskState::Skipped, 0));
    // It ended at 1 s, while no runner was alive, not when the resume learned of it.
    assert_eq!(report.task("a").ended_at, Some(sim::T0 + S));
}

#[tokio::test]
async fn a_deadline_during_a_retry_backoff_ends_the_task_as_its_last_attempt_did() {
    let mut sim = Sim::new();
    let report = sim
        .run_yaml(
            r#"
name: deadline-in-backoff
deadline: 2s
on_deadline: fail
tasks:
  b:
    run: {command: ["false"]}
    retry: {max_attempts: 3, backoff: fixed, initial_delay: 10s}
"#,
        )
        .await;

    assert_eq!(report.status(), RunStatus::TimedOut);
    assert_eq!(report.state("b"), (TaskState::Failed, 1));
    assert_eq!(
        report.task("b").failure.as_ref().map(|f| f.kind.as_str()),
        Some("error")
    );
    assert_eq!(report.starts_of("b").len(), 1);
}

#[tokio::test]
async fn a_task_that_ended_after_the_deadline_while_no_runner_ran_is_timed_out() {
    let mut sim = Sim::new();
    let run = sim
        .start_yaml(
            r#"
name: deadline-passed-while-dead
deadline: 2s
on_deadline: fail
tasks:
  c: {run: {command: [sleep, "3"]}}
"#,
        )
        .await;
    sim.run_until(&run, S / 2).await;
    sim.kill();
    sim.clock.set(sim::T0 + 4 * S);
    sim.resume(&run).await;
    let report = sim.run_to_end(&run).await;

    assert_eq!(report.status(), RunStatus::TimedOut);
    assert_eq!(report.state("c"), (TaskState::TimedOut, 1));
    assert_eq!(report.task("c").output, None);
}

#[tokio::test]
async fn an_attempt_that_ran_past_its_timeout_while_no_runner_ran_is_timed_out() {
    let mut sim = Sim::new();
    let run = sim
        .start_yaml(
            r#"
name: timeout-passed-while-dead
tasks:
  w:
    timeout: 2s
    retry: {max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [timeout]}
    run: {command: [sleep, "3"]}
"#,
        )
        .await;
    sim.run_until(&run, S / 2).await;
    sim.kill();
    sim.clock.set(sim::T0 + 5 * S);
    sim.resume(&run).await;
    let report = sim.run_to_end(&run).await;

    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.state("w"), (TaskState::TimedOut, 2));
    let starts: Vec<u64> = report.starts_of("w").iter().map(|s| s.at).collect();
    assert_eq!(starts.len(), 2);
    assert!(starts[1] >= 5 * S, "attempt 2 started at {}", starts[1]);
}
