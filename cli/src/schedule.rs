//! `aloft schedule next EXPRESSION`: preview when a schedule expression fires.

use std::process::ExitCode;

use clap::{Args, Subcommand};
use jiff::Timestamp;
use serde_json::json;

use aloft_core::schedule::{Schedule, TZDATA_VERSION, time_zone};

use crate::Output;
use crate::out::{errln, outln};

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the next fire times of a schedule expression, in UTC and in local time.
    Next(NextArgs),
}

#[derive(Debug, Args)]
pub struct NextArgs {
    /// `cron(...)`, `rate(...)` or `at(...)`, in EventBridge Scheduler syntax.
    expression: String,
    /// IANA time zone the expression is read in.
    #[arg(long, default_value = "UTC")]
    timezone: String,
    /// List fires strictly after this instant, such as 2026-03-08T06:30:00Z [default: now].
    #[arg(long)]
    from: Option<String>,
    /// The schedule's start, which rate(...) counts from (its first fire)
    /// [default: --from].
    #[arg(long)]
    start: Option<String>,
    /// How many fires to print.
    #[arg(long, default_value_t = 5)]
    count: usize,
    /// Print the fires as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

pub fn schedule(command: ScheduleCommand) -> anyhow::Result<ExitCode> {
    match command {
        ScheduleCommand::Next(args) => Ok(next(&args)),
    }
}

/// Print the fires; a bad expression, zone or instant exits 2 with the reason on stderr.
fn next(args: &NextArgs) -> ExitCode {
    let (schedule, zone, from) = match read(args) {
        Ok(read) => read,
        Err(message) => {
            errln!("error: {message}");
            return ExitCode::from(2);
        }
    };
    let fires: Vec<Timestamp> = schedule.fires_after(from, &zone).take(args.count).collect();
    let local = |fire: &Timestamp| fire.display_with_offset(zone.to_offset(*fire)).to_string();
    match args.output {
        Output::Json => {
            let fires: Vec<_> = fires
                .iter()
                .map(|fire| json!({"utc": fire.to_string(), "local": local(fire)}))
                .collect();
            outln!(
                "{}",
                json!({
                    "expression": schedule.expression(),
                    "timezone": args.timezone,
                    "tzdata": TZDATA_VERSION,
                    "from": from.to_string(),
                    "fires": fires,
                })
            );
        }
        Output::Text => {
            for fire in &fires {
                outln!("{fire}  {}", local(fire));
            }
        }
    }
    if fires.len() < args.count {
        errln!("no further fire up to the end of 2199");
    }
    ExitCode::SUCCESS
}

/// The parsed expression, its zone and the instant to list from.
fn read(args: &NextArgs) -> Result<(Schedule, jiff::tz::TimeZone, Timestamp), String> {
    let zone = time_zone(&args.timezone).map_err(|e| e.to_string())?;
    let schedule = Schedule::parse(&args.expression).map_err(|e| e.to_string())?;
    let from = match &args.from {
        Some(text) => instant("--from", text)?,
        // Whole seconds: fire times are whole minutes, and a rate counts from here.
        None => Timestamp::from_second(Timestamp::now().as_second()).map_err(|e| e.to_string())?,
    };
    let start = match &args.start {
        Some(text) => instant("--start", text)?,
        None => from,
    };
    schedule
        .check_fires_in(&zone, &args.timezone)
        .map_err(|e| e.to_string())?;
    Ok((schedule.with_anchor(start), zone, from))
}

fn instant(option: &str, text: &str) -> Result<Timestamp, String> {
    text.parse().map_err(|e| {
        format!(
            "{option} {text:?} is not an instant with an offset, such as \
             2026-03-08T06:30:00Z: {e}"
        )
    })
}
