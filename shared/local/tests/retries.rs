//! Retry backoff on the fake clock (S12): exponential delays capped before they overflow,
//! each attempt ready no earlier than the last failure plus its delay, and never more
//! attempts than `max_attempts`.

mod sim;

use aloft_core::{RunStatus, TaskState};
use sim::{Report, S, Sim};

fn always_fails(max_attempts: u32) -> String {
    format!(
        r#"
name: always-fails
tasks:
  t:
    run: {{command: ["false"]}}
    retry: {{max_attempts: {max_attempts}, backoff: exponential, initial_delay: 300s,
            multiplier: 2.0, max_delay: 1h, jitter: none, on: [error]}}
"#
    )
}

/// Delay before retry n (n = 1 precedes attempt 2), in seconds, as the case states it.
fn expected_delay(n: u32) -> u64 {
    match n {
        1..=4 => 300 << (n - 1),
        _ => 3600,
    }
}

/// The gaps between consecutive attempt starts, in seconds. `false` fails the moment it
/// starts, so each gap is the wait from a failure to the next start.
fn gaps(report: &Report) -> Vec<u64> {
    let starts = report.starts_of("t");
    for (i, start) in starts.iter().enumerate() {
        assert_eq!(start.attempt, i as u32 + 1, "attempts start once, in order");
    }
    starts.windows(2).map(|w| (w[1].at - w[0].at) / S).collect()
}

#[tokio::test]
async fn twenty_attempts_wait_the_capped_exponential_delays() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(&always_fails(20)).await;

    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.state("t"), (TaskState::Failed, 20));
    let expected: Vec<u64> = (1..20).map(expected_delay).collect();
    assert_eq!(gaps(&report), expected);
    assert_eq!(&expected[..6], [300, 600, 1200, 2400, 3600, 3600]);
    assert_eq!(report.ended_at(), expected.iter().sum::<u64>() * S);
}

#[tokio::test]
async fn a_thousand_and_one_attempts_end_failed_after_the_exact_total_wait() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(&always_fails(1001)).await;

    assert_eq!(report.status(), RunStatus::Failed);
    assert_eq!(report.state("t"), (TaskState::Failed, 1001));
    assert_eq!(report.starts_of("t").len(), 1001);
    let gaps = gaps(&report);
    let expected: Vec<u64> = (1..=1000).map(expected_delay).collect();
    assert_eq!(gaps, expected);
    let total: u64 = gaps.iter().sum();
    assert_eq!(total, 3_590_100);
    assert_eq!(total, ((41 * 24 + 13) * 60 + 15) * 60, "41 d 13 h 15 min");
    assert_eq!(report.ended_at(), total * S);
    let failure = report.task("t").failure.clone().expect("failure kept");
    assert_eq!(failure.kind, "error");
}

#[tokio::test]
async fn full_jitter_keeps_every_wait_within_its_cap() {
    let yaml = always_fails(12).replace("jitter: none", "jitter: full");
    let mut sim = Sim::new();
    let report = sim.run_yaml(&yaml).await;

    assert_eq!(report.state("t"), (TaskState::Failed, 12));
    let starts = report.starts_of("t");
    for (n, pair) in (1u32..).zip(starts.windows(2)) {
        let waited = pair[1].at - pair[0].at;
        assert!(
            waited <= expected_delay(n) * S,
            "retry {n} waited {waited} ms"
        );
    }
}

#[tokio::test]
async fn every_ended_attempt_is_kept_in_the_history() {
    let mut sim = Sim::new();
    let report = sim
        .run_yaml(
            r#"
name: history
tasks:
  t:
    run: {command: ["fail-once"]}
    retry: {max_attempts: 3, backoff: fixed, initial_delay: 10s}
  w:
    timeout: 5s
    run: {command: ["sleep", "60"]}
    retry: {max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [timeout]}
"#,
        )
        .await;
    assert_eq!(report.status(), RunStatus::Failed);
    let run_id = report.run.id.clone();
    let history = aloft_local::query::attempts(sim.runner().db(), &run_id).unwrap();
    let shown: Vec<(&str, u32, &str, Option<&str>)> = history
        .iter()
        .map(|a| {
            (
                a.task.as_str(),
                a.attempt,
                a.state.as_str(),
                a.failure.as_ref().map(|f| f.0.as_str()),
            )
        })
        .collect();
    assert_eq!(
        shown,
        [
            ("t", 1, "failed", Some("error")),
            ("t", 2, "succeeded", None),
            ("w", 1, "timed_out", Some("timeout")),
            ("w", 2, "timed_out", Some("timeout")),
        ]
    );
    let t2 = &history[1];
    assert_eq!(t2.started_at, Some(history[0].ended_at + 10 * S));
}
