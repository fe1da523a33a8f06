//! aloft-aws: the engine's ports on AWS. The store is one DynamoDB table, the three
//! queues are SQS queues, `lambda` tasks start as asynchronous invocations whose results
//! come back as Lambda destination records, and lifecycle events go to EventBridge.
//!
//! The four Lambda functions in `functions/` and `aloft dev` only wire these adapters
//! into the engine: [`Backend::connect`] builds them, [`batch::handle_batch`] runs one
//! batch of queue messages through the engine. `aloft deploy`'s schedules and rules are
//! in `deploy`, behind the cargo feature of that name, which only the command line enables.

pub mod backfill;
pub mod batch;
#[cfg(feature = "deploy")]
pub mod deploy;
pub mod destination;
pub mod dev;
mod error;
pub mod events;
pub mod invoker;
pub mod metrics;
pub mod queue;
pub mod read;
pub mod settings;
pub mod store;
pub mod trigger;

use std::sync::Arc;

use aloft_engine::Config;
use aloft_engine::Engine;
use aloft_engine::ports::Clock;

#[cfg(feature = "deploy")]
pub use error::scheduler_error;
pub use error::{dynamodb_error, events_error, lambda_error, sqs_error};
pub use events::EventBridgeEvents;
pub use invoker::{Destinations, LambdaInvoker, LocalCommands};
pub use metrics::CallCounter;
pub use queue::SqsQueue;
pub use settings::Settings;
pub use store::DynamoStore;

/// A service client from the shared configuration, counting its requests when asked.
macro_rules! client {
    ($sdk:ident, $shared:expr, $counter:expr $(, $tweak:expr)?) => {{
        let config = $sdk::config::Builder::from($shared);
        $(let config = $tweak(config);)?
        let config = match $counter {
            Some(counter) => config.interceptor(counter.clone()),
            None => config,
        };
        $sdk::Client::from_conf(config.build())
    }};
}

/// The engine on AWS.
pub type AwsEngine = Engine<DynamoStore, SqsQueue, LambdaInvoker, SystemClock, EventBridgeEvents>;

/// The AWS clients and settings one process uses.
#[derive(Clone, Debug)]
pub struct Backend {
    /// Where things are.
    pub settings: Settings,
    /// DynamoDB.
    pub dynamodb: aws_sdk_dynamodb::Client,
    /// SQS.
    pub sqs: aws_sdk_sqs::Client,
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// EventBridge.
    pub eventbridge: aws_sdk_eventbridge::Client,
}

impl Backend {
    /// Clients configured the usual aws-config way (region, credentials,
    /// `AWS_ENDPOINT_URL`), counting every request into `counter` when given.
    pub async fn connect(settings: Settings, counter: Option<CallCounter>) -> Self {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(url) = &settings.endpoint_url {
            loader = loader.endpoint_url(url);
        }
        let shared = loader.load().await;
        Self::from_config(settings, &shared, counter)
    }

    /// Clients from a configuration built by the caller.
    pub fn from_config(
        settings: Settings,
        shared: &aws_config::SdkConfig,
        counter: Option<CallCounter>,
    ) -> Self {
        let counter = counter.as_ref();
        let dynamodb = client!(aws_sdk_dynamodb, shared, counter);
        let sqs = client!(aws_sdk_sqs, shared, counter);
        // aloft's retry policy decides whether an attempt runs again: an SDK retry of an
        // invoke could start the function twice for one attempt.
        let lambda = client!(
            aws_sdk_lambda,
            shared,
            counter,
            |c: aws_sdk_lambda::config::Builder| {
                c.retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            }
        );
        let eventbridge = client!(aws_sdk_eventbridge, shared, counter);
        Self {
            settings,
            dynamodb,
            sqs,
            lambda,
            eventbridge,
        }
    }

    /// The store.
    pub fn store(&self) -> DynamoStore {
        DynamoStore::new(self.dynamodb.clone(), &self.settings.table)
            .with_retention_days(self.settings.run_retention_days)
    }

    /// The queues.
    pub fn queue(&self) -> SqsQueue {
        SqsQueue::new(self.sqs.clone(), self.settings.queues.clone())
    }

    /// The engine over this backend.
    pub fn engine(&self) -> AwsEngine {
        self.engine_with(None)
    }

    /// The engine over this backend, running `command` tasks with `commands` if given.
    pub fn engine_with(&self, commands: Option<Arc<dyn invoker::LocalCommands>>) -> AwsEngine {
        let mut invoker = LambdaInvoker::new(
            self.lambda.clone(),
            self.queue(),
            self.settings.destinations,
        );
        if let Some(commands) = commands {
            invoker = invoker.with_commands(commands);
        }
        let events = EventBridgeEvents::new(self.eventbridge.clone(), &self.settings.event_bus);
        Engine::new(
            self.store(),
            self.queue(),
            invoker,
            SystemClock,
            engine_config(),
        )
        .with_events(events)
    }
}

/// Follow-ups one message's handler handles in place (see `Config::inline_follow_ups`):
/// on AWS every message not sent saves three billed SQS requests and a Lambda
/// invocation. Bounded so that one handler does not run for long: a chain of 100 `pass`
/// tasks takes well under a second of DynamoDB calls.
pub const INLINE_FOLLOW_UPS: usize = 100;

/// The engine configuration of the AWS backend.
pub fn engine_config() -> Config {
    Config {
        inline_follow_ups: INLINE_FOLLOW_UPS,
        run_watchdog: true,
        start_from_waiting: true,
        document_carries_run: true,
        ..Config::default()
    }
}

/// The system clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> u64 {
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
    }

    fn random(&self) -> u64 {
        rand::random()
    }
}

/// Shared handle to the engine, for handlers that serve many events.
pub type SharedEngine = Arc<AwsEngine>;
