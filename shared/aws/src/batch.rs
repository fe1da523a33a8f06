//! One batch of queue messages through the engine, the way Lambda's SQS event source
//! mapping delivers them (and `aloft dev` polls them): every message is handled, and the
//! ones that failed are reported so that only they are delivered again.
//!
//! A message that has failed on `max_receives` deliveries is given up: its run settles
//! as failed with the reason, and the message is still reported as failed, so that the
//! queue's redrive policy moves it to the dead-letter queue for inspection.

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use futures::future::join_all;
use tracing::{error, warn};

use aloft_engine::Engine;
use aloft_engine::message::Message;
use aloft_engine::ports::{Clock, Events, Invoker, Queue, Store};

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
    let outcomes = join_all(batch.into_iter().map(|received| async move {
        let ok = handle_one(engine, &received, max_receives).await;
        (received.id, ok)
    }))
    .await;
    outcomes
        .into_iter()
        .filter_map(|(id, ok)| (!ok).then_some(id))
        .collect()
}

async fn handle_one<S, Q, I, C, E>(
    engine: &Engine<S, Q, I, C, E>,
    received: &Received,
    max_receives: u32,
) -> bool
where
    S: Store,
    Q: Queue,
    I: Invoker,
    C: Clock,
    E: Events,
{
    let message = match parse_body(&received.body) {
        Ok(message) => message,
        Err(e) => {
            error!(message_id = %received.id, receives = received.receive_count, error = %e, "message cannot be read; it goes to the dead-letter queue after its last receive");
            return false;
        }
    };
    let Err(e) = engine.handle(message.clone()).await else {
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
        };
        let body = serde_json::to_string(&message).expect("serialise");
        assert_eq!(parse_body(&body).expect("parse"), message);
    }
}
