//! `aloft validate FILE...`

use crate::out::{errln, outln};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use aloft_core::source::{Diagnostic, load_path};

use crate::Output;

#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// Workflow files (YAML or JSON).
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Print the problems as JSON on stdout.
    #[arg(long, value_enum, default_value_t)]
    output: Output,
}

/// Check every file; print every problem; exit 1 if there was any.
pub fn validate(args: &ValidateArgs) -> anyhow::Result<ExitCode> {
    let mut problems: Vec<Diagnostic> = Vec::new();
    let mut valid = Vec::new();
    for file in &args.files {
        match load_path(file) {
            Ok(definition) => valid.push((file.display().to_string(), definition.tasks.len())),
            Err(found) => problems.extend(found.0),
        }
    }
    match args.output {
        Output::Json => {
            let problems: Vec<_> = problems
                .iter()
                .map(|d| json!({"file": d.file, "line": d.line, "column": d.column, "message": d.message}))
                .collect();
            outln!(
                "{}",
                json!({"valid": problems.is_empty(), "problems": problems})
            );
        }
        Output::Text => {
            for problem in &problems {
                errln!("{problem}");
            }
            for (file, tasks) in &valid {
                errln!(
                    "{file}: ok ({tasks} {})",
                    if *tasks == 1 { "task" } else { "tasks" }
                );
            }
        }
    }
    Ok(if problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
