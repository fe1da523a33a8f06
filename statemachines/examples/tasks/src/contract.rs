//! The aloft task contract as seen from inside a task: the JSON document on stdin, the
//! per-run scratch directory in `ALOFT_WORKDIR`, and helpers to read upstream outputs.

use std::io::{IsTerminal, Read};
use std::path::PathBuf;

use serde::Deserialize;
use serde_json::{Map, Value};

use crate::error::{Context, Error, Result};

/// The task input aloft writes on stdin.
#[derive(Debug, Default, Deserialize)]
pub struct TaskInput {
    /// Which run and attempt this is.
    #[serde(default)]
    pub run: RunInfo,
    /// Outputs of the direct upstream tasks, by task name.
    #[serde(default)]
    pub upstream: Map<String, Value>,
}

/// The `run` part of the task input; only the fields the example tasks use.
#[derive(Debug, Deserialize)]
pub struct RunInfo {
    /// Attempt number, 1 for the first try.
    #[serde(default = "first_attempt")]
    pub attempt: u32,
}

impl Default for RunInfo {
    fn default() -> Self {
        Self {
            attempt: first_attempt(),
        }
    }
}

fn first_attempt() -> u32 {
    1
}

impl TaskInput {
    /// Read the input from stdin. A terminal or an empty stdin (a person running the task
    /// by hand) counts as attempt 1 with no upstream outputs.
    pub fn from_stdin() -> Result<Self> {
        let mut stdin = std::io::stdin();
        if stdin.is_terminal() {
            return Ok(Self::default());
        }
        let mut text = String::new();
        stdin
            .read_to_string(&mut text)
            .context(|| "cannot read the task input on stdin".into())?;
        Self::parse(&text)
    }

    /// Parse the task input JSON; blank text is the default input.
    pub fn parse(text: &str) -> Result<Self> {
        if text.trim().is_empty() {
            return Ok(Self::default());
        }
        serde_json::from_str(text).context(|| "task input on stdin is not the expected JSON".into())
    }

    /// The output of upstream task `task`, which must be present.
    pub fn upstream(&self, task: &str) -> Result<&Value> {
        self.upstream.get(task).ok_or_else(|| {
            let known: Vec<&String> = self.upstream.keys().collect();
            Error::new(format!(
                "no output of upstream task `{task}` in the input (have {known:?})"
            ))
        })
    }

    /// A string field of upstream `task`'s output, addressed by JSON pointer, e.g.
    /// `/files/zones`.
    pub fn upstream_str(&self, task: &str, pointer: &str) -> Result<&str> {
        self.upstream(task)?
            .pointer(pointer)
            .and_then(Value::as_str)
            .ok_or_else(|| {
                Error::new(format!(
                    "output of upstream task `{task}` has no string at `{pointer}`"
                ))
            })
    }
}

/// The run's scratch directory from `ALOFT_WORKDIR`, which must be an existing directory.
pub fn workdir() -> Result<PathBuf> {
    let dir = std::env::var_os("ALOFT_WORKDIR")
        .map(PathBuf::from)
        .ok_or_else(|| {
            Error::new(
                "ALOFT_WORKDIR is not set: run under aloft or point it at a scratch directory",
            )
        })?;
    if !dir.is_dir() {
        return Err(Error::new(format!(
            "ALOFT_WORKDIR {} is not a directory",
            dir.display()
        )));
    }
    Ok(dir)
}

/// A directory under the workdir, created if missing.
pub fn workdir_subdir(name: &str) -> Result<PathBuf> {
    let dir = workdir()?.join(name);
    std::fs::create_dir_all(&dir).context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_input_document_parses() {
        let text = r#"{"run": {"id": "r1", "workflow": "zone-stats", "attempt": 2,
            "scheduled_time": null}, "input": {}, "upstream": {"extract": {"file": "/w/z"}},
            "item": null}"#;
        let input = TaskInput::parse(text).expect("valid input");
        assert_eq!(input.run.attempt, 2);
        assert_eq!(
            input.upstream_str("extract", "/file").expect("present"),
            "/w/z"
        );
    }

    #[test]
    fn blank_input_is_first_attempt_without_upstreams() {
        let input = TaskInput::parse("  \n").expect("blank is fine");
        assert_eq!(input.run.attempt, 1);
        assert!(input.upstream("extract").is_err());
    }

    #[test]
    fn missing_upstream_field_names_task_and_pointer() {
        let input = TaskInput::parse(r#"{"upstream": {"extract": {"n": 1}}}"#).expect("valid");
        let err = input
            .upstream_str("extract", "/file")
            .expect_err("no such field");
        assert!(err.to_string().contains("`extract`") && err.to_string().contains("/file"));
    }
}
