//! `aloft logs RUN TASK`

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;

use aloft_engine::TaskKey;
use aloft_engine::ports::Store;
use aloft_local::files::AttemptFiles;

use crate::DbArgs;
use crate::run::open_for_reading;
use crate::runs::resolve_run;

#[derive(Debug, Args)]
pub struct LogsArgs {
    /// The run id (or a unique prefix of it).
    run: String,
    /// The task name.
    task: String,
    /// Only this attempt.
    #[arg(long)]
    attempt: Option<u32>,
    /// For a for_each task: this item's log.
    #[arg(long)]
    item: Option<u32>,
    #[command(flatten)]
    db: DbArgs,
}

/// Print the stderr of each attempt of a task, with a header per attempt.
pub async fn logs(args: &LogsArgs) -> anyhow::Result<ExitCode> {
    let runner = open_for_reading(&args.db)?;
    let run_id = resolve_run(runner.db(), &args.run)?;
    let key = TaskKey {
        task: args.task.clone(),
        item: args.item,
    };
    let record = runner
        .db()
        .tasks(&run_id, std::slice::from_ref(&key))
        .await?
        .pop()
        .with_context(|| format!("run {run_id} has no task {key}"))?;
    if let (Some(items), None) = (record.items, args.item) {
        bail!(
            "task {key} is a for_each task with {} items, each with its own log: \
             add --item N (0 to {})",
            items.total,
            items.total.saturating_sub(1)
        );
    }
    if record.attempt == 0 {
        bail!(
            "task {key} of run {run_id} has not started ({})",
            record.state
        );
    }
    let attempts: Vec<u32> = match args.attempt {
        Some(n) if n == 0 || n > record.attempt => {
            bail!("task {key} has attempts 1 to {}", record.attempt)
        }
        Some(n) => vec![n],
        None => (1..=record.attempt).collect(),
    };
    let files = |attempt| AttemptFiles::new(runner.db().files(), &run_id, &key, attempt);
    let printed = print_logs(&key, attempts.into_iter().map(|a| (a, files(a).log())));
    match printed {
        // The reader went away (`aloft logs ... | head`): nothing left to do.
        Err(error) if error.kind() == std::io::ErrorKind::BrokenPipe => {}
        other => other?,
    }
    Ok(ExitCode::SUCCESS)
}

/// Each attempt's log under a header line.
fn print_logs(key: &TaskKey, logs: impl Iterator<Item = (u32, PathBuf)>) -> std::io::Result<()> {
    let mut stdout = std::io::stdout().lock();
    for (attempt, log) in logs {
        let text = std::fs::read(&log).unwrap_or_default();
        writeln!(stdout, "== {key} attempt {attempt} ==")?;
        stdout.write_all(&text)?;
        if !text.is_empty() && !text.ends_with(b"\n") {
            writeln!(stdout)?;
        }
    }
    stdout.flush()
}
