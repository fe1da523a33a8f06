//! Lifecycle events on EventBridge: source `aloft`, detail-types such as `Run Started`,
//! `Run Failed`, `Task Failed` and `SLA Missed`, and a detail naming the workflow, its
//! version, the run, its status and the workflow's tags.

use aws_sdk_eventbridge::Client;
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use serde_json::{Value, json};

use aloft_engine::ports::{Events, Lifecycle, PortError, PortResult};

use crate::error::events_error;

/// The `source` of every event aloft publishes.
pub const SOURCE: &str = "aloft";

/// Publishes to one EventBridge bus.
#[derive(Clone, Debug)]
pub struct EventBridgeEvents {
    client: Client,
    bus: String,
}

impl EventBridgeEvents {
    /// Events to `bus` (a name or ARN).
    pub fn new(client: Client, bus: &str) -> Self {
        Self {
            client,
            bus: bus.to_owned(),
        }
    }
}

/// The event's detail document.
pub fn detail(event: &Lifecycle) -> Value {
    let mut detail = json!({
        "workflow": event.workflow,
        "version": event.version,
        "run_id": event.run_id,
        "status": event.status,
        "tags": event.tags,
    });
    if let Some(task) = &event.task {
        detail["task"] = json!(task);
    }
    if let Some(attempt) = event.attempt {
        detail["attempt"] = json!(attempt);
    }
    if let Some(reason) = &event.reason {
        detail["reason"] = json!(reason);
    }
    detail
}

impl Events for EventBridgeEvents {
    async fn publish(&self, events: Vec<Lifecycle>) -> PortResult<()> {
        for chunk in events.chunks(10) {
            let entries = chunk
                .iter()
                .map(|event| {
                    PutEventsRequestEntry::builder()
                        .source(SOURCE)
                        .detail_type(event.kind.detail_type())
                        .detail(detail(event).to_string())
                        .event_bus_name(&self.bus)
                        .resources(format!("aloft:run/{}", event.run_id))
                        .build()
                })
                .collect();
            let sent = self
                .client
                .put_events()
                .set_entries(Some(entries))
                .send()
                .await
                .map_err(|e| events_error("PutEvents", &e))?;
            if sent.failed_entry_count() > 0 {
                let first = sent
                    .entries()
                    .iter()
                    .find_map(|e| e.error_message())
                    .unwrap_or("no message");
                return Err(PortError::retryable(format!(
                    "EventBridge PutEvents: {} events refused: {first}",
                    sent.failed_entry_count()
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_engine::ports::LifecycleKind;

    #[test]
    fn the_detail_names_run_workflow_version_status_and_tags() {
        let event = Lifecycle {
            kind: LifecycleKind::TaskFailed,
            workflow: "etl".into(),
            version: "abc".into(),
            run_id: "r1".into(),
            status: "failed".into(),
            task: Some("load[3]".into()),
            attempt: Some(2),
            reason: Some("error: boom".into()),
            tags: [("team".to_owned(), "data".to_owned())].into(),
            at: 0,
        };
        assert_eq!(
            detail(&event),
            json!({"workflow": "etl", "version": "abc", "run_id": "r1", "status": "failed",
                   "tags": {"team": "data"}, "task": "load[3]", "attempt": 2,
                   "reason": "error: boom"})
        );
        assert_eq!(event.kind.detail_type(), "Task Failed");
    }
}
