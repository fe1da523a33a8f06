//! Reading what a Lambda invoke returned, the same way for every backend: a synchronous
//! invoke's response, an emulator's error answer, or an asynchronous invoke's
//! destination record.

use serde_json::Value;

use aloft_core::Failure;

use crate::message::Outcome;

/// A failed HTTP exchange whose body is a function error document. Lambda answers a
/// function error with 200 and `X-Amz-Function-Error`; `cargo lambda watch` answers it
/// with 500 and the same document, so a 5xx carrying `errorType` is read as a function
/// error too. Lambda's own service errors use `Type`, never `errorType`.
pub fn error_document(function: &str, status: u16, body: &[u8]) -> Option<Outcome> {
    if !(500..600).contains(&status) {
        return None;
    }
    let document: Value = serde_json::from_slice(body).ok()?;
    document.get("errorType")?.as_str()?;
    Some(outcome_of(function, Some("Unhandled"), body))
}

/// The outcome of an invoke: a function error fails with its `errorType` as the kind.
pub fn outcome_of(function: &str, function_error: Option<&str>, body: &[u8]) -> Outcome {
    let parsed: Result<Value, _> = if body.iter().all(u8::is_ascii_whitespace) {
        Ok(Value::Null)
    } else {
        serde_json::from_slice(body)
    };
    match (function_error, parsed) {
        (None, Ok(output)) => Outcome::Succeeded { output },
        (None, Err(error)) => Outcome::Failed {
            failure: Failure::new(
                "bad_output",
                format!("{function} returned a payload that is not JSON: {error}"),
            ),
        },
        (Some(kind), parsed) => {
            let payload = parsed.unwrap_or(Value::Null);
            let message = payload
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or(kind);
            let error_type = match payload.get("errorType").and_then(Value::as_str) {
                // A function stopped at its own timeout: Lambda reports it with no
                // errorType (or `Sandbox.Timedout`), only "Task timed out after N
                // seconds" in the message. It is a timeout, so `retry.on: [timeout]`
                // covers it.
                None | Some("Sandbox.Timedout") if message.contains("Task timed out after") => {
                    Failure::TIMEOUT
                }
                Some(error_type) => error_type,
                None => Failure::ERROR,
            };
            Outcome::Failed {
                failure: Failure::new(error_type, format!("{function}: {message}")),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_function_error_fails_with_its_error_type() {
        let body = br#"{"errorType":"OrderMissing","errorMessage":"no order 42"}"#;
        let outcome = outcome_of("enrich", Some("Unhandled"), body);
        let expected = Failure::new("OrderMissing", "enrich: no order 42");
        assert_eq!(outcome, Outcome::Failed { failure: expected });
    }

    #[test]
    fn a_function_stopped_at_its_own_timeout_fails_as_a_timeout() {
        // As Lambda reports it: no errorType, the request id and limit in the message.
        let body = br#"{"errorMessage":"2026-12-04T02:01:17.204Z c0f3a4e2-8b1d-4f6a-9e27-3d5b7a9c1f08 Task timed out after 3.00 seconds"}"#;
        let Outcome::Failed { failure } = outcome_of("enrich", Some("Unhandled"), body) else {
            panic!("a timed-out function did not fail");
        };
        assert_eq!(failure.kind, Failure::TIMEOUT);
        assert!(
            failure
                .message
                .ends_with("Task timed out after 3.00 seconds")
        );
        let sandbox = br#"{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: c0f3 Error: Task timed out after 3.00 seconds"}"#;
        let Outcome::Failed { failure } = outcome_of("enrich", Some("Unhandled"), sandbox) else {
            panic!("a timed-out function did not fail");
        };
        assert_eq!(failure.kind, Failure::TIMEOUT);
        // Any other error without a type stays an `error`.
        let other = br#"{"errorMessage":"out of memory"}"#;
        let Outcome::Failed { failure } = outcome_of("enrich", Some("Unhandled"), other) else {
            panic!("an error did not fail");
        };
        assert_eq!(failure.kind, Failure::ERROR);
    }

    #[test]
    fn a_response_payload_is_the_output() {
        let outcome = outcome_of("enrich", None, br#"{"rows": 3}"#);
        assert_eq!(
            outcome,
            Outcome::Succeeded {
                output: json!({"rows": 3})
            }
        );
        assert_eq!(
            outcome_of("f", None, b""),
            Outcome::Succeeded {
                output: Value::Null
            }
        );
    }

    #[test]
    fn an_emulator_500_with_an_error_document_is_a_function_error() {
        let body = br#"{"errorType":"UnknownRegion","errorMessage":"Mars/Olympus"}"#;
        let expected = Failure::new("UnknownRegion", "summary: Mars/Olympus");
        assert_eq!(
            error_document("summary", 500, body),
            Some(Outcome::Failed { failure: expected })
        );
        assert_eq!(error_document("summary", 400, body), None);
        assert_eq!(
            error_document("summary", 500, br#"{"Type":"Service","message":"x"}"#),
            None
        );
        assert_eq!(error_document("summary", 503, b"<html>"), None);
    }

    #[test]
    fn a_payload_that_is_not_json_is_bad_output() {
        let Outcome::Failed { failure } = outcome_of("f", None, b"hello") else {
            panic!("expected failure")
        };
        assert_eq!(failure.kind, "bad_output");
    }
}
