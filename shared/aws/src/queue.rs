//! The three queues on SQS. Messages are JSON; sends are batched ten to a request, and
//! delays are whole seconds (rounded up, at most SQS's 15 minutes: the engine re-arms
//! longer waits).

use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::SendMessageBatchRequestEntry;

use aloft_engine::message::{Outgoing, QueueName};
use aloft_engine::ports::{PortError, PortResult, Queue};

use crate::error::sqs_error;
use crate::settings::QueueUrls;

/// Most entries in one SendMessageBatch.
const BATCH: usize = 10;

/// Most bytes of bodies in one SendMessageBatch (SQS allows 256 KiB per request).
const BATCH_BYTES: usize = 250 * 1024;

/// Tries of the entries SQS reports as failed before the send fails.
const TRIES: u32 = 3;

/// The queues on SQS.
#[derive(Clone, Debug)]
pub struct SqsQueue {
    client: Client,
    urls: QueueUrls,
}

impl SqsQueue {
    /// Queues at these URLs.
    pub fn new(client: Client, urls: QueueUrls) -> Self {
        Self { client, urls }
    }

    /// The URL of one queue.
    pub fn url(&self, queue: QueueName) -> &str {
        match queue {
            QueueName::Plan => &self.urls.plan,
            QueueName::Dispatch => &self.urls.dispatch,
            QueueName::Complete => &self.urls.complete,
        }
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Send a Lambda destination record to the complete queue, as Lambda's destination
    /// would deliver it.
    pub async fn send_record(
        &self,
        record: &crate::destination::DestinationRecord,
    ) -> PortResult<()> {
        let body = serde_json::to_string(record)
            .map_err(|e| PortError::terminal(format!("destination record: {e}")))?;
        let url = self.url(QueueName::Complete).to_owned();
        self.send_bodies(&url, vec![(body, 0)]).await
    }

    /// Send bodies to one queue, each with its delay in seconds.
    pub async fn send_bodies(&self, url: &str, bodies: Vec<(String, i32)>) -> PortResult<()> {
        for chunk in chunks(bodies) {
            let mut pending: Vec<SendMessageBatchRequestEntry> = chunk
                .into_iter()
                .enumerate()
                .map(|(i, (body, delay))| {
                    SendMessageBatchRequestEntry::builder()
                        .id(i.to_string())
                        .message_body(body)
                        .delay_seconds(delay)
                        .build()
                        .map_err(|e| PortError::terminal(e.to_string()))
                })
                .collect::<PortResult<_>>()?;
            for attempt in 1..=TRIES {
                let sent = self
                    .client
                    .send_message_batch()
                    .queue_url(url)
                    .set_entries(Some(pending.clone()))
                    .send()
                    .await
                    .map_err(|e| sqs_error("SendMessageBatch", &e))?;
                let failed = sent.failed();
                if failed.is_empty() {
                    break;
                }
                if attempt == TRIES || failed.iter().any(|f| f.sender_fault()) {
                    let first = &failed[0];
                    let message = format!(
                        "SQS SendMessageBatch: {} of {} messages refused ({}: {})",
                        failed.len(),
                        pending.len(),
                        first.code(),
                        first.message().unwrap_or("no message")
                    );
                    return Err(if first.sender_fault() {
                        PortError::terminal(message)
                    } else {
                        PortError::retryable(message)
                    });
                }
                let retry: Vec<&str> = failed.iter().map(|f| f.id()).collect();
                pending.retain(|entry| retry.contains(&entry.id()));
            }
        }
        Ok(())
    }
}

/// Split bodies into batches SQS accepts.
fn chunks(bodies: Vec<(String, i32)>) -> Vec<Vec<(String, i32)>> {
    let mut out: Vec<Vec<(String, i32)>> = Vec::new();
    let mut bytes = 0;
    for body in bodies {
        let full = out
            .last()
            .is_none_or(|last| last.len() == BATCH || bytes + body.0.len() > BATCH_BYTES);
        if full {
            out.push(Vec::new());
            bytes = 0;
        }
        bytes += body.0.len();
        if let Some(last) = out.last_mut() {
            last.push(body);
        }
    }
    out
}

/// A delay in ms as SQS's whole seconds: rounded up, at most 900.
pub fn delay_seconds(delay_ms: u64) -> i32 {
    i32::try_from(delay_ms.div_ceil(1000).min(900)).unwrap_or(900)
}

impl Queue for SqsQueue {
    async fn send(&self, messages: Vec<Outgoing>) -> PortResult<()> {
        for queue in [QueueName::Plan, QueueName::Dispatch, QueueName::Complete] {
            let bodies = messages
                .iter()
                .filter(|o| o.message.queue() == queue)
                .map(|o| {
                    serde_json::to_string(&o.message)
                        .map(|body| (body, delay_seconds(o.delay_ms)))
                        .map_err(|e| PortError::terminal(e.to_string()))
                })
                .collect::<PortResult<Vec<_>>>()?;
            if !bodies.is_empty() {
                self.send_bodies(self.url(queue), bodies).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_round_up_to_whole_seconds_within_the_sqs_limit() {
        assert_eq!(delay_seconds(0), 0);
        assert_eq!(delay_seconds(1), 1);
        assert_eq!(delay_seconds(1000), 1);
        assert_eq!(delay_seconds(1001), 2);
        assert_eq!(delay_seconds(900_000), 900);
        assert_eq!(delay_seconds(u64::MAX), 900);
    }

    #[test]
    fn batches_hold_at_most_ten_messages_and_the_byte_limit() {
        let small: Vec<(String, i32)> = (0..23).map(|i| (format!("m{i}"), 0)).collect();
        let sizes: Vec<usize> = chunks(small).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![10, 10, 3]);
        let big: Vec<(String, i32)> = (0..3).map(|_| ("x".repeat(100 * 1024), 0)).collect();
        let sizes: Vec<usize> = chunks(big).iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![2, 1]);
    }
}
