//! `aloft backfill FILE --from T --to T`: one run per schedule tick of a past range, on
//! this machine, or with `--backend aws` through the AWS trigger path (the runs are
//! driven by the deployed functions or `aloft dev`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use jiff::Timestamp;
use serde_json::json;
use tokio::signal::unix::SignalKind;

use aloft_aws::read::version_of;
use aloft_core::RunStatus;
use aloft_core::definition::Overlap;
use aloft_core::schedule::ticks::between;
use aloft_core::schedule::{Schedule, time_zone};
use aloft_core::source::load_path;
use aloft_local::backfill::{Filled, backfill};

use crate::aws::{AwsArgs, BackendKind};
use crate::out::{errln, outln};
use crate::run::{OverlapArg, folder_of, open};
use crate::{DbArgs, Output};

/// Most ticks one backfill runs.
const MAX_TICKS: usize = 10_000;

/// How often a backfill on AWS looks at its runs' status on the table.
const AWS_POLL: Duration = Duration::from_millis(500);

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
    /// Most runs going at once; ticks start oldest first. Only under the overlap policy
    /// `allow` do a backfill's runs overlap: under any other, one tick runs at a time.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    max_parallel: u16,
    /// Overlap policy of the backfill's runs [default: the workflow's
    /// `schedule.overlap`]. A backfill never skips or cancels its own ticks: under a
    /// policy other than `allow` it waits for each run to settle before the next.
    #[arg(long, value_enum)]
    overlap: Option<OverlapArg>,
    /// Print the ticks and their runs as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
    /// Where the runs go: on AWS the file must be the workflow's stored LATEST version.
    #[arg(long, value_enum, default_value_t, env = "ALOFT_BACKEND")]
    backend: BackendKind,
    #[command(flatten)]
    db: DbArgs,
    #[command(flatten)]
    aws: AwsArgs,
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
    let max_parallel = allowed_parallel(&args, spec.overlap);
    errln!(
        "{} tick(s) of {} in [{from}, {to}), at most {max_parallel} at once",
        ticks.len(),
        definition.name,
    );
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
    let done = if args.backend == BackendKind::Aws {
        tokio::select! {
            done = on_aws(&args, &definition, &ticks, max_parallel, &mut progress) => done?,
            _ = tokio::signal::ctrl_c() => return Ok(interrupted(130)),
            _ = terminate.recv() => return Ok(interrupted(143)),
        }
    } else {
        let workdir = folder_of(&args.file)?.display().to_string();
        let mut runner = open(&args.db)?;
        tokio::select! {
            done = backfill(&mut runner, &definition, Some(workdir), &ticks, max_parallel, &mut progress) => done?,
            _ = tokio::signal::ctrl_c() => return Ok(interrupted(130)),
            _ = terminate.recv() => return Ok(interrupted(143)),
        }
    };
    print(&definition.name, &done, args.output);
    let all_succeeded = done.iter().all(|f| f.status == RunStatus::Succeeded);
    Ok(if all_succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// How many of the backfill's runs may go at once. The overlap policy governs a backfill
/// too, but a backfill waits rather than skipping or cancelling its own ticks: its runs
/// overlap only under `allow`.
fn allowed_parallel(args: &BackfillArgs, workflow: Overlap) -> usize {
    let policy = args.overlap.map_or(workflow, Overlap::from);
    if policy == Overlap::Allow {
        return usize::from(args.max_parallel);
    }
    if args.max_parallel > 1 {
        let name = match policy {
            Overlap::Skip => "skip",
            Overlap::BufferOne => "buffer_one",
            Overlap::CancelRunning => "cancel_running",
            Overlap::Allow => "allow",
        };
        errln!(
            "overlap {name}: one tick at a time (--max-parallel {} needs --overlap allow)",
            args.max_parallel
        );
    }
    1
}

/// The backfill on AWS, of the workflow's stored LATEST version, which must be the
/// file's: the runs are those of the stored definition, so a file that differs from it
/// would be backfilled with a schedule and tasks it does not show.
async fn on_aws(
    args: &BackfillArgs,
    definition: &aloft_core::Definition,
    ticks: &[Timestamp],
    max_parallel: usize,
    progress: &mut dyn FnMut(&Filled),
) -> anyhow::Result<Vec<Filled>> {
    let backend = args.aws.connect().await?;
    let (_, version) = version_of(definition)?;
    let stored = backend.store().latest_version(&definition.name).await?;
    if stored.as_deref() != Some(version.as_str()) {
        let found =
            stored.map_or_else(|| "no stored version".to_owned(), |v| format!("LATEST {v}"));
        bail!(
            "{}: workflow {} is version {version} in this file, and {found} on AWS: a \
             backfill runs the stored LATEST version, so store this one first with \
             `aloft deploy` or `aloft workflows put {}`",
            args.file.display(),
            definition.name,
            args.file.display()
        );
    }
    let engine = backend.engine();
    let done = aloft_aws::backfill::backfill(
        &engine,
        &definition.name,
        ticks,
        max_parallel,
        AWS_POLL,
        progress,
    )
    .await?;
    Ok(done)
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
