//! Wide fan-out and fan-in (S16): ten thousand items under a concurrency limit, nothing
//! gathers their outputs unasked, and the output size limit is exact and fails only the
//! task that overflows it.

mod sim;

use serde_json::{Value, json};

use aloft_core::{RunStatus, TaskState};
use aloft_engine::OUTPUT_LIMIT;
use sim::Sim;

fn wide_fan_in(item_run: &str) -> String {
    let ids: Vec<u32> = (0..10_000).collect();
    let list = json!({ "ids": ids }).to_string();
    format!(
        r#"
name: wide-fan-in
tasks:
  list: {{run: {{command: [emit, '{list}']}}}}
  each: {{depends_on: [list], for_each: $.list.ids, max_concurrency: 100, run: {item_run}}}
  done: {{depends_on: [each], run: {{pass: {{result: {{ok: true}}}}}}}}
"#
    )
}

fn assert_every_item_succeeded_once(report: &sim::Report) {
    assert_eq!(report.status(), RunStatus::Succeeded);
    assert_eq!(report.state("list"), (TaskState::Succeeded, 1));
    assert_eq!(report.state("done"), (TaskState::Succeeded, 1));
    assert_eq!(report.task("each").state, TaskState::Succeeded);
    let items = report.items("each");
    assert_eq!(items.len(), 10_000);
    for (index, item) in items.iter().enumerate() {
        assert_eq!(item.key.item, Some(index as u32));
        assert_eq!(
            (item.state, item.attempt),
            (TaskState::Succeeded, 1),
            "item {index}"
        );
        assert_eq!(item.item, Some(json!(index)));
    }
}

#[tokio::test]
async fn ten_thousand_pass_items_each_succeed_once_and_done_reads_nothing() {
    let pad = "p".repeat(100);
    let mut sim = Sim::new();
    let yaml = wide_fan_in(&format!("{{pass: {{result: {{pad: {pad}}}}}}}"));
    let report = sim.run_yaml(&yaml).await;

    assert_every_item_succeeded_once(&report);
    let scope = format!("items:{}/each", report.run.id);
    assert!(
        report
            .observed
            .most_leases
            .get(&scope)
            .copied()
            .unwrap_or(0)
            <= 100
    );
    // No message ever carries the items' outputs together (10 000 x ~110 bytes).
    assert!(
        report.observed.largest_message < 1024,
        "a message of {} bytes",
        report.observed.largest_message
    );
    let largest_output = report
        .records
        .iter()
        .filter_map(|r| r.output.as_ref().map(String::len))
        .max();
    let list_output = report.task("list").output.as_ref().map(String::len);
    assert_eq!(largest_output, list_output, "only the id list is large");
    assert_eq!(
        report.task("done").output.as_deref(),
        Some(r#"{"ok":true}"#)
    );
}

#[tokio::test]
async fn ten_thousand_running_items_never_exceed_max_concurrency() {
    let mut sim = Sim::new();
    let report = sim
        .run_yaml(&wide_fan_in(r#"{command: [sleep, "5"]}"#))
        .await;

    assert_every_item_succeeded_once(&report);
    assert_eq!(report.starts_of("each").len(), 10_000);
    assert_eq!(sim.most_running("each"), 100);
    let scope = format!("items:{}/each", report.run.id);
    assert_eq!(report.observed.most_leases.get(&scope), Some(&100));
    // A hundred at a time, 5 s each: 100 rounds.
    assert_eq!(report.ended_at(), 100 * 5 * sim::S);
}

fn output_limit(on: &str) -> String {
    let exact = OUTPUT_LIMIT;
    let over = OUTPUT_LIMIT + 1;
    format!(
        r#"
name: output-limit
tasks:
  exact: {{run: {{command: [output-bytes, "{exact}"]}}}}
  reader: {{depends_on: [exact], run: {{command: ["true"]}}}}
  over:
    retry: {{max_attempts: 2, backoff: fixed, initial_delay: 1s, on: [{on}]}}
    run: {{command: [output-bytes, "{over}"]}}
  after: {{depends_on: [over], trigger_rule: all_done, run: {{command: [cat]}}}}
"#
    )
}

#[tokio::test]
async fn an_output_of_exactly_the_limit_succeeds_and_one_byte_more_fails_that_task() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(&output_limit("timeout")).await;

    assert_eq!(report.state("exact"), (TaskState::Succeeded, 1));
    let stored = report.task("exact").output.as_deref().expect("stored");
    assert_eq!(stored.len(), OUTPUT_LIMIT);
    assert_eq!(report.state("reader"), (TaskState::Succeeded, 1));
    let reader = report.starts_of("reader");
    assert_eq!(
        reader[0].input["upstream"]["exact"].to_string(),
        stored,
        "downstream reads it whole"
    );

    // `on: [timeout]` does not retry a size failure: one attempt.
    assert_eq!(report.state("over"), (TaskState::Failed, 1));
    let failure = report.task("over").failure.clone().expect("failure");
    assert_eq!(failure.kind, "payload_too_large");
    assert!(
        failure.message.contains(&(OUTPUT_LIMIT + 1).to_string()),
        "{}",
        failure.message
    );
    assert_eq!(report.task("over").output, None);
    assert_eq!(report.state("after"), (TaskState::Succeeded, 1));
    let read: Value =
        serde_json::from_str(report.task("after").output.as_deref().expect("echo")).expect("JSON");
    assert_eq!(read["upstream"]["over"], Value::Null);
    assert_eq!(report.status(), RunStatus::Failed);
}

#[tokio::test]
async fn a_retry_list_can_name_payload_too_large() {
    let mut sim = Sim::new();
    let report = sim.run_yaml(&output_limit("payload_too_large")).await;

    assert_eq!(report.state("over"), (TaskState::Failed, 2));
    assert_eq!(report.starts_of("over").len(), 2);
    assert_eq!(report.state("after"), (TaskState::Succeeded, 1));
}

#[tokio::test]
async fn a_fan_in_too_large_to_deliver_fails_before_it_is_gathered() {
    let mut sim = Sim::new();
    let report = sim
        .run_yaml(
            r#"
name: wide-outputs
tasks:
  list: {run: {pass: {result: {xs: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
                                    17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30]}}}}
  each: {depends_on: [list], for_each: $.list.xs, run: {command: [output-bytes, "250000"]}}
  gather: {depends_on: [each], run: {command: [cat]}}
"#,
        )
        .await;

    assert_eq!(report.state("each"), (TaskState::Succeeded, 1));
    assert_eq!(report.state("gather"), (TaskState::Failed, 1));
    let failure = report.task("gather").failure.clone().expect("a failure");
    assert_eq!(failure.kind, "payload_too_large");
    assert!(
        failure.message.contains("would hold 7500000 bytes"),
        "{}",
        failure.message
    );
    assert!(report.starts_of("gather").is_empty(), "gather was started");
}
