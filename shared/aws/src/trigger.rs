//! What the trigger function accepts, and starting a run from it.
//!
//! Three shapes arrive:
//! - a direct request, `{"workflow", "input", "idempotency_key", "overlap"}` (from
//!   `aloft start`, an SDK call, or any other service); `overlap`, if given, is this
//!   start's overlap policy (`allow`, `skip`, `buffer_one` or `cancel_running`) in place
//!   of the workflow's;
//! - an EventBridge Scheduler invocation: the schedule's input,
//!   `{"workflow", "scheduled_time": "<aws.scheduler.scheduled-time>", ...}`; the run key
//!   is the scheduled time, so a repeated delivery of one tick starts one run;
//! - an EventBridge event: either delivered as is, asking for a run in its detail
//!   (`"detail": {"workflow", "input", "idempotency_key"}`), or wrapped by the rule's
//!   input transformer as `{"workflow", "event": <aws.events.event.json>}`, the shape of the
//!   workflow's own event triggers (`events:`). A wrapped event must match the pattern of
//!   one of the workflow's event triggers; the first that matches builds the run input
//!   from the event with its `input` template (without one, the event is the input). An
//!   event no trigger matches is refused: the rule and the stored definition are out of
//!   step. The run key is `event:<id>`, so a repeated delivery of one event starts one
//!   run; a wrapped event without an id is refused.
//!
//! A direct request without a key is keyed by the Lambda request id, which Lambda keeps
//! across its own retries of one asynchronous invoke.
//!
//! The reply ([`reply`]) names the run and how the overlap policy admitted the start, so
//! a skipped start (no run made) is not taken for a repeated one.

use serde_json::{Value, json};

use aloft_core::Definition;
use aloft_core::definition::Overlap;
use aloft_core::events::{self, EventError};
use aloft_core::schedule::ticks::tick_key;
use aloft_engine::ports::PortError;
use aloft_engine::{Admission, EngineError, StartRequest, Started};

use crate::AwsEngine;

/// A trigger invocation as [`parse`] reads it: the run it asks for, and the EventBridge
/// event a rule wrapped, if it is one.
#[derive(Clone, Debug, PartialEq)]
pub struct Trigger {
    /// The workflow (its LATEST version runs).
    pub workflow: String,
    /// The run input; for a wrapped event, the event itself until [`start`] applies the
    /// definition's input template.
    pub input: Value,
    /// The run key, if the invocation carries one.
    pub idempotency_key: Option<String>,
    /// The schedule tick, ms since the epoch.
    pub scheduled_time: Option<u64>,
    /// The wrapped EventBridge event, matched against the workflow's event triggers.
    pub event: Option<Value>,
    /// This start's overlap policy; `None` follows the workflow's.
    pub overlap: Option<Overlap>,
}

impl From<TriggerRequest> for Trigger {
    fn from(request: TriggerRequest) -> Self {
        Trigger {
            workflow: request.workflow,
            input: request.input,
            idempotency_key: request.idempotency_key,
            scheduled_time: request.scheduled_time,
            event: None,
            overlap: request.overlap,
        }
    }
}

/// A direct request to start a run of a stored workflow.
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
    /// This start's overlap policy; `None` follows the workflow's.
    pub overlap: Option<Overlap>,
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
pub fn parse(event: &Value) -> Result<Trigger, TriggerError> {
    if let Some(wrapped) = event
        .get("event")
        .filter(|e| e.get("detail-type").is_some())
    {
        let workflow = text(event, "workflow", "a wrapped EventBridge event")?;
        let key = events::run_key(wrapped).map_err(|error| {
            TriggerError::BadRequest(format!(
                "a wrapped EventBridge event for workflow {workflow:?}: {error}"
            ))
        })?;
        return Ok(Trigger {
            workflow,
            input: wrapped.clone(),
            idempotency_key: Some(key),
            scheduled_time: None,
            event: Some(wrapped.clone()),
            overlap: None,
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
            .or_else(|| events::run_key(event).ok());
        return Ok(Trigger {
            workflow,
            input: detail.get("input").cloned().unwrap_or(json!({})),
            idempotency_key: key,
            scheduled_time: None,
            event: None,
            overlap: None,
        });
    }
    if !event.is_object() {
        return Err(TriggerError::BadRequest(format!(
            "a trigger request must be a JSON object, not {event}"
        )));
    }
    let workflow = text(event, "workflow", "a trigger request")?;
    let overlap = overlap(event)?;
    if let Some(tick) = event.get("scheduled_time") {
        let tick = tick.as_str().ok_or_else(|| {
            TriggerError::BadRequest("scheduled_time must be an RFC 3339 text".into())
        })?;
        let at = time_ms(tick)?;
        return Ok(Trigger {
            workflow,
            input: event.get("input").cloned().unwrap_or(json!({})),
            idempotency_key: Some(format!("schedule:{tick}")),
            scheduled_time: Some(at),
            event: None,
            overlap,
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
    Ok(Trigger {
        workflow,
        input: event.get("input").cloned().unwrap_or(json!({})),
        idempotency_key: key,
        scheduled_time: None,
        event: None,
        overlap,
    })
}

/// The `overlap` field of a request, if it has one.
fn overlap(event: &Value) -> Result<Option<Overlap>, TriggerError> {
    let known = "allow, skip, buffer_one or cancel_running";
    match event.get("overlap") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(policy)) => serde_json::from_value(Value::String(policy.clone()))
            .map(Some)
            .map_err(|_| {
                TriggerError::BadRequest(format!(
                    "overlap {policy:?} is not an overlap policy: use {known}"
                ))
            }),
        Some(other) => Err(TriggerError::BadRequest(format!(
            "overlap must be text ({known}), not {other}"
        ))),
    }
}

/// The invocation EventBridge Scheduler makes for the tick at `tick` of a workflow's
/// schedule, as [`parse`] reads it: keyed `schedule:<tick>`, the key of the embedded
/// backend's ticks.
pub fn scheduler_invocation(workflow: &str, tick: jiff::Timestamp) -> Value {
    let key = tick_key(tick);
    let time = key.strip_prefix("schedule:").unwrap_or(&key);
    json!({"workflow": workflow, "scheduled_time": time})
}

/// The trigger's reply: the run, whether it was created, and how the overlap policy
/// admitted the start (`started`, `buffered`, `skipped` or `replaced`, with the runs
/// concerned). A skipped start names the first run it was skipped for as `run_id`.
pub fn reply(started: &Started) -> Value {
    let mut reply = json!({"run_id": started.run_id, "created": started.created});
    let (admission, field, runs) = match &started.admission {
        Admission::Started => ("started", None, None),
        Admission::Buffered { behind } => ("buffered", Some("behind"), Some(behind)),
        Admission::Skipped { active } => ("skipped", Some("active"), Some(active)),
        Admission::Replaced { cancelled } => ("replaced", Some("cancelled"), Some(cancelled)),
    };
    reply["admission"] = json!(admission);
    if let (Some(field), Some(runs)) = (field, runs) {
        reply[field] = json!(runs);
    }
    reply
}

/// Start a run of the workflow's LATEST version.
pub async fn start(
    engine: &AwsEngine,
    trigger: impl Into<Trigger>,
) -> Result<Started, TriggerError> {
    start_in(engine, trigger, None).await
}

/// [`start`], with a working folder for `command` tasks run by `aloft dev`.
pub async fn start_in(
    engine: &AwsEngine,
    trigger: impl Into<Trigger>,
    workdir: Option<String>,
) -> Result<Started, TriggerError> {
    let trigger = trigger.into();
    let Some((_, definition)) = engine.store().latest(&trigger.workflow).await? else {
        return Err(TriggerError::UnknownWorkflow(trigger.workflow));
    };
    let input = match &trigger.event {
        Some(event) => event_input(&definition, event)?,
        None => trigger.input,
    };
    let request = StartRequest {
        definition,
        input,
        idempotency_key: trigger.idempotency_key,
        scheduled_time: trigger.scheduled_time,
        workdir,
    };
    Ok(engine
        .trigger_with_overlap(request, trigger.overlap)
        .await?)
}

/// The run input of a wrapped event: built by the `input` template of the first of the
/// definition's event triggers whose pattern matches the event (the event itself when
/// that trigger has none). An event no trigger matches is refused.
pub fn event_input(definition: &Definition, event: &Value) -> Result<Value, TriggerError> {
    let workflow = &definition.name;
    let id = event.get("id").and_then(Value::as_str).unwrap_or_default();
    match events::first_match(&definition.events, event) {
        Ok(Some((_, trigger))) => Ok(events::map_input(trigger.input.as_ref(), event)),
        Ok(None) if definition.events.is_empty() => Err(TriggerError::BadRequest(format!(
            "workflow {workflow:?} has no event triggers (`events`), so event {id:?} cannot \
             start it: the EventBridge rule and the stored definition are out of step; add \
             the trigger and put the workflow again, or remove the rule"
        ))),
        Ok(None) => Err(TriggerError::BadRequest(format!(
            "event {id:?} matches no event trigger pattern of workflow {workflow:?} ({} \
             checked): the EventBridge rule and the stored definition are out of step; put \
             the workflow again, or fix the rule's pattern",
            definition.events.len()
        ))),
        Err(error @ EventError::InvalidTrigger { .. }) => Err(TriggerError::BadRequest(format!(
            "workflow {workflow:?} cannot take event {id:?}: {error}"
        ))),
        Err(error) => Err(TriggerError::BadRequest(format!("event {id:?}: {error}"))),
    }
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
