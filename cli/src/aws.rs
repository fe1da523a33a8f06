//! The AWS backend from the command line: `aloft workflows put`, `aloft start`,
//! `aloft runs list/show --backend aws` and `aloft dev`.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};

use aloft_aws::dev::{PollOptions, serve};
use aloft_aws::read::AttemptRecord;
use aloft_aws::trigger::{TriggerRequest, reply, start_in};
use aloft_aws::{Backend, Settings};
use aloft_core::source::load_path;
use aloft_engine::ports::Store;
use aloft_local::query::AttemptRow;

use crate::Output;
use crate::commands::DevCommands;
use crate::out::{errln, outln};
use crate::report::RunView;
use crate::run::{OverlapArg, admitted};

/// Which backend a command works on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
pub enum BackendKind {
    /// SQLite on this machine.
    #[default]
    Embedded,
    /// DynamoDB, SQS, Lambda and EventBridge.
    Aws,
}

/// Where the AWS backend's resources are. Each flag falls back to its environment
/// variable, as the functions read them.
#[derive(Debug, Clone, Args)]
pub struct AwsArgs {
    /// The DynamoDB table.
    #[arg(long, env = "ALOFT_TABLE")]
    table: Option<String>,
    /// The plan queue URL.
    #[arg(long, env = "ALOFT_PLAN_QUEUE_URL")]
    plan_queue_url: Option<String>,
    /// The dispatch queue URL.
    #[arg(long, env = "ALOFT_DISPATCH_QUEUE_URL")]
    dispatch_queue_url: Option<String>,
    /// The complete queue URL.
    #[arg(long, env = "ALOFT_COMPLETE_QUEUE_URL")]
    complete_queue_url: Option<String>,
    /// The EventBridge bus for lifecycle events [default: default].
    #[arg(long, env = "ALOFT_EVENT_BUS")]
    event_bus: Option<String>,
    /// One endpoint for every AWS service (a local stack). Without it the SDK reads
    /// AWS_ENDPOINT_URL and AWS_ENDPOINT_URL_<SERVICE>.
    #[arg(long)]
    endpoint_url: Option<String>,
}

impl AwsArgs {
    fn settings(&self, destinations: Option<&str>) -> anyhow::Result<Settings> {
        let flags = [
            ("ALOFT_TABLE", &self.table),
            ("ALOFT_PLAN_QUEUE_URL", &self.plan_queue_url),
            ("ALOFT_DISPATCH_QUEUE_URL", &self.dispatch_queue_url),
            ("ALOFT_COMPLETE_QUEUE_URL", &self.complete_queue_url),
            ("ALOFT_EVENT_BUS", &self.event_bus),
        ];
        let settings = Settings::from_lookup(|name| {
            if let Some(mode) = destinations.filter(|_| name == "ALOFT_LAMBDA_DESTINATIONS") {
                return Some(mode.to_owned());
            }
            flags
                .iter()
                .find(|(flag, _)| *flag == name)
                .and_then(|(_, value)| (*value).clone())
                .or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
        })?;
        Ok(Settings {
            endpoint_url: self.endpoint_url.clone(),
            ..settings
        })
    }

    /// Connect with these settings.
    pub async fn connect(&self) -> anyhow::Result<Backend> {
        Ok(Backend::connect(self.settings(None)?, None).await)
    }
}

#[derive(Debug, clap::Subcommand)]
pub enum WorkflowsCommand {
    /// Store workflow files as immutable, content-hashed versions and point each
    /// workflow's LATEST at its new version.
    Put(PutArgs),
}

#[derive(Debug, Args)]
pub struct PutArgs {
    /// Workflow files (YAML or JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    aws: AwsArgs,
}

/// Run a `workflows` subcommand.
pub async fn workflows(command: WorkflowsCommand) -> anyhow::Result<ExitCode> {
    crate::progress::init_plain_logging();
    let WorkflowsCommand::Put(args) = command;
    let mut definitions = Vec::new();
    let mut invalid = false;
    for file in &args.files {
        match load_path(file) {
            Ok(definition) => definitions.push(definition),
            Err(problems) => {
                errln!("{problems}");
                invalid = true;
            }
        }
    }
    let mut seen = std::collections::HashMap::new();
    for (definition, file) in definitions.iter().zip(&args.files) {
        if let Some(earlier) = seen.insert(definition.name.as_str(), file) {
            errln!(
                "{}: workflow {:?} is also defined by {}: one file per workflow",
                file.display(),
                definition.name,
                earlier.display()
            );
            invalid = true;
        }
    }
    if invalid {
        // Nothing is stored unless every file is valid.
        return Ok(ExitCode::from(2));
    }
    let backend = args.aws.connect().await?;
    let store = backend.store();
    for definition in &definitions {
        let stored = store
            .put_workflow(definition)
            .await
            .with_context(|| format!("cannot store workflow {}", definition.name))?;
        let what = if stored.changed {
            "stored"
        } else {
            "unchanged"
        };
        outln!("{}  {}  {what}", definition.name, stored.version);
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(Debug, Args)]
pub struct StartArgs {
    /// The workflow's name (its LATEST version runs).
    workflow: String,
    /// Run input: a JSON document, or @FILE to read one.
    #[arg(long, default_value = "{}")]
    input: String,
    /// One run per workflow and key: a repeated start with the same key and input
    /// returns the same run while it is going; once it has settled, the key cannot start
    /// another.
    #[arg(long, value_parser = non_empty)]
    idempotency_key: Option<String>,
    /// Overlap policy of this start while other runs of the workflow are going [default:
    /// the workflow's `schedule.overlap`, or allow for a workflow without a schedule].
    #[arg(long, value_enum)]
    overlap: Option<OverlapArg>,
    /// Where command tasks run under `aloft dev` [default: the working directory].
    #[arg(long)]
    workdir: Option<PathBuf>,
    /// Wait until the run settles; exit 0 only if it succeeded.
    #[arg(long)]
    wait: bool,
    /// Longest wait with --wait, in seconds.
    #[arg(long, default_value_t = 3600)]
    wait_timeout: u64,
    /// Print JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    aws: AwsArgs,
}

/// `aloft start WORKFLOW`: trigger a run on AWS.
pub async fn start_run(args: StartArgs) -> anyhow::Result<ExitCode> {
    crate::progress::init_plain_logging();
    let input = crate::run::parse_input(&args.input)?;
    let backend = args.aws.connect().await?;
    let engine = backend.engine();
    let request = TriggerRequest {
        workflow: args.workflow.clone(),
        input,
        idempotency_key: args.idempotency_key.clone(),
        scheduled_time: None,
        overlap: args.overlap.map(Into::into),
    };
    let workdir = match &args.workdir {
        Some(dir) => dir.clone(),
        None => std::env::current_dir().context("cannot read the working directory")?,
    };
    let workdir = std::fs::canonicalize(&workdir)
        .with_context(|| format!("cannot resolve --workdir {}", workdir.display()))?;
    let started = start_in(&engine, request, Some(workdir.display().to_string())).await?;
    if let Some(code) = admitted(&args.workflow, &started, args.output) {
        return Ok(code);
    }
    if !args.wait {
        match args.output {
            Output::Json => outln!("{}", reply(&started)),
            Output::Text => outln!("{}", started.run_id),
        }
        return Ok(ExitCode::SUCCESS);
    }
    let begun = std::time::Instant::now();
    let deadline = begun + Duration::from_secs(args.wait_timeout);
    let mut hinted = false;
    let run = loop {
        let run = engine
            .store()
            .run(&started.run_id)
            .await?
            .context("the run disappeared")?;
        if run.status.is_settled() {
            break run;
        }
        if !hinted
            && run.status == aloft_core::RunStatus::Queued
            && begun.elapsed() > Duration::from_secs(10)
        {
            errln!(
                "run {} is still queued: is something handling the queues (`aloft dev`, or the \
                 deployed functions)?",
                run.id
            );
            hinted = true;
        }
        if std::time::Instant::now() > deadline {
            errln!(
                "run {} is still {} after {}s",
                run.id,
                run.status,
                args.wait_timeout
            );
            return Ok(ExitCode::FAILURE);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    show_run(&backend, &run.id, args.output).await?;
    Ok(if run.status == aloft_core::RunStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `aloft runs list --backend aws`.
pub async fn list_runs(
    aws: &AwsArgs,
    workflow: Option<&str>,
    limit: usize,
) -> anyhow::Result<Vec<aloft_engine::record::RunRecord>> {
    let backend = aws.connect().await?;
    Ok(backend.store().list_runs(workflow, limit).await?)
}

/// Print one run read from the table.
pub async fn show_run(backend: &Backend, run_id: &str, output: Output) -> anyhow::Result<()> {
    let Some((run, tasks)) = backend.store().show_run(run_id).await? else {
        bail!("no run {run_id:?} in table {}", backend.settings.table);
    };
    let engine = backend.engine();
    let workflow = engine.workflow(&run).await?;
    let mut history = Vec::new();
    let mut records = Vec::new();
    for (task, attempts) in tasks {
        history.extend(
            attempts
                .into_iter()
                .map(|a| attempt_row(&task.key.task, task.key.item, a)),
        );
        records.push(task);
    }
    let view = RunView {
        run: &run,
        tasks: &records,
        history: &history,
        workflow: &workflow,
    };
    match output {
        Output::Json => outln!("{}", view.to_json()),
        Output::Text => crate::out::out!("{}", view.to_table()),
    }
    Ok(())
}

fn non_empty(text: &str) -> Result<String, String> {
    if text.is_empty() {
        Err("an idempotency key cannot be empty".into())
    } else {
        Ok(text.to_owned())
    }
}

fn attempt_row(task: &str, item: Option<u32>, attempt: AttemptRecord) -> AttemptRow {
    AttemptRow {
        task: task.to_owned(),
        item,
        attempt: attempt.attempt,
        state: attempt.state,
        started_at: None,
        ended_at: attempt.ended_at.unwrap_or_default(),
        failure: attempt.failure,
    }
}

#[derive(Debug, Args)]
pub struct DevArgs {
    /// Pollers per queue.
    #[arg(long, default_value_t = 2)]
    pollers: usize,
    /// Long-poll wait of one receive, in seconds (0 to 20).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(i32).range(0..=20))]
    wait_seconds: i32,
    /// How results of lambda tasks come back: `emulate` (this process invokes and
    /// writes the destination record, for emulators such as `cargo lambda watch`) or
    /// `aws` (the functions' own asynchronous-invoke destinations).
    #[arg(long, default_value = "emulate", value_parser = ["emulate", "aws"])]
    destinations: String,
    #[command(flatten)]
    aws: AwsArgs,
}

/// `aloft dev`: the four handlers as local pollers until interrupted.
pub async fn dev(args: DevArgs) -> anyhow::Result<ExitCode> {
    crate::progress::init_plain_logging();
    let settings = args.aws.settings(Some(&args.destinations))?;
    let backend = Backend::connect(settings, None).await;
    let fallback = std::env::current_dir().context("cannot read the working directory")?;
    let commands = Arc::new(DevCommands::new(fallback));
    let engine = backend.engine_with(Some(commands.clone()));
    errln!(
        "aloft dev: polling the plan, dispatch and complete queues of table {} ({} pollers each; \
         these pollers stand in for Lambda's SQS event source mappings). Ctrl-C stops.",
        backend.settings.table,
        args.pollers
    );
    let options = PollOptions {
        wait_seconds: args.wait_seconds,
    };
    tokio::select! {
        () = serve(&backend, &engine, options, args.pollers) => {}
        _ = tokio::signal::ctrl_c() => {}
        () = terminated() => {}
    }
    // No new work is taken from here on. Commands already running finish and report,
    // so that their attempts are not left to time out and run again.
    let left = commands.running();
    if left > 0 {
        errln!(
            "aloft dev: waiting for {left} running command task(s) to finish and report;              Ctrl-C or SIGTERM again abandons them (they then time out and follow their retry policy)"
        );
        tokio::select! {
            () = async {
                while commands.running() > 0 {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            } => {}
            _ = tokio::signal::ctrl_c() => return Ok(ExitCode::from(130)),
            () = terminated() => return Ok(ExitCode::from(143)),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn terminated() {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
        Ok(mut signal) => {
            signal.recv().await;
        }
        Err(_) => std::future::pending().await,
    }
}
