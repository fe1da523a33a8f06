//! lambda tasks in the embedded backend: a synchronous `RequestResponse` invoke through
//! the Lambda Invoke API, configured the usual aws-config way (region, credentials,
//! `AWS_ENDPOINT_URL` for a local emulator).
//!
//! The SDK's own retries are off: aloft's retry policy decides whether an attempt runs
//! again, and an SDK retry of an invoke would run the function twice in one attempt.

use aloft_core::Failure;
use aloft_engine::Outcome;
pub use aloft_engine::lambda::{error_document, outcome_of};

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
                let config = aws_config::defaults(aws_config::BehaviorVersion::latest())
                    .retry_config(aws_config::retry::RetryConfig::disabled())
                    .load()
                    .await;
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
                let raw = error.raw_response();
                let status = raw.map(|r| r.status().as_u16()).unwrap_or(0);
                let body = raw.and_then(|r| r.body().bytes()).unwrap_or_default();
                if let Some(outcome) = error_document(function, status, body) {
                    return outcome;
                }
                let detail = aws_sdk_lambda::error::DisplayErrorContext(&error);
                Outcome::Failed {
                    failure: Failure::error(format!("invoke {function}: {detail}")),
                }
            }
        }
    }
}
