//! `aloft graph FILE`

use crate::out::{errln, out};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;

use aloft_core::source::load_path;

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Workflow file (YAML or JSON).
    file: PathBuf,
}

/// Print the workflow's DAG as Mermaid.
pub fn graph(args: &GraphArgs) -> anyhow::Result<ExitCode> {
    match load_path(&args.file) {
        Ok(definition) => {
            out!("{}", aloft_core::graph::mermaid(&definition));
            Ok(ExitCode::SUCCESS)
        }
        Err(problems) => {
            errln!("{problems}");
            Ok(ExitCode::FAILURE)
        }
    }
}
