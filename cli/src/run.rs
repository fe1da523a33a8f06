//! `aloft run FILE` and `aloft resume RUN`.

use crate::out::{errln, outln};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, bail};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use tokio::signal::unix::SignalKind;

use aloft_core::RunStatus;
use aloft_core::definition::Overlap;
use aloft_core::source::load_path;
use aloft_engine::ports::Store;
use aloft_engine::{Admission, StartRequest, Started};
use aloft_local::runner::claim_driver;
use aloft_local::{Runner, SystemClock};

use crate::progress::Progress;
use crate::runs::resolve_run;
use crate::{DbArgs, Output};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Workflow file (YAML or JSON).
    file: PathBuf,
    /// Run input: a JSON document, or @FILE to read one.
    #[arg(long, default_value = "{}")]
    input: String,
    /// One run per workflow and key: a repeated start while that run is going joins it;
    /// once it has settled, the key cannot start another.
    #[arg(long)]
    idempotency_key: Option<String>,
    /// Overlap policy of this start while other runs of the workflow are going [default:
    /// the workflow's `schedule.overlap`, or allow for a workflow without a schedule].
    #[arg(long, value_enum)]
    overlap: Option<OverlapArg>,
    /// Print the finished run as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    db: DbArgs,
}

/// `--overlap`, spelled as in workflow files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OverlapArg {
    /// Start no run while one is queued or running.
    Skip,
    /// Start anyway.
    Allow,
    /// Wait, queued, until the runs going have settled; at most one run waits.
    #[value(name = "buffer_one")]
    BufferOne,
    /// Cancel the runs going, then start.
    #[value(name = "cancel_running")]
    CancelRunning,
}

impl From<OverlapArg> for Overlap {
    fn from(arg: OverlapArg) -> Self {
        match arg {
            OverlapArg::Skip => Overlap::Skip,
            OverlapArg::Allow => Overlap::Allow,
            OverlapArg::BufferOne => Overlap::BufferOne,
            OverlapArg::CancelRunning => Overlap::CancelRunning,
        }
    }
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// The run id (or a unique prefix of it).
    run: String,
    /// Print the finished run as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    db: DbArgs,
}

/// Validate, start and drive a run to its end.
pub async fn run(args: RunArgs) -> anyhow::Result<ExitCode> {
    let definition = match load_path(&args.file) {
        Ok(definition) => definition,
        Err(problems) => {
            errln!("{problems}");
            return Ok(ExitCode::from(2));
        }
    };
    let input = parse_input(&args.input)?;
    let workdir = folder_of(&args.file)?;
    let mut progress = Progress::new(definition.tasks.len() as u64);
    let mut runner = open(&args.db)?;
    let request = StartRequest {
        definition,
        input,
        idempotency_key: args.idempotency_key,
        scheduled_time: None,
        workdir: Some(workdir.display().to_string()),
    };
    let workflow = request.definition.name.clone();
    let started = runner
        .start_with(request, args.overlap.map(Overlap::from))
        .await
        .context("cannot start the run")?;
    if let Some(code) = admitted(&workflow, &started, args.output) {
        return Ok(code);
    }
    let run_id = started.run_id;
    progress.follow(&run_id);
    if let Some(pid) = claim_driver(runner.db(), &run_id)? {
        errln!("joining run {run_id}, which process {pid} drives: following it to its end");
        return watch(&mut runner, &run_id, &mut progress, args.output).await;
    }
    if !started.created {
        // The key named a run already going whose runner died: pick it up the way
        // `aloft resume` does.
        errln!("joining run {run_id} started earlier with this idempotency key");
        runner.recover(&run_id).await?;
    }
    drive(&mut runner, &run_id, &mut progress, args.output).await
}

/// Say what the overlap policy did with the start; an exit code when no run was made.
pub(crate) fn admitted(workflow: &str, started: &Started, output: Output) -> Option<ExitCode> {
    match &started.admission {
        Admission::Skipped { active } => {
            errln!(
                "skipped: run(s) {} of workflow {workflow} are going and its overlap policy \
                 holds this start back; `--overlap allow` starts one anyway",
                active.join(", ")
            );
            if output == Output::Json {
                let skipped = json!({"status": "skipped", "workflow": workflow, "active": active});
                outln!("{skipped}");
            }
            return Some(ExitCode::SUCCESS);
        }
        Admission::Buffered { behind } if started.created => errln!(
            "run {} waits until run(s) {} of workflow {workflow} settle (overlap buffer_one)",
            started.run_id,
            behind.join(", ")
        ),
        Admission::Replaced { cancelled } => errln!(
            "cancelled run(s) {} of workflow {workflow} (overlap cancel_running)",
            cancelled.join(", ")
        ),
        _ => {}
    }
    None
}

/// Pick up a run where its runner stopped.
pub async fn resume(args: ResumeArgs) -> anyhow::Result<ExitCode> {
    let mut runner = open_existing(&args.db)?;
    let run_id = resolve_run(runner.db(), &args.run)?;
    if let Some(pid) = claim_driver(runner.db(), &run_id)? {
        bail!(
            "run {run_id} is being driven by process {pid} on this machine: wait for it \
             (`aloft runs show {run_id}`), or stop that process and resume"
        );
    }
    let run = runner.recover(&run_id).await?.context("run disappeared")?;
    let workflow = runner.engine().workflow(&run).await?;
    let mut progress = Progress::new(workflow.tasks.len() as u64);
    progress.follow(&run_id);
    drive(&mut runner, &run_id, &mut progress, args.output).await
}

/// Follow a run another process drives until it settles, then report it; if that
/// process stops first, pick the run up and drive it here.
async fn watch(
    runner: &mut Runner,
    run_id: &str,
    progress: &mut Progress,
    output: Output,
) -> anyhow::Result<ExitCode> {
    loop {
        let run = runner.db().run(run_id).await?.context("run disappeared")?;
        if run.status.is_settled() {
            break;
        }
        if claim_driver(runner.db(), run_id)?.is_none() {
            errln!("the runner of run {run_id} stopped: picking the run up");
            runner.recover(run_id).await?;
            return drive(runner, run_id, progress, output).await;
        }
        progress.update(runner.db());
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    }
    progress.finish();
    let run = crate::report::print_run(runner, run_id, output).await?;
    Ok(exit_code(run.status))
}

fn exit_code(status: RunStatus) -> ExitCode {
    if status == RunStatus::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn drive(
    runner: &mut Runner,
    run_id: &str,
    progress: &mut Progress,
    output: Output,
) -> anyhow::Result<ExitCode> {
    let mut terminate =
        tokio::signal::unix::signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut on_step = |db: &aloft_local::Sqlite| progress.update(db);
    let stopped_by = tokio::select! {
        driven = runner.drive(run_id, &mut on_step) => Ok(driven),
        _ = tokio::signal::ctrl_c() => Err(130),
        _ = terminate.recv() => Err(143),
    };
    let driven = match stopped_by {
        Ok(driven) => driven,
        Err(code) => {
            progress.finish();
            errln!(
                "interrupted: run {run_id} is saved; tasks already started keep running. \
                 `aloft resume {run_id}` continues it."
            );
            return Ok(ExitCode::from(code));
        }
    };
    progress.finish();
    let run = driven.with_context(|| format!("run {run_id} stopped"))?;
    let run = crate::report::print_run(runner, &run.id, output).await?;
    Ok(exit_code(run.status))
}

/// Open the embedded backend at the configured database.
pub fn open(db: &DbArgs) -> anyhow::Result<Runner> {
    let path = db.path();
    Runner::open(&path, Arc::new(SystemClock))
        .with_context(|| format!("cannot open database {}", path.display()))
}

/// Open a database that must already exist: commands that only read runs never create
/// one where a mistyped `--db` points.
pub fn open_existing(db: &DbArgs) -> anyhow::Result<Runner> {
    let path = db.path();
    if !path.exists() {
        anyhow::bail!(
            "no database at {}: runs are recorded in .aloft/aloft.db of the folder where \
             `aloft run` started, or where --db / ALOFT_DB points",
            path.display()
        );
    }
    open(db)
}

/// Open an existing database to read runs: read-write when allowed (so a database left
/// by a killed runner is recovered), else read-only, for a user who may only read it.
pub fn open_for_reading(db: &DbArgs) -> anyhow::Result<Runner> {
    let writable = open_existing(db);
    let Err(error) = writable else {
        return writable;
    };
    Runner::open_read_only(&db.path(), Arc::new(SystemClock)).map_err(|_| error)
}

/// `--input`: inline JSON or `@file`.
pub(crate) fn parse_input(text: &str) -> anyhow::Result<Value> {
    let (source, json) = match text.strip_prefix('@') {
        Some(file) => {
            let json = std::fs::read_to_string(file)
                .with_context(|| format!("cannot read --input file {file}"))?;
            (file.to_owned(), json)
        }
        None => ("--input".to_owned(), text.to_owned()),
    };
    match serde_json::from_str(&json) {
        Ok(value) => Ok(value),
        Err(error) => bail!(
            "{source}:{}:{}: input is not JSON: {error}",
            error.line(),
            error.column()
        ),
    }
}

/// The absolute folder holding a file: command tasks run there.
pub(crate) fn folder_of(file: &Path) -> anyhow::Result<PathBuf> {
    let absolute = std::fs::canonicalize(file)
        .with_context(|| format!("cannot resolve {}", file.display()))?;
    Ok(absolute
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf))
}
