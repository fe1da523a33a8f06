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
