//! Sorting SDK errors into retryable (the message is delivered again) and terminal.
//!
//! One helper per service: each knows which of its error codes are throttling or
//! transient. Anything that never reached the service (timeouts, connection errors) and
//! any 5xx answer is retryable; a malformed request, a missing resource or a denied
//! permission is terminal.

use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use aloft_engine::ports::PortError;

/// Error codes that mean "try again later" on every service.
const COMMON_TRANSIENT: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "RequestLimitExceeded",
    "InternalFailure",
    "InternalServerError",
    "InternalError",
    "ServiceUnavailable",
    "ServiceUnavailableException",
    "RequestTimeout",
    "RequestTimeoutException",
];

type Response = aws_smithy_runtime_api::http::Response;

fn classify<E>(
    service: &str,
    operation: &str,
    error: &SdkError<E, Response>,
    transient: &[&str],
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let retryable = match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            true
        }
        SdkError::ServiceError(service_error) => {
            let status = service_error.raw().status().as_u16();
            let code = service_error.err().code().unwrap_or_default();
            status >= 500 || COMMON_TRANSIENT.contains(&code) || transient.contains(&code)
        }
        _ => false,
    };
    let detail = match error.as_service_error() {
        Some(e) => format!(
            "{}: {}",
            e.code().unwrap_or("error"),
            e.message().unwrap_or("no message")
        ),
        None => unanswered(error),
    };
    let message = format!("{service} {operation}: {detail}");
    if retryable {
        PortError::retryable(message)
    } else {
        PortError::terminal(message)
    }
}

/// What went wrong with a request that got no answer: its kind and the innermost cause
/// (`connection refused`), not the whole chain of wrappers.
fn unanswered<E: std::error::Error + 'static>(error: &SdkError<E, Response>) -> String {
    let kind = match error {
        SdkError::TimeoutError(_) => "timed out",
        SdkError::DispatchFailure(_) => "could not send the request",
        SdkError::ResponseError(_) => "unreadable answer",
        SdkError::ConstructionFailure(_) => "could not build the request",
        _ => "failed",
    };
    let mut cause: &dyn std::error::Error = error;
    while let Some(inner) = cause.source() {
        cause = inner;
    }
    format!("{kind}: {cause}")
}

/// A DynamoDB error.
pub fn dynamodb_error<E>(operation: &str, error: &SdkError<E, Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(
        "DynamoDB",
        operation,
        error,
        &[
            "ProvisionedThroughputExceededException",
            "TransactionConflictException",
            "TransactionInProgressException",
            "LimitExceededException",
        ],
    )
}

/// An SQS error.
pub fn sqs_error<E>(operation: &str, error: &SdkError<E, Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(
        "SQS",
        operation,
        error,
        &[
            "KmsThrottled",
            "RequestThrottled",
            "OverLimit",
            "KmsUnavailable",
        ],
    )
}

/// A Lambda error (of the Invoke API itself, not of the function).
pub fn lambda_error<E>(operation: &str, error: &SdkError<E, Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(
        "Lambda",
        operation,
        error,
        &[
            "EC2ThrottledException",
            "ENILimitReachedException",
            "ResourceNotReadyException",
            "ResourceConflictException",
            "SnapStartNotReadyException",
        ],
    )
}

/// An EventBridge error.
pub fn events_error<E>(operation: &str, error: &SdkError<E, Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify("EventBridge", operation, error, &["LimitExceededException"])
}

/// An EventBridge Scheduler error.
#[cfg(feature = "deploy")]
pub fn scheduler_error<E>(operation: &str, error: &SdkError<E, Response>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify("Scheduler", operation, error, &[])
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_sdk_sqs::operation::send_message_batch::SendMessageBatchError;
    use aws_smithy_runtime_api::client::result::ConnectorError;
    use aws_smithy_types::body::SdkBody;
    use aws_smithy_types::error::ErrorMetadata;

    fn answer<E>(error: E, status: u16) -> SdkError<E, Response> {
        let status = aws_smithy_runtime_api::http::StatusCode::try_from(status).expect("status");
        SdkError::service_error(error, Response::new(status, SdkBody::empty()))
    }

    fn put_error(code: &str) -> PutItemError {
        PutItemError::generic(ErrorMetadata::builder().code(code).message("m").build())
    }

    #[test]
    fn throttling_and_server_errors_are_retried() {
        let throttled = dynamodb_error(
            "PutItem",
            &answer(put_error("ProvisionedThroughputExceededException"), 400),
        );
        assert!(throttled.retryable, "{throttled}");
        let server = dynamodb_error("PutItem", &answer(put_error("Whatever"), 503));
        assert!(server.retryable);
        let conflict = dynamodb_error(
            "PutItem",
            &answer(put_error("TransactionConflictException"), 400),
        );
        assert!(conflict.retryable);
    }

    #[test]
    fn malformed_requests_and_missing_resources_are_terminal_and_named() {
        let missing = dynamodb_error(
            "PutItem",
            &answer(put_error("ResourceNotFoundException"), 400),
        );
        assert!(!missing.retryable);
        assert_eq!(
            missing.message,
            "DynamoDB PutItem: ResourceNotFoundException: m"
        );
        let denied = sqs_error(
            "SendMessageBatch",
            &answer(
                SendMessageBatchError::generic(
                    ErrorMetadata::builder()
                        .code("AccessDenied")
                        .message("no")
                        .build(),
                ),
                403,
            ),
        );
        assert!(!denied.retryable);
        assert!(
            denied
                .message
                .starts_with("SQS SendMessageBatch: AccessDenied"),
            "{denied}"
        );
    }

    #[test]
    fn requests_that_never_got_an_answer_are_retried() {
        let timeout: SdkError<PutItemError, Response> = SdkError::timeout_error("slow");
        assert!(dynamodb_error("PutItem", &timeout).retryable);
        let refused: SdkError<PutItemError, Response> =
            SdkError::dispatch_failure(ConnectorError::io("connection refused".into()));
        let error = dynamodb_error("PutItem", &refused);
        assert!(error.retryable);
        assert_eq!(
            error.message,
            "DynamoDB PutItem: could not send the request: connection refused"
        );
    }
}
