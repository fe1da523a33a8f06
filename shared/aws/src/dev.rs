//! `aloft dev`: the four handlers on this machine, fed by polling the three SQS queues.
//!
//! In the cloud, Lambda's SQS event source mappings receive messages and invoke the
//! plan, dispatch and complete functions with batches; these pollers stand in for them
//! against any AWS-compatible endpoint, handing each received batch to the same
//! [`handle_batch`] the functions use and deleting only the messages that succeeded.
//! A failed message becomes visible again after the queue's visibility timeout, and
//! after `max_receives` deliveries the queue's redrive policy moves it to its
//! dead-letter queue, as in the cloud.

use std::time::Duration;

use aws_sdk_sqs::types::{DeleteMessageBatchRequestEntry, MessageSystemAttributeName};
use tracing::{debug, warn};

use aloft_engine::Engine;
use aloft_engine::message::QueueName;
use aloft_engine::ports::{Clock, Events, Invoker, Queue, Store};

use crate::batch::{Received, handle_batch};
use crate::error::sqs_error;
use crate::{AwsEngine, Backend};

/// Poll settings.
#[derive(Clone, Copy, Debug)]
pub struct PollOptions {
    /// Long-poll wait of one receive, in seconds (0 to 20).
    pub wait_seconds: i32,
}

impl Default for PollOptions {
    fn default() -> Self {
        Self { wait_seconds: 5 }
    }
}

/// Receive one batch from `queue`, handle it, delete what succeeded. Returns how many
/// messages were received.
pub async fn poll_once<S, Q, I, C, E>(
    backend: &Backend,
    engine: &Engine<S, Q, I, C, E>,
    queue: QueueName,
    options: PollOptions,
) -> Result<usize, aloft_engine::ports::PortError>
where
    S: Store,
    Q: Queue,
    I: Invoker,
    C: Clock,
    E: Events,
{
    let url = match queue {
        QueueName::Plan => &backend.settings.queues.plan,
        QueueName::Dispatch => &backend.settings.queues.dispatch,
        QueueName::Complete => &backend.settings.queues.complete,
    };
    let received = backend
        .sqs
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .wait_time_seconds(options.wait_seconds)
        .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
        .send()
        .await
        .map_err(|e| sqs_error("ReceiveMessage", &e))?;
    let messages = received.messages.unwrap_or_default();
    if messages.is_empty() {
        return Ok(0);
    }
    let mut handles = std::collections::HashMap::new();
    let batch: Vec<Received> = messages
        .into_iter()
        .map(|m| {
            let id = m.message_id.clone().unwrap_or_default();
            if let Some(handle) = m.receipt_handle.clone() {
                handles.insert(id.clone(), handle);
            }
            Received {
                id,
                body: m.body.clone().unwrap_or_default(),
                receive_count: m
                    .attributes
                    .as_ref()
                    .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            }
        })
        .collect();
    let count = batch.len();
    let failed = handle_batch(engine, batch, backend.settings.max_receives).await;
    let done: Vec<DeleteMessageBatchRequestEntry> = handles
        .iter()
        .filter(|(id, _)| !failed.contains(id))
        .filter_map(|(id, handle)| {
            DeleteMessageBatchRequestEntry::builder()
                .id(id.replace(
                    |c: char| !c.is_ascii_alphanumeric() && c != '-' && c != '_',
                    "_",
                ))
                .receipt_handle(handle)
                .build()
                .ok()
        })
        .collect();
    if !done.is_empty() {
        backend
            .sqs
            .delete_message_batch()
            .queue_url(url)
            .set_entries(Some(done))
            .send()
            .await
            .map_err(|e| sqs_error("DeleteMessageBatch", &e))?;
    }
    debug!(
        queue = queue.as_str(),
        received = count,
        failed = failed.len(),
        "batch handled"
    );
    Ok(count)
}

/// Poll one queue until `stop` resolves.
pub async fn poll(backend: &Backend, engine: &AwsEngine, queue: QueueName, options: PollOptions) {
    loop {
        if let Err(error) = poll_once(backend, engine, queue, options).await {
            warn!(queue = queue.as_str(), %error, "poll failed; trying again shortly");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Poll all three queues, each with `per_queue` pollers, until the future is dropped.
pub async fn serve(backend: &Backend, engine: &AwsEngine, options: PollOptions, per_queue: usize) {
    let mut pollers = Vec::new();
    for queue in [QueueName::Plan, QueueName::Dispatch, QueueName::Complete] {
        for _ in 0..per_queue.max(1) {
            pollers.push(poll(backend, engine, queue, options));
        }
    }
    futures::future::join_all(pollers).await;
}
