//! `zone-summary`: a Lambda function, written against lambda_runtime, that counts IANA
//! time zone names per region. aloft's `lambda` example workflow calls it; locally
//! `cargo lambda watch` (see `scripts/lambda-emulator`) serves it behind the Invoke API.

mod summary;

use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;

use summary::ZoneError;

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    lambda_runtime::run(service_fn(handler)).await
}

/// One invoke: the aloft task document in, the zone summary out.
async fn handler(event: LambdaEvent<Value>) -> Result<Value, ZoneError> {
    summary::summarise(&event.payload)
}

/// The error becomes the invoke's `errorType` and `errorMessage`, which aloft records as
/// the failed task's kind and message.
impl From<ZoneError> for Diagnostic {
    fn from(error: ZoneError) -> Self {
        Diagnostic {
            error_type: error.kind().to_owned(),
            error_message: error.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lambda_runtime::Context;
    use serde_json::json;

    #[tokio::test]
    async fn handler_answers_the_payload_aloft_sends() {
        let fixture = include_str!("../fixtures/task-document.json");
        let payload: Value = serde_json::from_str(fixture).expect("the fixture is JSON");
        let output = handler(LambdaEvent::new(payload, Context::default()))
            .await
            .expect("the example payload is valid");
        assert_eq!(output["zones"], 12);
        assert_eq!(output["largest_region"], "America");
    }

    #[tokio::test]
    async fn errors_reach_lambda_as_their_error_type() {
        let payload = json!({"input": {"zones": ["Mars/Olympus_Mons"]}, "upstream": {}});
        let error = handler(LambdaEvent::new(payload, Context::default()))
            .await
            .expect_err("Mars is no tz region");
        let diagnostic = Diagnostic::from(error);
        assert_eq!(diagnostic.error_type, "UnknownRegion");
        assert!(
            diagnostic
                .error_message
                .starts_with("input.zones[0] is Mars/Olympus_Mons, whose region is not one of"),
            "{}",
            diagnostic.error_message
        );

        let empty = LambdaEvent::new(json!({}), Context::default());
        let diagnostic = Diagnostic::from(handler(empty).await.expect_err("no zones"));
        assert_eq!(diagnostic.error_type, "InvalidInput");
    }
}
