//! `aloft backfill FILE --from T --to T`: one run per schedule tick of a past range, on
//! this machine.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use serde_json::json;
use tokio::signal::unix::SignalKind;

use aloft_core::RunStatus;
use aloft_core::schedule::ticks::between;
use aloft_core::schedule::{Schedule, time_zone};
use aloft_core::source::load_path;
use aloft_local::backfill::{Filled, backfill};

use crate::out::{errln, outln};
use crate::run::{folder_of, open};
use crate::{DbArgs, Output};

/// Most ticks one backfill runs.
const MAX_TICKS: usize = 10_000;

#[derive(Debug, Args)]
pub struct BackfillArgs {
    /// Workflow file (YAML or JSON) with a `schedule`.
    file: PathBuf,
    /// First instant of the range (included), such as 2026-03-01T00:00:00Z.
    #[arg(long)]
    from: String,
    /// End of the range (excluded).
    #[arg(long)]
    to: String,
    /// Most runs going at once; ticks start oldest first.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    /// Print the ticks and their runs as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    #[command(flatten)]
    db: DbArgs,
}

/// Run every tick of the range and print tick, run and status; exit 0 only if every
/// run succeeded.
pub async fn run_backfill(args: BackfillArgs) -> anyhow::Result<ExitCode> {
    let definition = match load_path(&args.file) {
        Ok(definition) => definition,
        Err(problems) => {
            errln!("{problems}");
            return Ok(ExitCode::from(2));
        }
    };
    let Some(spec) = &definition.schedule else {
        bail!(
            "{}: workflow {} has no schedule: there are no ticks to backfill",
            args.file.display(),
            definition.name
        );
    };
    let schedule = Schedule::parse(&spec.expression)?;
    let zone = time_zone(spec.timezone.as_deref().unwrap_or("UTC"))?;
    let from = instant("--from", &args.from)?;
    let to = instant("--to", &args.to)?;
    let ticks = between(&schedule, &zone, from, to, MAX_TICKS)?;
    errln!(
        "{} tick(s) of {} in [{from}, {to}), at most {} at once",
        ticks.len(),
        definition.name,
        args.max_parallel
    );
    let workdir = folder_of(&args.file)?.display().to_string();
    let mut runner = open(&args.db)?;
    let mut terminate =
        tokio::signal::unix::signal(SignalKind::terminate()).context("cannot watch for SIGTERM")?;
    let mut progress = |filled: &Filled| {
        let note = if filled.created { "" } else { " (ran before)" };
        errln!(
            "{}  {}  {}{note}",
            show(filled.tick),
            filled.run_id,
            filled.status
        );
    };
    let max_parallel = usize::from(args.max_parallel);
    let done = tokio::select! {
        done = backfill(&mut runner, &definition, Some(workdir), &ticks, max_parallel, &mut progress) => done?,
        _ = tokio::signal::ctrl_c() => return Ok(interrupted(130)),
        _ = terminate.recv() => return Ok(interrupted(143)),
    };
    print(&definition.name, &done, args.output);
    let all_succeeded = done.iter().all(|f| f.status == RunStatus::Succeeded);
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn interrupted(code: u8) -> ExitCode {
    errln!(
        "interrupted: the runs started are saved; the same backfill again continues (ticks \
         that have a run are not run twice), or `aloft resume RUN` continues one"
    );
    ExitCode::from(code)
}

fn print(workflow: &str, done: &[Filled], output: Output) {
    match output {
        Output::Json => {
            let ticks: Vec<_> = done
                .iter()
                .map(|f| {
                    json!({
                        "tick": show(f.tick),
                        "run_id": f.run_id,
                        "status": f.status.as_str(),
                        "created": f.created,
                    })
                })
                .collect();
            outln!("{}", json!({"workflow": workflow, "ticks": ticks}));
        }
        Output::Text => {
            let width = done
                .iter()
                .map(|f| f.run_id.len())
                .max()
                .unwrap_or(3)
                .max(3);
            outln!("{:<20}  {:<width$}  STATUS", "TICK", "RUN");
            for f in done {
                outln!("{:<20}  {:<width$}  {}", show(f.tick), f.run_id, f.status);
            }
        }
    }
}

fn instant(option: &str, text: &str) -> anyhow::Result<Timestamp> {
    text.parse().with_context(|| {
        format!("{option} {text:?} is not an instant with an offset, such as 2026-03-01T00:00:00Z")
    })
}

fn show(ms: u64) -> String {
    Timestamp::from_millisecond(i64::try_from(ms).unwrap_or(i64::MAX))
        .map_or_else(|_| ms.to_string(), |t| t.to_string())
}
