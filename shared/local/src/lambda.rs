//! lambda tasks in the embedded backend: a synchronous `RequestResponse` invoke through
//! the Lambda Invoke API, configured the usual aws-config way (region, credentials,
//! `AWS_ENDPOINT_URL` for a local emulator).

use serde_json::Value;

use aloft_core::Failure;
use aloft_engine::Outcome;

/// Calls Lambda functions; the client is built on first use.
#[derive(Clone, Debug, Default)]
pub struct LambdaCaller {
    #[cfg(feature = "lambda")]
    client: std::sync::Arc<tokio::sync::OnceCell<aws_sdk_lambda::Client>>,
}

#[cfg(not(feature = "lambda"))]
impl LambdaCaller {
    /// Without the `lambda` feature every invoke fails, saying so.
    pub async fn invoke(&self, function: &str, _payload: Vec<u8>) -> Outcome {
        let message = format!("cannot invoke {function}: built without the lambda feature");
        Outcome::Failed {
            failure: Failure::error(message),
        }
    }
}

#[cfg(feature = "lambda")]
impl LambdaCaller {
    /// Invoke `function` with `payload` and wait for its result.
    pub async fn invoke(&self, function: &str, payload: Vec<u8>) -> Outcome {
        let client = self
            .client
            .get_or_init(|| async {
                let config = aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await;
                aws_sdk_lambda::Client::new(&config)
            })
            .await;
        let response = client
            .invoke()
            .function_name(function)
            .payload(aws_sdk_lambda::primitives::Blob::new(payload))
            .send()
            .await;
        match response {
            Ok(response) => {
                let body = response
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default();
                outcome_of(function, response.function_error(), &body)
            }
            Err(error) => {
                let detail = aws_sdk_lambda::error::DisplayErrorContext(&error);
                Outcome::Failed {
                    failure: Failure::error(format!("invoke {function}: {detail}")),
                }
            }
        }
    }
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
            let error_type = payload
                .get("errorType")
                .and_then(Value::as_str)
                .unwrap_or(Failure::ERROR);
            let message = payload
                .get("errorMessage")
                .and_then(Value::as_str)
                .unwrap_or(kind);
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
    fn a_payload_that_is_not_json_is_bad_output() {
        let Outcome::Failed { failure } = outcome_of("f", None, b"hello") else {
            panic!("expected failure")
        };
        assert_eq!(failure.kind, "bad_output");
    }
}
