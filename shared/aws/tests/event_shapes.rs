//! Every event shape aloft's functions receive from AWS, read from fixtures written in
//! the exact shapes AWS delivers them: an SQS batch from Lambda's event source mapping,
//! Lambda destination records, an EventBridge Scheduler invocation, EventBridge events
//! (as is and wrapped by an input transformer) and a direct request.

use aws_lambda_events::event::sqs::SqsEvent;
use serde_json::{Value, json};

use aloft_aws::batch::{Received, batch_response, from_sqs_event, parse_body};
use aloft_aws::destination::DestinationRecord;
use aloft_aws::trigger::{Trigger, TriggerError, event_input, parse, scheduler_invocation};
use aloft_core::definition::Overlap;
use aloft_core::{Failure, RunStatus};
use aloft_engine::message::{Message, Outcome, TaskKey};
use aloft_engine::record::{RunRecord, WatchLeg};

/// The run every task fixture belongs to.
const RUN_ID: &str = "20261204-020003-5c1e9a7f02bd";

/// A fixture's text.
/// When a record says its invoke ended, in ms since the epoch: the attempt is judged at
/// that time, not when the record is handled.
fn recorded_at(record: &str) -> u64 {
    let record: Value = serde_json::from_str(record).expect("a JSON record");
    let stamp: jiff::Timestamp = record["timestamp"]
        .as_str()
        .expect("a timestamp")
        .parse()
        .expect("an RFC 3339 timestamp");
    u64::try_from(stamp.as_millisecond()).expect("after 1970")
}

fn fixture(name: &str) -> String {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("cannot read {path}: {e}"))
}

/// A fixture as JSON.
fn fixture_json(name: &str) -> Value {
    serde_json::from_str(&fixture(name)).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn bad_request(event: &Value) -> String {
    match parse(event) {
        Err(TriggerError::BadRequest(message)) => message,
        other => panic!("{event} should be a bad request, got {other:?}"),
    }
}

// SQS batches ----------------------------------------------------------------------

fn sqs_batch() -> Vec<Received> {
    let event: SqsEvent = serde_json::from_str(&fixture("sqs-event.json")).expect("an SQS event");
    from_sqs_event(event)
}

#[test]
fn an_sqs_event_yields_each_message_with_its_id_body_and_receive_count() {
    let batch = sqs_batch();
    let seen: Vec<(&str, u32)> = batch
        .iter()
        .map(|r| (r.id.as_str(), r.receive_count))
        .collect();
    assert_eq!(
        seen,
        [
            ("db052b08-9999-4fc9-8bb3-c96938a0f416", 1),
            ("17958c7d-2e91-42b0-a579-2cf76bd6c8eb", 1),
            ("a4822f66-c47c-4dd5-8aaf-1782803efb29", 4),
        ]
    );
    assert_eq!(
        batch[0].body,
        r#"{"type":"dispatch","run_id":"20261204-020003-5c1e9a7f02bd","key":{"task":"extract"},"attempt":1}"#
    );
    assert!(
        batch[1]
            .body
            .starts_with(r#"{"version":"1.0","timestamp":"2026-12-04T02:01:09.561Z","#),
        "{}",
        batch[1].body
    );
    assert_eq!(batch[2].body, "order A-1003 shipped, please re-run enrich");
}

#[test]
fn an_aloft_message_body_reads_as_that_message() {
    let batch = sqs_batch();
    let expected = Message::Dispatch {
        run_id: RUN_ID.into(),
        key: TaskKey::task("extract"),
        attempt: 1,
    };
    assert_eq!(parse_body(&batch[0].body).expect("a dispatch"), expected);
    // The fixture's body is exactly what aloft itself sends.
    let sent = serde_json::to_value(&expected).expect("serialise");
    let body: Value = serde_json::from_str(&batch[0].body).expect("JSON");
    assert_eq!(body, sent);
}

#[test]
fn a_destination_record_body_reads_as_the_attempts_result() {
    let batch = sqs_batch();
    assert_eq!(
        parse_body(&batch[1].body).expect("a destination record"),
        Message::Complete {
            run_id: RUN_ID.into(),
            key: TaskKey::item("enrich", 0),
            attempt: 1,
            outcome: Outcome::Succeeded {
                output: json!({"order_id": "A-1001", "customer": "C-12", "lines": 1, "total": 19}),
            },
            ended_at: Some(recorded_at(&batch[1].body)),
            started_at: None,
            run: None,
        }
    );
}

#[test]
fn a_garbage_body_is_refused() {
    let batch = sqs_batch();
    let error = parse_body(&batch[2].body).expect_err("not a message");
    assert!(
        error.to_string().starts_with("not an aloft message"),
        "{error}"
    );
}

#[test]
fn the_refused_message_alone_is_reported_back() {
    let batch = sqs_batch();
    let failed: Vec<String> = batch
        .iter()
        .filter(|r| parse_body(&r.body).is_err())
        .map(|r| r.id.clone())
        .collect();
    let response = serde_json::to_value(batch_response(failed)).expect("serialise");
    assert_eq!(
        response,
        json!({"batchItemFailures": [{"itemIdentifier": "a4822f66-c47c-4dd5-8aaf-1782803efb29"}]})
    );
}

#[test]
fn a_batch_response_has_exactly_the_partial_batch_shape() {
    let response = serde_json::to_value(batch_response(vec![
        "17958c7d-2e91-42b0-a579-2cf76bd6c8eb".into(),
        "a4822f66-c47c-4dd5-8aaf-1782803efb29".into(),
    ]))
    .expect("serialise");
    assert_eq!(
        response,
        json!({"batchItemFailures": [
            {"itemIdentifier": "17958c7d-2e91-42b0-a579-2cf76bd6c8eb"},
            {"itemIdentifier": "a4822f66-c47c-4dd5-8aaf-1782803efb29"},
        ]})
    );
    let none = serde_json::to_value(batch_response(Vec::new())).expect("serialise");
    assert_eq!(none, json!({"batchItemFailures": []}));
}

// Lambda destination records -------------------------------------------------------

fn record_message(name: &str) -> Message {
    parse_body(&fixture(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn a_destination_record_keeps_every_field_lambda_writes() {
    let record: DestinationRecord =
        serde_json::from_str(&fixture("destination-failure.json")).expect("a record");
    assert_eq!(record.version, "1.0");
    assert_eq!(record.timestamp, "2026-12-04T02:04:52.918Z");
    assert_eq!(
        record.request_context.request_id,
        "5e8d21b7-0c4a-4b93-a6f1-72c9d0e4b3a5"
    );
    assert_eq!(
        record.request_context.function_arn,
        "arn:aws:lambda:eu-west-1:123456789012:function:enrich-orders:$LATEST"
    );
    assert_eq!(record.request_context.condition, "RetriesExhausted");
    assert_eq!(record.request_context.approximate_invoke_count, 3);
    let response = record.response_context.expect("a response context");
    assert_eq!(response.status_code, 200);
    assert_eq!(response.executed_version, "$LATEST");
    assert_eq!(response.function_error.as_deref(), Some("Unhandled"));

    let aged: DestinationRecord =
        serde_json::from_str(&fixture("destination-event-age.json")).expect("a record");
    assert_eq!(aged.request_context.condition, "EventAgeExceeded");
    assert_eq!(aged.response_context, None);
    assert_eq!(aged.response_payload, Value::Null);
}

#[test]
fn a_success_record_completes_the_item_with_the_functions_output() {
    // 2026-12-04T02:01:17.204Z, the record's own timestamp.
    assert_eq!(
        recorded_at(&fixture("destination-success.json")),
        1_796_349_677_204
    );
    assert_eq!(
        record_message("destination-success.json"),
        Message::Complete {
            run_id: RUN_ID.into(),
            key: TaskKey::item("enrich", 2),
            attempt: 1,
            outcome: Outcome::Succeeded {
                output: json!({
                    "order_id": "A-1003",
                    "customer": "C-77",
                    "lines": 4,
                    "total": 129.5,
                    "tags": ["priority", "eu"],
                    "gift": null,
                }),
            },
            ended_at: Some(recorded_at(&fixture("destination-success.json"))),
            // run.attempt_started_at of the task document, 2026-12-04T02:01:15.880Z.
            started_at: Some(1_796_349_675_880),
            run: Some(Box::new(RunRecord {
                id: RUN_ID.into(),
                workflow: "nightly-etl".into(),
                version: "61bae0c6e42850ba".into(),
                status: RunStatus::Running,
                // The document's input, which the carried run leaves out.
                input: json!({"region": "eu"}),
                key: Some("schedule:2026-12-04T02:00:00Z".into()),
                created_at: 1_796_349_603_412,
                started_at: Some(1_796_349_603_530),
                ended_at: None,
                deadline_at: Some(1_796_356_803_530),
                sla_missed: false,
                unsettled: 1,
                failed: 0,
                scheduled_time: 1_796_349_600_000,
                workdir: None,
                watch: Some(WatchLeg {
                    at: 1_796_350_503_530,
                    leg: 4_503_599_627_370_495,
                }),
            })),
        }
    );
}

#[test]
fn a_carried_run_is_taken_only_for_the_documents_own_run() {
    let mut body: Value = serde_json::from_str(&fixture("destination-success.json")).expect("JSON");
    body["requestPayload"]["aloft"]["id"] = json!("20261204-999999-000000000000");
    let Message::Complete { run, .. } = parse_body(&body.to_string()).expect("a record") else {
        panic!("not a completion");
    };
    assert_eq!(run, None, "a copy of another run is not this run's");
    body["requestPayload"]["aloft"] = json!({"id": RUN_ID, "status": "running"});
    let Message::Complete { run, .. } = parse_body(&body.to_string()).expect("a record") else {
        panic!("not a completion");
    };
    assert_eq!(
        run, None,
        "an incomplete copy is read from the table instead"
    );
}

#[test]
fn a_retries_exhausted_record_fails_the_item_with_the_functions_error() {
    assert_eq!(
        record_message("destination-failure.json"),
        Message::Complete {
            run_id: RUN_ID.into(),
            key: TaskKey::item("enrich", 1),
            // aloft's attempt, from the task document, not Lambda's invoke count.
            attempt: 2,
            outcome: Outcome::Failed {
                failure: Failure::new(
                    "OrderMissing",
                    "enrich-orders: order A-1002 not found in table orders-eu"
                ),
            },
            ended_at: Some(recorded_at(&fixture("destination-failure.json"))),
            started_at: Some(1_796_349_891_300),
            run: None,
        }
    );
}

#[test]
fn an_event_age_exceeded_record_fails_the_item_without_a_response() {
    assert_eq!(
        record_message("destination-event-age.json"),
        Message::Complete {
            run_id: RUN_ID.into(),
            key: TaskKey::item("enrich", 0),
            attempt: 1,
            outcome: Outcome::Failed {
                failure: Failure::error(
                    "enrich-orders: Lambda gave up on the invoke (EventAgeExceeded) before it ran"
                ),
            },
            ended_at: Some(recorded_at(&fixture("destination-event-age.json"))),
            // A task document without the attempt's start: the record is read for it.
            started_at: None,
            // Nor the run: it is read too.
            run: None,
        }
    );
}

#[test]
fn a_record_of_a_function_aloft_did_not_start_is_refused_by_the_missing_field() {
    let error = parse_body(&fixture("destination-foreign.json")).expect_err("not aloft's");
    let text = error.to_string();
    assert!(text.contains("request payload has no run.id"), "{text}");

    // A document that lacks only one of the fields naming the attempt is refused by it.
    for (path, missing) in [
        (&["requestPayload", "task"][..], "task"),
        (&["requestPayload", "run", "attempt"][..], "run.attempt"),
    ] {
        let mut record = fixture_json("destination-success.json");
        let (last, parents) = path.split_last().expect("a path");
        let mut parent = &mut record;
        for name in parents {
            parent = &mut parent[*name];
        }
        parent
            .as_object_mut()
            .expect("an object")
            .remove(*last)
            .expect("the field was there");
        let error = parse_body(&record.to_string()).expect_err("incomplete");
        let text = error.to_string();
        assert!(
            text.contains(&format!("request payload has no {missing}:")),
            "{text}"
        );
    }
}

// Trigger events -------------------------------------------------------------------

#[test]
fn a_scheduler_invocation_is_keyed_by_its_tick() {
    let request = parse(&fixture_json("scheduler-invocation.json")).expect("a tick");
    let tick = jiff::tz::TimeZone::UTC
        .to_timestamp(jiff::civil::date(2026, 12, 4).at(2, 0, 0, 0))
        .expect("a UTC time")
        .as_millisecond();
    assert_eq!(tick, 1_796_349_600_000);
    assert_eq!(
        request,
        Trigger {
            workflow: "nightly-etl".into(),
            input: json!({}),
            idempotency_key: Some("schedule:2026-12-04T02:00:00Z".into()),
            scheduled_time: Some(u64::try_from(tick).expect("after 1970")),
            event: None,
            overlap: None,
        }
    );
}

#[test]
fn an_eventbridge_event_asking_for_a_run_is_keyed_by_its_id() {
    let event = fixture_json("eventbridge-event.json");
    assert_eq!(
        parse(&event).expect("a run request"),
        Trigger {
            workflow: "order-sync".into(),
            input: json!({"store": "eu-7", "since": "2026-12-04T09:00:00Z", "full": false}),
            idempotency_key: Some("event:6f2d8c41-a9e3-7b50-1c4d-e83f09a2b765".into()),
            scheduled_time: None,
            event: None,
            overlap: None,
        }
    );
    assert_eq!(
        parse(&event).expect("again").input,
        event["detail"]["input"]
    );
}

#[test]
fn a_wrapped_eventbridge_event_is_kept_for_the_workflows_triggers() {
    let wrapped = fixture_json("eventbridge-wrapped.json");
    let request = parse(&wrapped).expect("a wrapped event");
    assert_eq!(request.workflow, "order-sync");
    assert_eq!(request.event.as_ref(), Some(&wrapped["event"]));
    // Until the definition's input template applies, the event stands as the input.
    assert_eq!(request.input, wrapped["event"]);
    assert_eq!(request.input["detail"]["object"]["size"], json!(48213));
    assert_eq!(
        request.idempotency_key.as_deref(),
        Some("event:b1e07a5d-4c38-92f6-d0a1-57c2e8f4b913")
    );
    assert_eq!(request.scheduled_time, None);
}

#[test]
fn a_wrapped_event_without_an_id_is_refused() {
    let mut wrapped = fixture_json("eventbridge-wrapped.json");
    wrapped["event"]
        .as_object_mut()
        .expect("an event")
        .remove("id");
    let text = bad_request(&wrapped);
    assert!(
        text.starts_with("a wrapped EventBridge event for workflow \"order-sync\": the event has no text field `id`"),
        "{text}"
    );
}

/// The stored definition the wrapped fixture's rule was made for: two event triggers.
fn order_sync() -> aloft_core::Definition {
    aloft_core::source::load_str("order-sync.yaml", &fixture("order-sync.yaml"))
        .unwrap_or_else(|e| panic!("order-sync.yaml is invalid: {e}"))
}

#[test]
fn a_wrapped_event_takes_its_input_from_the_first_matching_trigger() {
    let wrapped = fixture_json("eventbridge-wrapped.json");
    let input = event_input(&order_sync(), &wrapped["event"]).expect("a matching trigger");
    assert_eq!(
        input,
        json!({
            "bucket": "shop-order-drops",
            "key": "eu-7/orders-2026-12-04T0941.csv",
            "size": 48213,
            "event_id": "b1e07a5d-4c38-92f6-d0a1-57c2e8f4b913",
            "etag": null,
            "full": false
        })
    );
}

#[test]
fn a_trigger_without_a_template_takes_the_whole_event() {
    let mut event = fixture_json("eventbridge-wrapped.json")["event"].clone();
    event["detail"]["object"]["key"] = json!("eu-7/manual/resync.json");
    let input = event_input(&order_sync(), &event).expect("the second trigger");
    assert_eq!(input, event);
}

#[test]
fn a_wrapped_event_no_trigger_matches_is_refused_naming_workflow_and_event() {
    let mut event = fixture_json("eventbridge-wrapped.json")["event"].clone();
    event["detail"]["bucket"]["name"] = json!("someone-elses-bucket");
    let error = event_input(&order_sync(), &event).expect_err("no trigger matches");
    let TriggerError::BadRequest(text) = error else {
        panic!("a bad request, not {error:?}");
    };
    assert_eq!(
        text,
        "event \"b1e07a5d-4c38-92f6-d0a1-57c2e8f4b913\" matches no event trigger pattern of \
         workflow \"order-sync\" (2 checked): the EventBridge rule and the stored definition \
         are out of step; put the workflow again, or fix the rule's pattern"
    );

    let mut without = order_sync();
    without.events.clear();
    let error = event_input(&without, &event).expect_err("no triggers at all");
    assert!(
        error
            .to_string()
            .starts_with("workflow \"order-sync\" has no event triggers"),
        "{error}"
    );
}

#[test]
fn a_direct_request_is_taken_as_given() {
    assert_eq!(
        parse(&fixture_json("direct-request.json")).expect("a request"),
        Trigger {
            workflow: "order-sync".into(),
            input: json!({"store": "eu-7", "since": "2026-12-03T00:00:00Z", "full": true}),
            idempotency_key: Some("backfill-eu-7-2026-12-03".into()),
            scheduled_time: None,
            event: None,
            overlap: None,
        }
    );
    // Without a key or an input: no key (the function keys it by request id), input {}.
    assert_eq!(
        parse(&json!({"workflow": "order-sync", "idempotency_key": null})).expect("a request"),
        Trigger {
            workflow: "order-sync".into(),
            input: json!({}),
            idempotency_key: None,
            scheduled_time: None,
            event: None,
            overlap: None,
        }
    );
}

#[test]
fn a_direct_request_may_name_its_own_overlap_policy() {
    let request = json!({"workflow": "order-sync", "overlap": "buffer_one"});
    let trigger = parse(&request).expect("a request");
    assert_eq!(trigger.overlap, Some(Overlap::BufferOne));
    assert_eq!(trigger.idempotency_key, None);
    for (text, policy) in [
        ("allow", Overlap::Allow),
        ("skip", Overlap::Skip),
        ("cancel_running", Overlap::CancelRunning),
    ] {
        let request = json!({"workflow": "order-sync", "overlap": text});
        assert_eq!(parse(&request).expect(text).overlap, Some(policy));
    }
    let plain = parse(&json!({"workflow": "order-sync", "overlap": null})).expect("null");
    assert_eq!(plain.overlap, None);
}

#[test]
fn an_unknown_overlap_policy_is_a_bad_request_naming_it() {
    let error = parse(&json!({"workflow": "order-sync", "overlap": "queue_all"}))
        .expect_err("no such policy");
    assert!(matches!(error, TriggerError::BadRequest(_)), "{error:?}");
    assert!(error.to_string().contains("\"queue_all\""), "{error}");
    assert!(error.to_string().contains("buffer_one"), "{error}");
    let error = parse(&json!({"workflow": "order-sync", "overlap": 3})).expect_err("a number");
    assert!(
        error.to_string().contains("overlap must be text"),
        "{error}"
    );
}

#[test]
fn a_scheduler_invocation_built_for_a_backfill_is_keyed_like_a_fired_tick() {
    let tick: jiff::Timestamp = "2026-12-04T02:00:00.250Z".parse().expect("a time");
    let invocation = scheduler_invocation("nightly-etl", tick);
    assert_eq!(
        invocation,
        json!({"workflow": "nightly-etl", "scheduled_time": "2026-12-04T02:00:00Z"})
    );
    let trigger = parse(&invocation).expect("a tick");
    assert_eq!(
        trigger.idempotency_key,
        Some(aloft_core::schedule::ticks::tick_key(tick))
    );
    assert_eq!(trigger.scheduled_time, Some(1_796_349_600_000));
}

#[test]
fn a_request_that_is_not_an_object_is_refused_naming_it() {
    assert_eq!(
        bad_request(&json!(42)),
        "a trigger request must be a JSON object, not 42"
    );
    assert_eq!(
        bad_request(&json!(["order-sync"])),
        r#"a trigger request must be a JSON object, not ["order-sync"]"#
    );
}

#[test]
fn a_request_without_a_workflow_is_refused_naming_the_field() {
    assert_eq!(
        bad_request(&json!({"input": {"store": "eu-7"}})),
        r#"a trigger request has no text field "workflow""#
    );
    assert_eq!(
        bad_request(&json!({"workflow": 7})),
        r#"a trigger request has no text field "workflow""#
    );
    let mut event = fixture_json("eventbridge-event.json");
    event["detail"]
        .as_object_mut()
        .expect("a detail")
        .remove("workflow");
    assert_eq!(
        bad_request(&event),
        r#"an EventBridge event's detail has no text field "workflow""#
    );
    let mut wrapped = fixture_json("eventbridge-wrapped.json");
    wrapped
        .as_object_mut()
        .expect("an object")
        .remove("workflow");
    assert_eq!(
        bad_request(&wrapped),
        r#"a wrapped EventBridge event has no text field "workflow""#
    );
}

#[test]
fn a_key_that_is_not_text_is_refused_naming_it() {
    assert_eq!(
        bad_request(&json!({"workflow": "order-sync", "idempotency_key": 42})),
        "idempotency_key must be text, not 42"
    );
    assert_eq!(
        bad_request(&json!({"workflow": "order-sync", "idempotency_key": {"k": 1}})),
        r#"idempotency_key must be text, not {"k":1}"#
    );
}

#[test]
fn a_malformed_scheduled_time_is_refused_naming_it() {
    let text = bad_request(&json!({"workflow": "nightly-etl", "scheduled_time": "tomorrow 2am"}));
    assert!(
        text.starts_with(r#"scheduled_time "tomorrow 2am" is not an RFC 3339 time: "#),
        "{text}"
    );
    // A tick without its zone is not an instant.
    let text =
        bad_request(&json!({"workflow": "nightly-etl", "scheduled_time": "2026-12-04T02:00:00"}));
    assert!(
        text.starts_with(r#"scheduled_time "2026-12-04T02:00:00" is not an RFC 3339 time: "#),
        "{text}"
    );
    let text =
        bad_request(&json!({"workflow": "nightly-etl", "scheduled_time": 1796349600000_u64}));
    assert!(text.starts_with("scheduled_time must be"), "{text}");
}
