//! One batch of queue messages through the engine, the way Lambda's SQS event source
//! mapping delivers them (and `aloft dev` polls them): every message is handled, and the
//! ones that failed are reported so that only they are delivered again.
//!
//! A message that has failed on `max_receives` deliveries is given up: its run settles
//! as failed with the reason, and the message is still reported as failed, so that the
//! queue's redrive policy moves it to the dead-letter queue for inspection.

use std::collections::HashMap;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;
use tracing::{error, warn};

use aloft_engine::Engine;
use aloft_engine::message::Message;
use aloft_engine::ports::{Clock, Events, Invoker, Queue, Store};
use aloft_engine::record::RunRecord;

use crate::destination::DestinationRecord;

/// One received message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Received {
    /// The queue's id of the message.
    pub id: String,
    /// Its body.
    pub body: String,
    /// How many times it has been received, this time included.
    pub receive_count: u32,
}

/// Why a body is not a message aloft understands.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// Not JSON, or JSON of no known shape.
    #[error("not an aloft message or a Lambda destination record: {0}")]
    Unknown(String),
    /// A destination record of a function aloft did not start.
    #[error(transparent)]
    Record(#[from] crate::destination::RecordError),
}

/// Read a body: one of aloft's own messages, or a Lambda destination record.
pub fn parse_body(body: &str) -> Result<Message, BodyError> {
    let value: serde_json::Value =
        serde_json::from_str(body).map_err(|e| BodyError::Unknown(e.to_string()))?;
    if value.get("requestContext").is_some() && value.get("requestPayload").is_some() {
        let record: DestinationRecord =
            serde_json::from_value(value).map_err(|e| BodyError::Unknown(e.to_string()))?;
        return Ok(record.to_message()?);
    }
    serde_json::from_value(value).map_err(|e| BodyError::Unknown(e.to_string()))
}

/// The messages of an SQS event.
pub fn from_sqs_event(event: SqsEvent) -> Vec<Received> {
    event
        .records
        .into_iter()
        .map(|record| Received {
            id: record.message_id.unwrap_or_default(),
            body: record.body.unwrap_or_default(),
            receive_count: record
                .attributes
                .get("ApproximateReceiveCount")
                .and_then(|c| c.parse().ok())
                .unwrap_or(1),
        })
        .collect()
}

/// The partial batch response naming the failed messages.
pub fn batch_response(failed: Vec<String>) -> SqsBatchResponse {
    let mut response = SqsBatchResponse::default();
    response.batch_item_failures = failed
        .into_iter()
        .map(|id| {
            let mut failure = BatchItemFailure::default();
            failure.item_identifier = id;
            failure
        })
        .collect();
    response
}

/// Handle every message of a batch at once; returns the ids of those that failed.
pub async fn handle_batch<S, Q, I, C, E>(
    engine: &Engine<S, Q, I, C, E>,
    batch: Vec<Received>,
    max_receives: u32,
) -> Vec<String>
where
    S: Store,
    Q: Queue,
    I: Invoker,
    C: Clock,
    E: Events,
{
    let parsed: Vec<(Received, Option<Message>)> = batch
        .into_iter()
        .map(|received| match parse_body(&received.body) {
            Ok(message) => (received, Some(message)),
            Err(e) => {
                error!(message_id = %received.id, receives = received.receive_count, error = %e, "message cannot be read; it goes to the dead-letter queue after its last receive");
                (received, None)
            }
        })
        .collect();
    let runs = shared_runs(
        engine.store(),
        parsed.iter().filter_map(|(_, m)| m.as_ref()),
    )
    .await;
    let outcomes = join_all(parsed.into_iter().map(|(received, message)| {
        let runs = &runs;
        async move {
            let ok = match message {
                Some(message) => {
                    let run = runs.get(message.run_id()).cloned();
                    handle_one(engine, &received, message, run, max_receives).await
                }
                None => false,
            };
            (received.id, ok)
        }
    }))
    .await;
    outcomes
        .into_iter()
        .filter_map(|(id, ok)| (!ok).then_some(id))
        .collect()
}

/// The records of the runs that several of `messages` are about, each read once for
/// all of them (a fan-out's dispatches come ten to a batch): a record read a moment
/// before the handling is no staler than one read at its start, since every write is
/// conditional anyway. A run that cannot be read now is read by each handler, as usual.
async fn shared_runs<'a>(
    store: &impl Store,
    messages: impl Iterator<Item = &'a Message>,
) -> HashMap<String, RunRecord> {
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for message in messages {
        *seen.entry(message.run_id()).or_default() += 1;
    }
    let mut runs = HashMap::new();
    for (run_id, count) in seen {
        if count < 2 {
            continue;
        }
        if let Ok(Some(run)) = store.run(run_id).await {
            runs.insert(run_id.to_owned(), run);
        }
    }
    runs
}

/// Handle one message, `run` its run's record if the batch read it; false when it
/// failed.
async fn handle_one<S, Q, I, C, E>(
    engine: &Engine<S, Q, I, C, E>,
    received: &Received,
    message: Message,
    run: Option<RunRecord>,
    max_receives: u32,
) -> bool
where
    S: Store,
    Q: Queue,
    I: Invoker,
    C: Clock,
    E: Events,
{
    let Err(e) = engine.handle_with_run(message.clone(), run).await else {
        return true;
    };
    let last = received.receive_count >= max_receives;
    warn!(
        message_id = %received.id, run_id = message.run_id(), receives = received.receive_count,
        retryable = e.is_retryable(), last, error = %e, "message failed"
    );
    if last {
        let reason = format!(
            "a {} message failed on all {} deliveries, last with: {e}",
            message.queue().as_str(),
            received.receive_count
        );
        if let Err(give_up) = engine.give_up(&message, &reason).await {
            error!(run_id = message.run_id(), error = %give_up, "could not fail the run of a dead message");
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_engine::message::{Outcome, TaskKey};

    #[test]
    fn own_messages_read_back() {
        let message = Message::Dispatch {
            run_id: "r".into(),
            key: TaskKey::item("load", 3),
            attempt: 2,
        };
        let body = serde_json::to_string(&message).expect("serialise");
        assert_eq!(parse_body(&body).expect("parse"), message);
    }

    #[test]
    fn garbage_is_named_as_such() {
        let error = parse_body("{\"type\": \"launch\"}").expect_err("unknown type");
        assert!(
            error.to_string().starts_with("not an aloft message"),
            "{error}"
        );
        assert!(parse_body("not json").is_err());
    }

    #[test]
    fn a_complete_message_keeps_its_outcome() {
        let message = Message::Complete {
            run_id: "r".into(),
            key: TaskKey::task("t"),
            attempt: 1,
            outcome: Outcome::Succeeded {
                output: serde_json::json!({"n": 1}),
            },
            ended_at: None,
            started_at: None,
            run: None,
        };
        let body = serde_json::to_string(&message).expect("serialise");
        assert_eq!(parse_body(&body).expect("parse"), message);
    }
}
