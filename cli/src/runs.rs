//! `aloft runs list` and `aloft runs show RUN`.

use crate::out::{out, outln};
use std::fmt::Write as _;
use std::process::ExitCode;

use anyhow::bail;
use clap::{Args, Subcommand};
use serde_json::{Value, json};

use aloft_local::Sqlite;
use aloft_local::query::{Found, find_run, list_runs};

use crate::aws::{AwsArgs, BackendKind};
use crate::report::{duration, time};
use crate::run::open_for_reading;
use crate::{DbArgs, Output};

#[derive(Debug, Subcommand)]
pub enum RunsCommand {
    /// The most recent runs, newest first.
    List(ListArgs),
    /// One run: its status, SLA, and each task's status, attempts, duration and error.
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only runs of this workflow.
    #[arg(long)]
    workflow: Option<String>,
    /// At most this many runs.
    #[arg(long, default_value_t = 20)]
    limit: usize,
    /// Print JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// Where the runs are.
    #[arg(long, value_enum, default_value_t, env = "ALOFT_BACKEND")]
    backend: BackendKind,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    aws: AwsArgs,
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    /// The run id (a unique prefix of it on the embedded backend).
    run: String,
    /// Print JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// Where the run is.
    #[arg(long, value_enum, default_value_t, env = "ALOFT_BACKEND")]
    backend: BackendKind,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    aws: AwsArgs,
}

/// Run a `runs` subcommand.
pub async fn runs(command: RunsCommand) -> anyhow::Result<ExitCode> {
    crate::progress::init_plain_logging();
    match command {
        RunsCommand::List(args) => list(&args).await,
        RunsCommand::Show(args) => show(&args).await,
    }
}

async fn list(args: &ListArgs) -> anyhow::Result<ExitCode> {
    // No database yet means no runs yet; listing must not create one.
    let runs = if args.backend == BackendKind::Aws {
        crate::aws::list_runs(&args.aws, args.workflow.as_deref(), args.limit).await?
    } else if args.db.path().exists() {
        let runner = open_for_reading(&args.db)?;
        list_runs(runner.db(), args.workflow.as_deref(), args.limit)?
    } else {
        Vec::new()
    };
    match args.output {
        Output::Json => {
            let rows: Vec<Value> = runs
                .iter()
                .map(|r| {
                    json!({
                        "id": r.id,
                        "workflow": r.workflow,
                        "status": r.status.as_str(),
                        "created_at": time(r.created_at),
                        "duration_ms": r.ended_at.zip(r.started_at).map(|(e, s)| e.saturating_sub(s)),
                        "sla_missed": r.sla_missed,
                    })
                })
                .collect();
            outln!("{}", Value::Array(rows));
        }
        Output::Text => {
            let mut out = format!(
                "{:28}  {:24}  {:10}  {:24}  {:>9}\n",
                "RUN", "WORKFLOW", "STATUS", "CREATED", "DURATION"
            );
            for r in &runs {
                let took = r
                    .ended_at
                    .zip(r.started_at)
                    .map(|(e, s)| duration(e.saturating_sub(s)))
                    .unwrap_or_default();
                let sla = if r.sla_missed { "  SLA missed" } else { "" };
                let _ = writeln!(
                    out,
                    "{:28}  {:24}  {:10}  {:24}  {took:>9}{sla}",
                    r.id,
                    r.workflow,
                    r.status.as_str(),
                    time(r.created_at)
                );
            }
            out!("{out}");
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn show(args: &ShowArgs) -> anyhow::Result<ExitCode> {
    if args.backend == BackendKind::Aws {
        let backend = args.aws.connect().await?;
        crate::aws::show_run(&backend, &args.run, args.output).await?;
        return Ok(ExitCode::SUCCESS);
    }
    let runner = open_for_reading(&args.db)?;
    let run_id = resolve_run(runner.db(), &args.run)?;
    crate::report::print_run(&runner, &run_id, args.output).await?;
    Ok(ExitCode::SUCCESS)
}

/// A run id from an id or a unique prefix, or an error saying what matched.
pub fn resolve_run(db: &Sqlite, id_or_prefix: &str) -> anyhow::Result<String> {
    match find_run(db, id_or_prefix)? {
        Found::One(id) => Ok(id),
        Found::None => bail!("no run {id_or_prefix:?} in this database"),
        Found::Ambiguous(ids) => bail!(
            "run prefix {id_or_prefix:?} matches several runs: {}",
            ids.join(", ")
        ),
    }
}
