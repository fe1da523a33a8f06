//! Lambda destination records: how the result of an asynchronous invoke reaches the
//! complete queue. The record's request payload is the task input document, whose
//! `run.id`, `task`, `index` and `run.attempt` name the attempt it belongs to.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use aloft_core::Failure;
use aloft_engine::lambda::outcome_of;
use aloft_engine::message::{Message, Outcome, TaskKey};

/// A destination record, as Lambda writes it for an asynchronous invoke.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DestinationRecord {
    /// Format version, `1.0`.
    pub version: String,
    /// When the invoke ended, RFC 3339.
    pub timestamp: String,
    /// Which invoke.
    pub request_context: RequestContext,
    /// The payload the function was invoked with.
    pub request_payload: Value,
    /// How the function answered; absent when it never ran (event too old).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response_context: Option<ResponseContext>,
    /// What the function returned, or its error document.
    #[serde(default)]
    pub response_payload: Value,
}

/// The invoke a record is about.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestContext {
    /// The invoke's request id.
    pub request_id: String,
    /// The function (and version) that ran.
    pub function_arn: String,
    /// `Success`, `RetriesExhausted` or `EventAgeExceeded`.
    pub condition: String,
    /// How many times Lambda ran it.
    pub approximate_invoke_count: u32,
}

/// How the function answered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResponseContext {
    /// HTTP status of the invoke.
    pub status_code: u16,
    /// The version that ran.
    pub executed_version: String,
    /// `Handled` or `Unhandled` when the function failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_error: Option<String>,
}

/// Why a record cannot be read as a result.
#[derive(Debug, thiserror::Error)]
#[error("destination record: {0}")]
pub struct RecordError(String);

impl DestinationRecord {
    /// The record Lambda writes for an asynchronous invoke of `function_arn` with
    /// `request_payload` that ends now, answered with `status_code` and
    /// `response_payload`; `function_error` (`Handled`, `Unhandled`) makes it a failure
    /// whose retries are exhausted.
    pub fn ended_now(
        function_arn: &str,
        request_id: String,
        request_payload: Value,
        status_code: u16,
        function_error: Option<String>,
        response_payload: Value,
    ) -> Self {
        let condition = match function_error {
            Some(_) => "RetriesExhausted",
            None => "Success",
        };
        Self {
            version: "1.0".into(),
            timestamp: jiff::Timestamp::now().to_string(),
            request_context: RequestContext {
                request_id,
                function_arn: function_arn.to_owned(),
                condition: condition.into(),
                approximate_invoke_count: 1,
            },
            request_payload,
            response_context: Some(ResponseContext {
                status_code,
                executed_version: "$LATEST".into(),
                function_error,
            }),
            response_payload,
        }
    }

    /// The `Complete` message this record stands for.
    pub fn to_message(&self) -> Result<Message, RecordError> {
        let payload = &self.request_payload;
        let field = |path: &[&str]| {
            let mut value = payload;
            for name in path {
                value = value.get(name)?;
            }
            Some(value)
        };
        let missing = |what: &str| {
            RecordError(format!(
                "request payload has no {what}: was this function started by aloft?"
            ))
        };
        let run_id = field(&["run", "id"])
            .and_then(Value::as_str)
            .ok_or_else(|| missing("run.id"))?;
        let attempt = field(&["run", "attempt"])
            .and_then(Value::as_u64)
            .and_then(|a| u32::try_from(a).ok())
            .ok_or_else(|| missing("run.attempt"))?;
        let task = field(&["task"])
            .and_then(Value::as_str)
            .ok_or_else(|| missing("task"))?;
        let item = field(&["index"])
            .and_then(Value::as_u64)
            .and_then(|i| u32::try_from(i).ok());
        let function = short_name(&self.request_context.function_arn);
        let outcome = match (
            &self.response_context,
            self.request_context.condition.as_str(),
        ) {
            (_, "EventAgeExceeded") | (None, _) => Outcome::Failed {
                failure: Failure::error(format!(
                    "{function}: Lambda gave up on the invoke ({}) before it ran",
                    self.request_context.condition
                )),
            },
            (Some(response), _) => {
                let body = self.response_payload.to_string();
                outcome_of(
                    function,
                    response.function_error.as_deref(),
                    body.as_bytes(),
                )
            }
        };
        // The record's time is when the invoke ended: the attempt is judged then (its
        // timeout, the run's deadline), however late the record is handled.
        let millis = |text: &str| {
            text.parse::<jiff::Timestamp>()
                .ok()
                .and_then(|t| u64::try_from(t.as_millisecond()).ok())
        };
        let ended_at = millis(&self.timestamp);
        // When the attempt started, as the task document told the task.
        let started_at = field(&["run", "attempt_started_at"])
            .and_then(Value::as_str)
            .and_then(millis);
        Ok(Message::Complete {
            run_id: run_id.to_owned(),
            key: TaskKey {
                task: task.to_owned(),
                item,
            },
            attempt,
            outcome,
            ended_at,
            started_at,
            // The run as the dispatcher knew it, so the result is handled without a read.
            run: aloft_engine::run_of_document(payload).map(Box::new),
        })
    }
}

/// A function's name from its ARN (`...:function:NAME[:QUALIFIER]`), or the text as is.
fn short_name(arn: &str) -> &str {
    match arn.split(':').collect::<Vec<_>>().as_slice() {
        [.., "function", name] | [.., "function", name, _] => name,
        _ => arn,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn function_names_come_from_arns_with_or_without_a_qualifier() {
        assert_eq!(
            short_name("arn:aws:lambda:eu-west-1:123456789012:function:enrich:$LATEST"),
            "enrich"
        );
        assert_eq!(
            short_name("arn:aws:lambda:eu-west-1:123456789012:function:enrich"),
            "enrich"
        );
        assert_eq!(short_name("enrich"), "enrich");
    }

    #[test]
    fn a_record_without_aloft_envelope_is_refused_by_name() {
        let record = DestinationRecord {
            version: "1.0".into(),
            timestamp: "2026-12-04T10:00:00.000Z".into(),
            request_context: RequestContext {
                request_id: "r".into(),
                function_arn: "f".into(),
                condition: "Success".into(),
                approximate_invoke_count: 1,
            },
            request_payload: json!({"hello": 1}),
            response_context: None,
            response_payload: Value::Null,
        };
        let error = record.to_message().expect_err("no envelope");
        assert!(error.to_string().contains("run.id"), "{error}");
    }
}
