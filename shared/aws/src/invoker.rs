//! `lambda` tasks on AWS: an asynchronous `Event` invoke. The function's event-invoke
//! configuration sends its result, success or failure, to the complete queue as a
//! destination record; `Destinations::Emulate` does that in this process instead, for
//! emulators without asynchronous destinations (`cargo lambda watch`).

use std::sync::Arc;

use aws_sdk_lambda::Client;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use futures::future::BoxFuture;
use serde_json::Value;
use tracing::{debug, warn};

use aloft_core::Failure;
use aloft_core::definition::RunSpec;
use aloft_engine::message::TaskKey;
use aloft_engine::ports::{Invoker, Job, PortResult, StartError};

use crate::destination::DestinationRecord;
use crate::error::lambda_error;
use crate::queue::SqsQueue;

/// How results of `lambda` tasks reach the complete queue.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Destinations {
    /// Lambda's own asynchronous-invoke destinations (production).
    #[default]
    Aws,
    /// This process invokes synchronously in the background and writes the same
    /// destination record itself. For local emulators; a result is lost if the process
    /// stops first, and the attempt then times out.
    Emulate,
}

/// Runs `command` tasks on this machine for `aloft dev`. The functions in the cloud
/// have no such runner and fail command tasks as unsupported.
pub trait LocalCommands: Send + Sync + std::fmt::Debug {
    /// Start one attempt; its result goes to `results` as a `Complete` message.
    fn start(&self, job: Job, results: SqsQueue) -> BoxFuture<'static, Result<(), StartError>>;

    /// Stop an attempt that ran out of time.
    fn cancel(&self, run_id: &str, key: &TaskKey, attempt: u32);
}

/// Starts `lambda` tasks (and `command` tasks, when given a local runner).
#[derive(Clone, Debug)]
pub struct LambdaInvoker {
    client: Client,
    queue: SqsQueue,
    destinations: Destinations,
    commands: Option<Arc<dyn LocalCommands>>,
}

impl LambdaInvoker {
    /// An invoker; `queue` is where emulated destination records go.
    pub fn new(client: Client, queue: SqsQueue, destinations: Destinations) -> Self {
        Self {
            client,
            queue,
            destinations,
            commands: None,
        }
    }

    /// The same invoker, running `command` tasks with `commands`.
    #[must_use]
    pub fn with_commands(mut self, commands: Arc<dyn LocalCommands>) -> Self {
        self.commands = Some(commands);
        self
    }
}

impl Invoker for LambdaInvoker {
    async fn start(&self, job: Job) -> Result<(), StartError> {
        let function = match &job.run {
            RunSpec::Lambda(function) => function.clone(),
            RunSpec::Command(_) => {
                return match &self.commands {
                    Some(commands) => commands.start(job, self.queue.clone()).await,
                    None => Err(StartError::Rejected(Failure::new(
                        "unsupported",
                        "command tasks run on this machine only (`aloft run`, or `aloft dev` \
                         against a local stack); in the cloud use a lambda task",
                    ))),
                };
            }
            RunSpec::Pass(_) => return Ok(()),
        };
        match self.destinations {
            Destinations::Aws => {
                self.client
                    .invoke()
                    .function_name(&function)
                    .invocation_type(InvocationType::Event)
                    .payload(Blob::new(job.input))
                    .send()
                    .await
                    .map_err(|e| lambda_error("Invoke", &e))?;
                debug!(run_id = %job.run_id, task = %job.key, function, "invoked asynchronously");
                Ok(())
            }
            Destinations::Emulate => {
                let invoker = self.clone();
                tokio::spawn(async move { invoker.emulate(function, job).await });
                Ok(())
            }
        }
    }

    async fn cancel(&self, run_id: &str, key: &TaskKey, attempt: u32) -> PortResult<()> {
        if let Some(commands) = &self.commands {
            commands.cancel(run_id, key, attempt);
        }
        // A running invocation cannot be stopped; its late result finds the attempt
        // settled and is ignored.
        debug!(run_id, task = %key, attempt, "lambda attempt abandoned");
        Ok(())
    }
}

impl LambdaInvoker {
    async fn emulate(&self, function: String, job: Job) {
        let request_payload: Value = serde_json::from_slice(&job.input).unwrap_or(Value::Null);
        let answer = self
            .client
            .invoke()
            .function_name(&function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(job.input))
            .send()
            .await;
        let (status, function_error, body) = match answer {
            Ok(response) => (
                u16::try_from(response.status_code()).unwrap_or(200),
                response.function_error().map(str::to_owned),
                response
                    .payload()
                    .map(|b| b.as_ref().to_vec())
                    .unwrap_or_default(),
            ),
            Err(error) => {
                let raw = error.raw_response();
                let status = raw.map_or(0, |r| r.status().as_u16());
                let body = raw
                    .and_then(|r| r.body().bytes())
                    .unwrap_or_default()
                    .to_vec();
                let is_error_document = serde_json::from_slice::<Value>(&body)
                    .ok()
                    .is_some_and(|d| d.get("errorType").is_some());
                if (500..600).contains(&status) && is_error_document {
                    // `cargo lambda watch` answers a function error with a 5xx.
                    (200, Some("Unhandled".to_owned()), body)
                } else {
                    let message = lambda_error("Invoke", &error).message;
                    let document =
                        serde_json::json!({"errorType": "error", "errorMessage": message});
                    (
                        200,
                        Some("Unhandled".to_owned()),
                        document.to_string().into_bytes(),
                    )
                }
            }
        };
        let response_payload = if body.iter().all(u8::is_ascii_whitespace) {
            Value::Null
        } else {
            serde_json::from_slice(&body)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
        };
        let request_id = format!("emulated-{}-{}-{}", job.run_id, job.key, job.attempt);
        let record = DestinationRecord::ended_now(
            &function,
            request_id,
            request_payload,
            status,
            function_error,
            response_payload,
        );
        if let Err(error) = self.queue.send_record(&record).await {
            warn!(run_id = %job.run_id, task = %job.key, %error, "emulated destination record not sent; the attempt will time out");
        }
    }
}
