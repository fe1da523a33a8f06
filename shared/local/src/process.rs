//! Command tasks as local processes.
//!
//! Each attempt runs under a small `sh` wrapper in its own process group. The wrapper
//! feeds the input file to the command's stdin, sends stdout and stderr to files, and
//! writes the exit status to a file last. The files, not the runner's memory, are the
//! record: a runner killed while a task runs leaves the task running, and the next
//! `aloft resume` reads how it ended.

use std::io::Read;
use std::path::{Path, PathBuf};

use serde_json::Value;

use aloft_core::Failure;
use aloft_engine::Outcome;
use aloft_engine::ports::Job;

use crate::files::{AttemptFiles, scratch_folder};

/// Largest stdout read from a task; a larger one fails as `payload_too_large` without
/// being read. The stored output limit is smaller and checked by the engine.
const STDOUT_READ_LIMIT: u64 = 16 * 1024 * 1024;

/// `$0` is the attempt files' base path; the rest is the command.
const WRAPPER: &str = r#"echo $$ > "$0.pid"
"$@" < "$0.in" > "$0.out" 2> "$0.log"
code=$?
echo "$code" > "$0.status.tmp" && mv "$0.status.tmp" "$0.status"
exit "$code""#;

/// Find the program of a command: a name with a slash is taken relative to the working
/// folder, any other name is looked up on PATH.
pub fn resolve_program(program: &str, workdir: &Path) -> Result<PathBuf, Failure> {
    if program.is_empty() {
        return Err(Failure::error("command has an empty program name"));
    }
    if program.contains('/') {
        let path = workdir.join(program);
        return is_executable(&path).then_some(path).ok_or_else(|| {
            Failure::error(format!(
                "executable not found: {program} (in {})",
                workdir.display()
            ))
        });
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
        .ok_or_else(|| Failure::error(format!("executable not found: {program} (searched PATH)")))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Build the wrapper command of one attempt, ready to spawn.
pub fn command(
    job: &Job,
    program: &Path,
    args: &[String],
    files: &AttemptFiles,
    runs: &Path,
) -> tokio::process::Command {
    let workdir = job
        .workdir
        .as_deref()
        .map_or_else(|| PathBuf::from("."), PathBuf::from);
    let mut command = tokio::process::Command::new("/bin/sh");
    command
        .arg("-c")
        .arg(WRAPPER)
        .arg(files.base())
        .arg(program)
        .args(args)
        .current_dir(workdir)
        .env("ALOFT_RUN_ID", &job.run_id)
        .env("ALOFT_WORKFLOW", &job.workflow)
        .env("ALOFT_TASK", job.key.to_string())
        .env("ALOFT_ATTEMPT", job.attempt.to_string())
        .env("ALOFT_WORKDIR", scratch_folder(runs, &job.run_id))
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(false);
    command
}

/// How a finished attempt ended, read from its files. `None` while it has not written
/// its exit status.
pub fn read_outcome(files: &AttemptFiles) -> Option<Outcome> {
    let status = std::fs::read_to_string(files.status()).ok()?;
    let failed = |failure| Some(Outcome::Failed { failure });
    let Ok(code) = status.trim().parse::<i32>() else {
        return failed(Failure::new(
            "interrupted",
            format!("unreadable exit status {status:?}"),
        ));
    };
    if code != 0 {
        return failed(exit_failure(code, &files.log()));
    }
    match read_output(&files.output()) {
        Ok(output) => Some(Outcome::Succeeded { output }),
        Err(failure) => failed(failure),
    }
}

/// The failure of an attempt whose process ended without an exit status.
pub fn lost() -> Outcome {
    let message = "the task's process ended without reporting an exit status \
                   (it was killed, or the runner stopped before starting it)";
    Outcome::Failed {
        failure: Failure::new("interrupted", message),
    }
}

fn exit_failure(code: i32, log: &Path) -> Failure {
    let what = if code > 128 {
        format!("killed by signal {}", code - 128)
    } else {
        format!("exit status {code}")
    };
    match last_line(log) {
        Some(line) => Failure::error(format!("{what}: {line}")),
        None => Failure::error(what),
    }
}

/// The last non-empty line of a log, shortened, for failure messages.
fn last_line(log: &Path) -> Option<String> {
    let bytes = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(&bytes[bytes.len().saturating_sub(4096)..]).into_owned();
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?.trim();
    Some(line.chars().take(300).collect())
}

/// A task's stdout as its output: empty is null, anything else must be one JSON document
/// in UTF-8.
pub fn read_output(path: &Path) -> Result<Value, Failure> {
    let bad = |message: String| Failure::new("bad_output", message);
    let size = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    if size > STDOUT_READ_LIMIT {
        let message =
            format!("stdout is {size} bytes, over the limit of {STDOUT_READ_LIMIT} bytes");
        return Err(Failure::new(Failure::PAYLOAD_TOO_LARGE, message));
    }
    let mut bytes = Vec::new();
    if let Ok(mut file) = std::fs::File::open(path) {
        file.read_to_end(&mut bytes)
            .map_err(|e| bad(format!("cannot read stdout: {e}")))?;
    }
    let text = std::str::from_utf8(&bytes).map_err(|e| {
        bad(format!(
            "stdout is not UTF-8: invalid byte at offset {}",
            e.valid_up_to()
        ))
    })?;
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(text).map_err(|e| {
        let start: String = text.trim_start().chars().take(60).collect();
        bad(format!("stdout is not JSON ({e}); it begins {start:?}"))
    })
}

/// True while the attempt's wrapper process is alive.
pub fn is_alive(files: &AttemptFiles) -> bool {
    let Some(pid) = read_pid(files) else {
        return false;
    };
    if rustix::process::test_kill_process(pid).is_err() {
        return false;
    }
    // Guard against a recycled pid: on Linux the wrapper's command line names the base.
    match std::fs::read(format!("/proc/{}/cmdline", pid.as_raw_nonzero())) {
        Ok(cmdline) => {
            let base = files.base().as_os_str().as_encoded_bytes();
            cmdline.windows(base.len()).any(|w| w == base)
        }
        Err(_) => true,
    }
}

/// Kill the attempt's whole process group.
pub fn kill(files: &AttemptFiles) {
    if let Some(pid) = read_pid(files).filter(|_| is_alive(files)) {
        // It may have exited since: nothing left to kill is fine.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

fn read_pid(files: &AttemptFiles) -> Option<rustix::process::Pid> {
    let text = std::fs::read_to_string(files.pid()).ok()?;
    rustix::process::Pid::from_raw(text.trim().parse().ok()?)
}

/// The outcome a lambda attempt recorded in its result file, if it finished.
pub fn read_result(files: &AttemptFiles) -> Option<Outcome> {
    let text = std::fs::read_to_string(files.path("result")).ok()?;
    serde_json::from_str(&text).ok()
}

/// Record a lambda attempt's outcome, so that a resume after a crash finds it.
pub fn write_result(files: &AttemptFiles, outcome: &Outcome) {
    if let Ok(text) = serde_json::to_string(outcome) {
        // Best effort: without the file a resume reports the attempt as interrupted.
        let _ = std::fs::write(files.path("result"), text);
    }
}
