//! `aloft serve [FILE|DIR]...`: the embedded scheduler. Fires the schedules of workflow
//! files on this machine's database, starts the runs of the events sent to its inbox,
//! and runs the runs, until SIGINT or SIGTERM.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use tokio::signal::unix::SignalKind;

use aloft_core::Definition;
use aloft_core::source::load_path;
use aloft_engine::ports::{Clock, Store};
use aloft_local::serve::{Daemon, Event, Scheduled};

use crate::DbArgs;
use crate::out::errln;
use crate::run::{folder_of, open};

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Workflow files, or folders: every *.yaml, *.yml and *.json file directly in a
    /// folder is read as a workflow. Workflows with neither a `schedule` nor `events`
    /// are not served.
    #[arg(required = true, value_name = "FILE|DIR")]
    paths: Vec<PathBuf>,
    #[command(flatten)]
    db: DbArgs,
}

/// Load the workflows, then serve their schedules until told to stop.
pub async fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    crate::progress::init_plain_logging();
    let Some(served) = load(&args.paths)? else {
        return Ok(ExitCode::from(2));
    };
    if served.is_empty() {
        bail!("none of these workflows has a schedule or event triggers: nothing to serve");
    }
    let runner = open(&args.db)?;
    let now = runner.engine().clock().now();
    for workflow in &served {
        if !workflow.has_schedule() {
            errln!(
                "serving {} (events only: {} trigger(s))",
                workflow.name(),
                workflow.definition.events.len()
            );
            continue;
        }
        let last = runner.db().last_tick(workflow.name()).await?.unwrap_or(now);
        let next = workflow
            .next_after(last.max(now))
            .map_or_else(|| "none".to_owned(), show);
        let spec = workflow.definition.schedule.as_ref();
        let expression = spec.map_or("", |s| s.expression.as_str());
        let zone = spec.and_then(|s| s.timezone.as_deref()).unwrap_or("UTC");
        errln!(
            "serving {} ({expression} in {zone}): next tick {next}",
            workflow.name()
        );
    }
    let mut daemon = Daemon::new(runner, served);
    daemon
        .adopt()
        .await
        .context("cannot pick up the runs left going")?;
    // Both handlers are in place before the first tick fires.
    let mut terminate =
        tokio::signal::unix::signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut interrupt =
        tokio::signal::unix::signal(SignalKind::interrupt()).context("cannot watch for SIGINT")?;
    let shutdown = async {
        tokio::select! {
            _ = interrupt.recv() => {}
            _ = terminate.recv() => {}
        }
    };
    daemon.run(shutdown, &mut report).await?;
    let going = daemon.driving();
    if going.is_empty() {
        errln!("stopped");
    } else {
        errln!(
            "stopped: {} run(s) going are saved ({}); `aloft serve` picks them up when it \
             starts again, or `aloft resume RUN` continues one",
            going.len(),
            going.join(", ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// The daemon logs what it does; errors are worth a line of their own.
fn report(event: &Event) {
    if let Event::Error { doing, error } = event {
        errln!("error {doing}: {error}");
    }
}

/// Read every workflow file; `None` (after printing the problems) when any is invalid.
fn load(paths: &[PathBuf]) -> anyhow::Result<Option<Vec<Scheduled>>> {
    let mut served: Vec<(PathBuf, Scheduled)> = Vec::new();
    let mut invalid = false;
    for file in workflow_files(paths)? {
        let definition: Definition = match load_path(&file) {
            Ok(definition) => definition,
            Err(problems) => {
                errln!("{problems}");
                invalid = true;
                continue;
            }
        };
        let name = definition.name.clone();
        if let Some((first, _)) = served.iter().find(|(_, s)| s.name() == name) {
            bail!(
                "{} and {} both define workflow {name}: serve one of them",
                first.display(),
                file.display()
            );
        }
        let workdir = folder_of(&file)?.display().to_string();
        match Scheduled::new(definition, Some(workdir))
            .with_context(|| format!("{}: bad schedule", file.display()))?
        {
            Some(scheduled) => served.push((file, scheduled)),
            None => errln!(
                "{}: workflow {name} has neither a schedule nor event triggers: not served",
                file.display()
            ),
        }
    }
    Ok((!invalid).then(|| served.into_iter().map(|(_, s)| s).collect()))
}

/// The files named, and the workflow files directly inside the folders named, sorted.
fn workflow_files(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        if !path.is_dir() {
            files.push(path.clone());
            continue;
        }
        let entries =
            std::fs::read_dir(path).with_context(|| format!("cannot read {}", path.display()))?;
        let mut found: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|entry| entry.path())
            .filter(|file| file.is_file() && is_workflow_file(file))
            .collect();
        found.sort();
        if found.is_empty() {
            bail!("{} holds no *.yaml, *.yml or *.json file", path.display());
        }
        files.extend(found);
    }
    Ok(files)
}

fn is_workflow_file(path: &Path) -> bool {
    matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("yaml" | "yml" | "json")
    )
}

fn show(ms: u64) -> String {
    Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX))
        .map_or_else(|_| ms.to_string(), |t| t.to_string())
}
