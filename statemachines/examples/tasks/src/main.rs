//! `aloft-example`: the programs behind aloft's example workflows, one subcommand per task.
//!
//! Each task subcommand reads the aloft task input (JSON) on stdin, writes its output
//! (JSON) on stdout and its log on stderr, and exits non-zero on failure. Files handed from
//! task to task live in the run's scratch directory, `$ALOFT_WORKDIR`.

mod args;
mod checked_export;
mod contract;
mod csv;
mod error;
mod etl;
mod fan_in;
mod files;
mod tab_to_csv;
mod tzdata;

use std::process::ExitCode;

use serde_json::Value;

use contract::TaskInput;
use error::{Error, Result};

/// A task subcommand: its arguments and the task input, to its output.
type Handler = fn(&[String], &TaskInput) -> Result<Value>;

/// Every task subcommand by name.
const TASKS: [(&str, Handler); 14] = [
    ("etl-extract", etl::extract),
    ("etl-transform", etl::transform),
    ("etl-load", etl::load),
    ("etl-report", etl::report),
    ("stats-extract", fan_in::extract),
    ("stats-regions", fan_in::regions),
    ("stats-countries", fan_in::countries),
    ("stats-bbox", fan_in::bbox),
    ("stats-hemispheres", fan_in::hemispheres),
    ("stats-summary", fan_in::summary),
    ("export-prepare", checked_export::prepare),
    ("export-check", checked_export::check),
    ("export-publish", checked_export::publish),
    ("export-cleanup", checked_export::cleanup),
];

/// Outputs larger than this are refused: aloft keeps task outputs small.
const MAX_OUTPUT_BYTES: usize = 64 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let name = args.first().map_or("", String::as_str);
    match run(name, args.get(1..).unwrap_or_default()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            let who = match name {
                "" => "aloft-example".to_owned(),
                name => format!("aloft-example {name}"),
            };
            eprintln!("{who}: error: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(name: &str, args: &[String]) -> Result<()> {
    let output = if name == "tab-to-csv" {
        tab_to_csv::tab_to_csv(args)?
    } else {
        let handler = TASKS
            .iter()
            .find(|(task, _)| *task == name)
            .map(|(_, handler)| *handler)
            .ok_or_else(|| Error::new(usage(name)))?;
        handler(args, &TaskInput::from_stdin()?)?
    };
    print_output(&output)
}

fn usage(name: &str) -> String {
    let names: Vec<&str> = TASKS.iter().map(|(task, _)| *task).collect();
    let wanted = format!("tab-to-csv or one of {}", names.join(", "));
    if name.is_empty() {
        format!("no subcommand given; expected {wanted}")
    } else {
        format!("unknown subcommand {name:?}; expected {wanted}")
    }
}

/// Print the output as one line of JSON, refusing anything too large for aloft.
fn print_output(output: &Value) -> Result<()> {
    let text = serde_json::to_string(output)
        .map_err(|err| Error::new(format!("cannot encode the output: {err}")))?;
    if text.len() > MAX_OUTPUT_BYTES {
        return Err(Error::new(format!(
            "output is {} bytes, over the {MAX_OUTPUT_BYTES} byte limit",
            text.len()
        )));
    }
    println!("{text}");
    Ok(())
}
