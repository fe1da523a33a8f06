//! The `aloft` command: validate, draw and run workflows on the embedded backend, and
//! read what runs did.

mod aws;
mod backfill;
mod commands;
mod deploy;
mod events;
mod graph;
mod logs;
mod out;
mod progress;
mod report;
mod run;
mod runs;
mod schedule;
mod serve;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::out::errln;

/// aloft: a serverless-first workflow scheduler. This command runs workflows on this
/// machine, embedded on SQLite, and stores, starts and inspects them on AWS, with the
/// same engine.
#[derive(Debug, Parser)]
#[command(name = "aloft", version, about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check workflow files and report every problem as FILE:LINE:COLUMN: message.
    Validate(validate::ValidateArgs),
    /// Print a workflow's DAG as a Mermaid flowchart.
    Graph(graph::GraphArgs),
    /// Preview schedule expressions: when they fire, in UTC and in local time.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Try EventBridge event patterns and input templates on events; send events to the
    /// local inbox, for `aloft serve`.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Run a workflow to the end on this machine; exit 0 only if it succeeded.
    Run(run::RunArgs),
    /// Continue a run whose runner stopped (killed, crashed, interrupted).
    Resume(run::ResumeArgs),
    /// Fire the schedules of workflow files on this machine and run their runs, until
    /// SIGINT or SIGTERM.
    Serve(serve::ServeArgs),
    /// Run one run per schedule tick of a past range, oldest first.
    Backfill(backfill::BackfillArgs),
    /// List and inspect runs.
    #[command(subcommand)]
    Runs(runs::RunsCommand),
    /// Print a task's log (its stderr), attempt by attempt.
    Logs(logs::LogsArgs),
    /// Store workflow definitions on AWS.
    #[command(subcommand)]
    Workflows(aws::WorkflowsCommand),
    /// Start a run of a stored workflow on AWS.
    Start(aws::StartArgs),
    /// Run the plan, dispatch and complete handlers on this machine as pollers of the
    /// AWS queues (a stand-in for Lambda's SQS event source mappings).
    Dev(aws::DevArgs),
    /// Make AWS match workflow files: store their definitions, and create, update or
    /// delete their EventBridge Scheduler schedules and EventBridge rules.
    Deploy(deploy::DeployArgs),
}

/// Where the embedded database lives.
#[derive(Debug, Clone, Args)]
struct DbArgs {
    /// The database file [default: .aloft/aloft.db in the working directory].
    #[arg(long, env = "ALOFT_DB", global = true)]
    db: Option<PathBuf>,
}

impl DbArgs {
    fn path(&self) -> PathBuf {
        self.db
            .clone()
            .unwrap_or_else(|| PathBuf::from(".aloft").join("aloft.db"))
    }
}

/// How results are printed on stdout.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, ValueEnum)]
enum Output {
    /// For people.
    #[default]
    Text,
    /// One JSON document.
    Json,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            errln!("error: cannot start the async runtime: {error}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Validate(args) => validate::validate(&args),
            Command::Graph(args) => graph::graph(&args),
            Command::Schedule(command) => schedule::schedule(command),
            Command::Events(command) => events::events(command),
            Command::Run(args) => run::run(args).await,
            Command::Resume(args) => run::resume(args).await,
            Command::Serve(args) => serve::serve(args).await,
            Command::Backfill(args) => backfill::run_backfill(args).await,
            Command::Runs(command) => runs::runs(command).await,
            Command::Logs(args) => logs::logs(&args).await,
            Command::Workflows(command) => aws::workflows(command).await,
            Command::Start(args) => aws::start_run(args).await,
            Command::Dev(args) => aws::dev(args).await,
            Command::Deploy(args) => deploy::deploy(args).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(error) => {
            errln!("error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
