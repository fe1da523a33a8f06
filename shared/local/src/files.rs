//! The files of one attempt: its input, output, log, pid and exit status. They outlive
//! the runner, so that `aloft resume` can learn how an attempt it did not see finish
//! ended.

use std::path::{Path, PathBuf};

use aloft_engine::TaskKey;

/// Paths of one attempt's files: `<runs>/<run>/tasks/<task>[.<item>].<attempt>.<ext>`.
#[derive(Clone, Debug)]
pub struct AttemptFiles {
    base: PathBuf,
}

impl AttemptFiles {
    /// The files of `attempt` of `key` in `run_id`, under the runs folder.
    pub fn new(runs: &Path, run_id: &str, key: &TaskKey, attempt: u32) -> Self {
        let name = match key.item {
            Some(item) => format!("{}.{item}.{attempt}", key.task),
            None => format!("{}.{attempt}", key.task),
        };
        Self {
            base: run_folder(runs, run_id).join("tasks").join(name),
        }
    }

    /// The common prefix of every file.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// A file of this attempt by extension.
    pub fn path(&self, ext: &str) -> PathBuf {
        let mut name = self.base.as_os_str().to_owned();
        name.push(".");
        name.push(ext);
        PathBuf::from(name)
    }

    /// Task input (stdin).
    pub fn input(&self) -> PathBuf {
        self.path("in")
    }

    /// Task output (stdout).
    pub fn output(&self) -> PathBuf {
        self.path("out")
    }

    /// Task log (stderr).
    pub fn log(&self) -> PathBuf {
        self.path("log")
    }

    /// Created exclusively by whoever runs the attempt; holds the wrapper's pid.
    pub fn claim(&self) -> PathBuf {
        self.path("claim")
    }

    /// Exit status, written last.
    pub fn status(&self) -> PathBuf {
        self.path("status")
    }
}

/// The folder of one run's files.
pub fn run_folder(runs: &Path, run_id: &str) -> PathBuf {
    runs.join(run_id)
}

/// The scratch folder shared by a run's tasks (`ALOFT_WORKDIR`).
pub fn scratch_folder(runs: &Path, run_id: &str) -> PathBuf {
    run_folder(runs, run_id).join("work")
}
