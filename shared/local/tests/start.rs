//! Idempotent start (S19): one run per (workflow, key), inputs compared canonically, a
//! settled run's key not reused, and simultaneous starts decided by one write.

mod sim;

use std::sync::{Arc, Barrier};

use serde_json::{Value, json};

use aloft_core::RunStatus;
use aloft_engine::ports::Clock;
use aloft_engine::{EngineError, Started};
use aloft_local::{ManualClock, Runner};
use sim::{Sim, request};

const W: &str = "name: w\ntasks: {t: {run: {pass: {result: {}}}}}\n";

fn input(text: &str) -> Value {
    serde_json::from_str(text).expect("input JSON")
}

fn runs_in(sim: &Sim) -> u32 {
    sim.raw()
        .query_row("SELECT count(*) FROM runs", [], |r| r.get(0))
        .expect("count runs")
}

async fn start(sim: &Sim, key: &str, text: &str) -> Result<Started, EngineError> {
    sim.start_request(request(W, input(text), Some(key))).await
}

fn assert_key_conflict(result: Result<Started, EngineError>, run_id: &str, reason: &str) {
    match result {
        Err(EngineError::KeyConflict {
            key, run_id: held, ..
        }) => {
            assert_eq!(key, "run-1");
            assert_eq!(held, run_id, "the error names the run holding the key");
        }
        other => panic!("expected a key conflict ({reason}), got {other:?}"),
    }
}

#[tokio::test]
async fn a_repeated_key_returns_its_running_run_and_refuses_any_other_use() {
    let mut sim = Sim::new();

    // 1. A new run.
    let first = start(&sim, "run-1", r#"{"a":1}"#).await.expect("new run");
    assert!(first.created);
    assert_eq!(runs_in(&sim), 1);

    // 2. The same key and the same input (spaced differently) while it runs.
    let again = start(&sim, "run-1", r#"{ "a": 1 }"#)
        .await
        .expect("same run");
    assert_eq!(again.run_id, first.run_id);
    assert!(!again.created);
    assert_eq!(runs_in(&sim), 1);

    // 3. The same key with another input.
    assert_key_conflict(
        start(&sim, "run-1", r#"{"a":2}"#).await,
        &first.run_id,
        "another input",
    );
    assert_eq!(runs_in(&sim), 1);

    // 4. The run settles; its key is not reusable, even with the same input.
    let report = sim.run_to_end(&first.run_id).await;
    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_key_conflict(
        start(&sim, "run-1", r#"{"a":1}"#).await,
        &first.run_id,
        "settled",
    );
    assert_eq!(runs_in(&sim), 1);
}

#[tokio::test]
async fn inputs_are_compared_in_canonical_json() {
    let sim = Sim::new();
    let one = start(&sim, "run-2", r#"{"a":1,"b":2}"#)
        .await
        .expect("new run");
    let two = start(&sim, "run-2", r#"{"b":2,"a":1}"#)
        .await
        .expect("same run");
    assert!(one.created);
    assert!(!two.created);
    assert_eq!(one.run_id, two.run_id);
    assert_eq!(runs_in(&sim), 1);
    let stored: String = sim
        .raw()
        .query_row("SELECT input FROM runs", [], |r| r.get(0))
        .expect("stored input");
    assert_eq!(stored, r#"{"a":1,"b":2}"#);
    assert_eq!(json!({"b": 2, "a": 1}), input(&stored));
}

#[test]
fn two_simultaneous_starts_make_one_run_and_both_get_its_id() {
    let sim = Sim::new();
    let path = sim.path().to_owned();
    let barrier = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|i| {
            let path = path.clone();
            let barrier = barrier.clone();
            std::thread::spawn(move || {
                // Each thread is its own process-like runner with its own connection,
                // and its own random run id.
                let clock = Arc::new(ManualClock::at(sim::T0));
                for _ in 0..i {
                    clock.random();
                }
                let runner = Runner::open(&path, clock).expect("open");
                barrier.wait();
                sim::block_on(runner.start(request(W, json!({"a": 1}), Some("run-3"))))
                    .expect("start")
            })
        })
        .collect();
    let started: Vec<Started> = threads
        .into_iter()
        .map(|t| t.join().expect("thread"))
        .collect();

    assert_eq!(started[0].run_id, started[1].run_id);
    assert_eq!(started.iter().filter(|s| s.created).count(), 1);
    assert_eq!(runs_in(&sim), 1);
}
