//! What aloft's four Lambda functions share. Each function binary only names its role;
//! everything else is the engine and the AWS adapters, wired here.
//!
//! - trigger: a direct request, an EventBridge Scheduler invocation or an EventBridge
//!   event in; `{"run_id", "created", "admission"}` out (see `aloft_aws::trigger::reply`:
//!   a start the overlap policy skipped reads `"admission": "skipped"`, not a repeat).
//! - plan, dispatch, complete: SQS batches in; a partial batch response out, naming only
//!   the messages that failed.

use std::sync::Arc;

use aws_lambda_events::event::sqs::{SqsBatchResponse, SqsEvent};
use lambda_runtime::{Diagnostic, LambdaEvent, service_fn};
use serde_json::Value;
use tracing::info;

use aloft_aws::batch::{batch_response, from_sqs_event, handle_batch};
use aloft_aws::trigger::{TriggerError, parse, reply, start};
use aloft_aws::{AwsEngine, Backend, Settings};

/// Logs as JSON lines when Lambda asks for them (`AWS_LAMBDA_LOG_FORMAT=JSON`), as text
/// otherwise; the level comes from `AWS_LAMBDA_LOG_LEVEL` or `RUST_LOG` (default info).
pub fn init_logging() {
    let json = std::env::var("AWS_LAMBDA_LOG_FORMAT").is_ok_and(|f| f.eq_ignore_ascii_case("json"));
    let level = std::env::var("AWS_LAMBDA_LOG_LEVEL")
        .or_else(|_| std::env::var("RUST_LOG"))
        .unwrap_or_else(|_| "info".to_owned())
        .to_lowercase();
    let filter = tracing_subscriber::EnvFilter::try_new(&level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .without_time();
    if json {
        builder.json().flatten_event(true).init();
    } else {
        builder.with_ansi(false).init();
    }
}

/// Connect to the resources named in the environment.
async fn engine() -> Result<(Arc<AwsEngine>, u32), lambda_runtime::Error> {
    let settings = Settings::from_env()?;
    let max_receives = settings.max_receives;
    let backend = Backend::connect(settings, None).await;
    Ok((Arc::new(backend.engine()), max_receives))
}

/// Serve an SQS-fed function (plan, dispatch or complete): every message of a batch
/// goes through the engine; the failed ones come back as batch item failures.
pub async fn serve_queue(role: &'static str) -> Result<(), lambda_runtime::Error> {
    init_logging();
    let (engine, max_receives) = engine().await?;
    info!(role, "ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<SqsEvent>| {
        let engine = engine.clone();
        Box::pin(async move {
            let batch = from_sqs_event(event.payload);
            let failed = handle_batch(&engine, batch, max_receives).await;
            Ok::<SqsBatchResponse, Diagnostic>(batch_response(failed))
        })
    }))
    .await
}

/// Serve the trigger function.
pub async fn serve_trigger() -> Result<(), lambda_runtime::Error> {
    init_logging();
    let (engine, _) = engine().await?;
    info!(role = "trigger", "ready");
    lambda_runtime::run(service_fn(move |event: LambdaEvent<Value>| {
        let engine = engine.clone();
        // Boxed: the handler's future is deep, and the runtime's own types nest it further.
        Box::pin(async move { trigger(&engine, event.payload, &event.context.request_id).await })
    }))
    .await
}

/// One trigger invoke. A request without a key of its own is keyed by the invoke's
/// request id, which Lambda keeps across its retries of one asynchronous invoke.
pub async fn trigger(
    engine: &AwsEngine,
    payload: Value,
    request_id: &str,
) -> Result<Value, Diagnostic> {
    let mut request = parse(&payload).map_err(diagnostic)?;
    if request.idempotency_key.is_none() && !request_id.is_empty() {
        request.idempotency_key = Some(format!("request:{request_id}"));
    }
    let workflow = request.workflow.clone();
    let started = start(engine, request).await.map_err(diagnostic)?;
    let reply = reply(&started);
    info!(workflow, run_id = %started.run_id, created = started.created, admission = %reply["admission"], "trigger handled");
    Ok(reply)
}

/// A trigger error as the invoke's error document.
fn diagnostic(error: TriggerError) -> Diagnostic {
    let error_type = match &error {
        TriggerError::BadRequest(_) => "BadRequest",
        TriggerError::UnknownWorkflow(_) => "UnknownWorkflow",
        TriggerError::Engine(e) if e.is_retryable() => "Retryable",
        TriggerError::Engine(aloft_engine::EngineError::KeyConflict { .. }) => "KeyConflict",
        TriggerError::Engine(_) => "EngineError",
    };
    Diagnostic {
        error_type: error_type.to_owned(),
        error_message: error.to_string(),
    }
}
