//! What the trigger function accepts, and starting a run from it.
//!
//! Three shapes arrive:
//! - a direct request, `{"workflow", "input", "idempotency_key"}` (from `aloft start`,
//!   an SDK call, or any other service);
//! - an EventBridge Scheduler invocation: the schedule's input,
//!   `{"workflow", "scheduled_time": "<aws.scheduler.scheduled-time>", ...}`; the run key
//!   is the scheduled time, so a repeated delivery of one tick starts one run;
//! - an EventBridge event: either delivered as is, asking for a run in its detail
//!   (`"detail": {"workflow", "input", "idempotency_key"}`), or wrapped by the rule's
//!   input transformer as `{"workflow", "event": <aws.events.event>}`, in which case the
//!   event is the run's input. The run key is the event's id, so a repeated delivery
//!   of one event starts one run.
//!
//! A direct request without a key is keyed by the Lambda request id, which Lambda keeps
//! across its own retries of one asynchronous invoke.

use serde_json::{Value, json};

use aloft_engine::ports::PortError;
use aloft_engine::{EngineError, StartRequest, Started};

use crate::AwsEngine;

/// A request to start a run of a stored workflow.
#[derive(Clone, Debug, PartialEq)]
pub struct TriggerRequest {
    /// The workflow (its LATEST version runs).
    pub workflow: String,
    /// The run input.
    pub input: Value,
    /// The run key, if the request carries one.
    pub idempotency_key: Option<String>,
    /// The schedule tick, ms since the epoch.
    pub scheduled_time: Option<u64>,
}

/// Why a trigger event cannot start a run.
#[derive(Debug, thiserror::Error)]
pub enum TriggerError {
    /// The event is of no known shape, or lacks a field.
    #[error("{0}")]
    BadRequest(String),
    /// The workflow has no stored version.
    #[error("workflow {0:?} is not stored: put it first with `aloft workflows put FILE`")]
    UnknownWorkflow(String),
    /// The engine refused or failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<PortError> for TriggerError {
    fn from(error: PortError) -> Self {
        Self::Engine(EngineError::Port(error))
    }
}

fn text(value: &Value, field: &str, shape: &str) -> Result<String, TriggerError> {
    value
        .get(field)
        .and_then(Value::as_str)
        .map(str::to_owned)
        .ok_or_else(|| TriggerError::BadRequest(format!("{shape} has no text field {field:?}")))
}

fn time_ms(text: &str) -> Result<u64, TriggerError> {
    let at: jiff::Timestamp = text.parse().map_err(|e| {
        TriggerError::BadRequest(format!(
            "scheduled_time {text:?} is not an RFC 3339 time: {e}"
        ))
    })?;
    u64::try_from(at.as_millisecond())
        .map_err(|_| TriggerError::BadRequest(format!("scheduled_time {text:?} is before 1970")))
}

/// Read a trigger event.
pub fn parse(event: &Value) -> Result<TriggerRequest, TriggerError> {
    if let Some(wrapped) = event
        .get("event")
        .filter(|e| e.get("detail-type").is_some())
    {
        let workflow = text(event, "workflow", "a wrapped EventBridge event")?;
        return Ok(TriggerRequest {
            workflow,
            input: wrapped.clone(),
            idempotency_key: wrapped
                .get("id")
                .and_then(Value::as_str)
                .map(|id| format!("event:{id}")),
            scheduled_time: None,
        });
    }
    if event.get("detail-type").is_some() {
        if event.get("source").and_then(Value::as_str) == Some(crate::events::SOURCE) {
            // aloft's own lifecycle events name a workflow too: starting it again from
            // its own event would loop. A rule that means to chain workflows wraps the
            // event with an input transformer, naming the workflow to start.
            return Err(TriggerError::BadRequest(
                "an aloft lifecycle event cannot start a run by itself: wrap it as \
                 {\"workflow\", \"event\"} with the rule's input transformer"
                    .into(),
            ));
        }
        let detail = event.get("detail").cloned().unwrap_or(Value::Null);
        let workflow = text(&detail, "workflow", "an EventBridge event's detail")?;
        let key = detail
            .get("idempotency_key")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .or_else(|| {
                event
                    .get("id")
                    .and_then(Value::as_str)
                    .map(|id| format!("event:{id}"))
            });
        return Ok(TriggerRequest {
            workflow,
            input: detail.get("input").cloned().unwrap_or(json!({})),
            idempotency_key: key,
            scheduled_time: None,
        });
    }
    if !event.is_object() {
        return Err(TriggerError::BadRequest(format!(
            "a trigger request must be a JSON object, not {event}"
        )));
    }
    let workflow = text(event, "workflow", "a trigger request")?;
    if let Some(tick) = event.get("scheduled_time") {
        let tick = tick.as_str().ok_or_else(|| {
            TriggerError::BadRequest("scheduled_time must be an RFC 3339 text".into())
        })?;
        let at = time_ms(tick)?;
        return Ok(TriggerRequest {
            workflow,
            input: event.get("input").cloned().unwrap_or(json!({})),
            idempotency_key: Some(format!("schedule:{tick}")),
            scheduled_time: Some(at),
        });
    }
    let key = match event.get("idempotency_key") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(key.clone()),
        Some(other) => {
            return Err(TriggerError::BadRequest(format!(
                "idempotency_key must be text, not {other}"
            )));
        }
    };
    Ok(TriggerRequest {
        workflow,
        input: event.get("input").cloned().unwrap_or(json!({})),
        idempotency_key: key,
        scheduled_time: None,
    })
}

/// Start a run of the workflow's LATEST version.
pub async fn start(engine: &AwsEngine, request: TriggerRequest) -> Result<Started, TriggerError> {
    start_in(engine, request, None).await
}

/// [`start`], with a working folder for `command` tasks run by `aloft dev`.
pub async fn start_in(
    engine: &AwsEngine,
    request: TriggerRequest,
    workdir: Option<String>,
) -> Result<Started, TriggerError> {
    let Some((_, definition)) = engine.store().latest(&request.workflow).await? else {
        return Err(TriggerError::UnknownWorkflow(request.workflow));
    };
    Ok(engine
        .trigger(StartRequest {
            definition,
            input: request.input,
            idempotency_key: request.idempotency_key,
            scheduled_time: request.scheduled_time,
            workdir,
        })
        .await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn aloft_lifecycle_events_never_start_runs_by_themselves() {
        let event = json!({
            "version": "0", "id": "e-1", "detail-type": "Run Succeeded", "source": "aloft",
            "account": "123456789012", "time": "2026-12-04T02:00:00Z", "region": "eu-west-1",
            "resources": [], "detail": {"workflow": "nightly-etl", "run_id": "r", "status": "succeeded"}
        });
        let error = parse(&event).expect_err("a loop");
        assert!(error.to_string().contains("input transformer"), "{error}");
        // Wrapped, it names the workflow to start next: that is a chain, not a loop.
        let wrapped = json!({"workflow": "report", "event": event});
        let request = parse(&wrapped).expect("a chained start");
        assert_eq!(request.workflow, "report");
        assert_eq!(request.idempotency_key.as_deref(), Some("event:e-1"));
    }
}
