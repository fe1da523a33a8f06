//! Overlap policies on the engine's trigger path (every start: schedule tick, event,
//! manual): skip, allow, buffer_one, cancel_running, a manual start that names its own
//! policy, and a duplicated tick. The fake clock of the scenario harness; no sleeps.

mod sim;

use serde_json::json;

use aloft_core::definition::Overlap;
use aloft_core::{RunStatus, TaskState};
use aloft_engine::overlap::{CANCELLED, Going, Verdict, decide};
use aloft_engine::ports::Store;
use aloft_engine::{Admission, Started};
use sim::{S, Sim, request};

/// A workflow whose one task takes a minute, with the given overlap policy.
fn workflow(overlap: &str) -> String {
    format!(
        "name: w\nschedule: {{expression: \"rate(1 hour)\", overlap: {overlap}}}\n\
         tasks: {{t: {{run: {{command: [sleep, \"60\"]}}}}}}\n"
    )
}

async fn start(sim: &Sim, yaml: &str) -> Started {
    sim.start_request(request(yaml, json!({}), None))
        .await
        .expect("start")
}

async fn start_with(sim: &Sim, yaml: &str, overlap: Overlap) -> Started {
    sim.runner()
        .start_with(request(yaml, json!({}), None), Some(overlap))
        .await
        .expect("start")
}

fn runs_in(sim: &Sim) -> u32 {
    sim.raw()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("count runs")
}

async fn status(sim: &Sim, run_id: &str) -> RunStatus {
    sim.run_record(run_id).await.status
}

/// Start a run and drive it until its task has run for 10 s.
async fn running(sim: &mut Sim, yaml: &str) -> String {
    let first = start(sim, yaml).await;
    assert!(first.created);
    assert_eq!(first.admission, Admission::Started);
    sim.run_until(&first.run_id, 10 * S).await;
    assert_eq!(status(sim, &first.run_id).await, RunStatus::Running);
    first.run_id
}

#[test]
fn each_policy_decides_on_the_runs_going() {
    let going = |buffered: bool| {
        vec![
            Going {
                run_id: "a".into(),
                buffered: false,
            },
            Going {
                run_id: "b".into(),
                buffered,
            },
        ]
    };
    let ids = vec!["a".to_owned(), "b".to_owned()];
    for policy in [
        Overlap::Skip,
        Overlap::Allow,
        Overlap::BufferOne,
        Overlap::CancelRunning,
    ] {
        assert_eq!(
            decide(policy, &[]),
            Verdict::Start,
            "{policy:?} with none going"
        );
    }
    assert_eq!(decide(Overlap::Allow, &going(false)), Verdict::Start);
    assert_eq!(
        decide(Overlap::Skip, &going(false)),
        Verdict::Skip {
            active: ids.clone()
        }
    );
    assert_eq!(
        decide(Overlap::BufferOne, &going(false)),
        Verdict::Buffer {
            behind: ids.clone()
        }
    );
    assert_eq!(
        decide(Overlap::BufferOne, &going(true)),
        Verdict::Skip {
            active: ids.clone()
        },
        "one run waits already"
    );
    assert_eq!(
        decide(Overlap::CancelRunning, &going(true)),
        Verdict::CancelThenStart { runs: ids }
    );
}

#[tokio::test]
async fn skip_makes_no_run_while_one_is_going_and_says_so() {
    let yaml = workflow("skip");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;

    let skipped = start(&sim, &yaml).await;
    assert_eq!(
        skipped,
        Started {
            run_id: first.clone(),
            created: false,
            admission: Admission::Skipped {
                active: vec![first.clone()]
            },
        }
    );
    assert_eq!(runs_in(&sim), 1);

    let report = sim.run_to_end(&first).await;
    assert_eq!(report.status(), RunStatus::Succeeded);
    let next = start(&sim, &yaml).await;
    assert!(next.created, "nothing going any more");
    assert_eq!(next.admission, Admission::Started);
    assert_eq!(runs_in(&sim), 2);
}

#[tokio::test]
async fn a_queued_run_counts_as_going_for_skip() {
    let yaml = workflow("skip");
    let sim = Sim::new();
    let first = start(&sim, &yaml).await;
    assert_eq!(status(&sim, &first.run_id).await, RunStatus::Queued);
    let second = start(&sim, &yaml).await;
    assert!(!second.created);
    assert!(matches!(second.admission, Admission::Skipped { .. }));
    assert_eq!(runs_in(&sim), 1);
}

#[tokio::test]
async fn allow_runs_them_side_by_side() {
    let yaml = workflow("allow");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;
    let second = start(&sim, &yaml).await;
    assert!(second.created);
    assert_eq!(second.admission, Admission::Started);
    sim.drive_all(&[first.clone(), second.run_id.clone()], None)
        .await;
    assert_eq!(status(&sim, &first).await, RunStatus::Succeeded);
    assert_eq!(status(&sim, &second.run_id).await, RunStatus::Succeeded);
    assert_eq!(sim.most_running("t"), 2);
}

#[tokio::test]
async fn buffer_one_keeps_one_run_waiting_until_the_running_one_settles() {
    let yaml = workflow("buffer_one");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;

    let waiting = start(&sim, &yaml).await;
    assert!(waiting.created);
    assert_eq!(
        waiting.admission,
        Admission::Buffered {
            behind: vec![first.clone()]
        }
    );
    let third = start(&sim, &yaml).await;
    assert!(!third.created, "at most one run waits");
    assert_eq!(
        third.admission,
        Admission::Skipped {
            active: vec![first.clone(), waiting.run_id.clone()]
        }
    );
    assert_eq!(runs_in(&sim), 2);

    // The waiting run is queued with nothing to plan it.
    sim.run_until(&waiting.run_id, 30 * S).await;
    assert_eq!(status(&sim, &waiting.run_id).await, RunStatus::Queued);
    assert_eq!(
        sim.runner().wake_buffered("w").await.expect("wake"),
        None,
        "the first run is still going"
    );

    let first_report = sim.run_to_end(&first).await;
    assert_eq!(first_report.status(), RunStatus::Succeeded);
    // Settling the first released the waiting run: nothing is left to wake.
    assert_eq!(sim.runner().wake_buffered("w").await.expect("wake"), None);
    let second = sim.run_to_end(&waiting.run_id).await;
    assert_eq!(second.status(), RunStatus::Succeeded);
    assert!(
        second.run.started_at >= first_report.run.ended_at,
        "never side by side"
    );
    assert_eq!(sim.most_running("t"), 1);
}

#[tokio::test]
async fn each_settle_releases_the_run_waiting_behind_it() {
    let yaml = workflow("buffer_one");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;
    let waiting = start(&sim, &yaml).await.run_id;
    sim.run_to_end(&first).await;

    // The settle released the waiting run; the next start waits behind it.
    let next = start(&sim, &yaml).await;
    assert!(next.created);
    assert_eq!(
        next.admission,
        Admission::Buffered {
            behind: vec![waiting.clone()]
        }
    );
    let report = sim.run_to_end(&waiting).await;
    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_eq!(
        sim.runner().wake_buffered("w").await.expect("wake"),
        None,
        "the settle of the run before it released it"
    );
    assert_eq!(
        sim.run_to_end(&next.run_id).await.status(),
        RunStatus::Succeeded
    );
}

#[tokio::test]
async fn cancel_running_stops_the_running_run_then_starts() {
    let yaml = workflow("cancel_running");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;

    let second = start(&sim, &yaml).await;
    assert!(second.created);
    assert_eq!(
        second.admission,
        Admission::Replaced {
            cancelled: vec![first.clone()]
        }
    );
    let old = sim.report(&first).await;
    assert_eq!(old.status(), RunStatus::Cancelled);
    assert_eq!(old.state("t"), (TaskState::Failed, 1));
    assert_eq!(
        old.task("t").failure.as_ref().map(|f| f.kind.as_str()),
        Some(CANCELLED)
    );
    assert_eq!(old.cancels.len(), 1, "its running attempt was stopped");
    assert_eq!(old.cancels[0].at, 10 * S);

    let new = sim.run_to_end(&second.run_id).await;
    assert_eq!(new.status(), RunStatus::Succeeded);
    assert_eq!(new.state("t"), (TaskState::Succeeded, 1));
    assert_eq!(sim.most_running("t"), 1);
}

#[tokio::test]
async fn a_manual_start_may_name_its_own_policy() {
    let yaml = workflow("skip");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;

    let forced = start_with(&sim, &yaml, Overlap::Allow).await;
    assert!(forced.created, "--overlap allow starts one anyway");
    assert_eq!(forced.admission, Admission::Started);
    assert_ne!(forced.run_id, first);

    // A workflow without a schedule allows overlap unless the start says otherwise.
    let plain = "name: p\ntasks: {t: {run: {command: [sleep, \"60\"]}}}\n";
    let one = running(&mut sim, plain).await;
    assert!(start(&sim, plain).await.created);
    let skipped = start_with(&sim, plain, Overlap::Skip).await;
    assert!(!skipped.created);
    match skipped.admission {
        Admission::Skipped { active } => assert_eq!(active.first(), Some(&one)),
        other => panic!("expected a skip, got {other:?}"),
    }
}

#[tokio::test]
async fn a_duplicated_tick_makes_one_run_whatever_the_policy() {
    for policy in ["skip", "buffer_one", "cancel_running", "allow"] {
        let yaml = workflow(policy);
        let sim = Sim::new();
        let tick = || {
            let mut req = request(&yaml, json!({}), Some("schedule:2025-06-10T10:21:00Z"));
            req.scheduled_time = Some(1_749_550_860_000);
            req
        };
        let first = sim.start_request(tick()).await.expect("first delivery");
        let again = sim.start_request(tick()).await.expect("second delivery");
        assert!(first.created, "{policy}");
        assert_eq!(again.run_id, first.run_id, "{policy}");
        assert!(!again.created, "{policy}");
        assert_eq!(again.admission, Admission::Started, "{policy}");
        assert_eq!(runs_in(&sim), 1, "{policy}");
        let run = sim.run_record(&first.run_id).await;
        assert_eq!(run.scheduled_time, 1_749_550_860_000);
        assert_eq!(
            run.status,
            RunStatus::Queued,
            "{policy}: not cancelled by its twin"
        );
    }
}

#[tokio::test]
async fn a_duplicate_of_a_waiting_run_leaves_it_waiting() {
    let yaml = workflow("buffer_one");
    let mut sim = Sim::new();
    let first = running(&mut sim, &yaml).await;
    let tick = || request(&yaml, json!({}), Some("schedule:2025-06-10T11:00:00Z"));
    let waiting = sim.start_request(tick()).await.expect("tick");
    let again = sim.start_request(tick()).await.expect("tick again");
    assert_eq!(again.run_id, waiting.run_id);
    assert!(matches!(again.admission, Admission::Buffered { .. }));
    // Not planned by the duplicate: it still waits for the first run.
    sim.run_until(&waiting.run_id, 40 * S).await;
    assert_eq!(status(&sim, &waiting.run_id).await, RunStatus::Queued);
    assert_eq!(status(&sim, &first).await, RunStatus::Running);
    let going = sim
        .runner()
        .db()
        .active_runs("w")
        .await
        .expect("list")
        .expect("listed");
    assert_eq!(going.len(), 2);
}
