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
        None => aws_smithy_types::error::display::DisplayErrorContext(error).to_string(),
    };
    let message = format!("{service} {operation}: {detail}");
    if retryable {
        PortError::retryable(message)
    } else {
        PortError::terminal(message)
    }
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
