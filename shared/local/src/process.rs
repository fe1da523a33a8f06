//! Command tasks as local processes.
//!
//! Each attempt runs under a small `sh` wrapper in its own process group. The wrapper
//! first claims the attempt by creating its claim file exclusively (noclobber) and
//! writing its pid there, then feeds the input file to the command's stdin, sends stdout
//! and stderr to files, and writes the exit status to a file last. The files, not the
//! runner's memory, are the record: a runner killed while a task runs leaves the task
//! running, and the next `aloft resume` reads how it ended.
//!
//! Once the status is written the wrapper kills its own process group: whatever the
//! command left running in the background ends with the attempt (a task that means to
//! leave a daemon behind must start it in a session of its own, e.g. with `setsid`).
//!
//! The claim makes "run at most once" hold across a crash: whoever creates the claim
//! file runs the attempt, and anyone else who finds it only follows the claimant. A
//! resume that wins the claim (the first wrapper was never spawned, or had not reached
//! its first line) starts a wrapper told that the claim is already its own.

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

/// `$0` is the attempt files' base path, `$1` is `claim` (take the claim, or do nothing
/// if someone holds it) or `claimed` (the caller took it), the rest is the command.
const WRAPPER: &str = r#"if [ "$1" = claim ]; then
  ( set -C; echo $$ > "$0.claim" ) 2>/dev/null || exit 0
else
  echo $$ > "$0.claim"
fi
shift
"$@" < "$0.in" > "$0.out" 2> "$0.log"
code=$?
echo "$code" > "$0.status.tmp" && mv "$0.status.tmp" "$0.status"
kill -KILL 0
exit "$code""#;

/// Who holds an attempt's claim.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Claimant {
    /// Nobody: the attempt was never started.
    Nobody,
    /// The claim file exists but its pid is not written yet (or never will be).
    Unwritten,
    /// A live process.
    Alive,
    /// A process that has ended.
    Gone,
}

/// Take an attempt's claim: true when this call created the claim file.
pub fn claim(files: &AttemptFiles) -> std::io::Result<bool> {
    match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(files.claim())
    {
        Ok(_) => Ok(true),
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
        Err(error) => Err(error),
    }
}

/// Who holds the claim of an attempt now.
pub fn claimant(files: &AttemptFiles) -> Claimant {
    if !files.claim().exists() {
        return Claimant::Nobody;
    }
    let Some(pid) = claim_pid(files) else {
        return Claimant::Unwritten;
    };
    if is_alive(files, pid) {
        Claimant::Alive
    } else {
        Claimant::Gone
    }
}

/// Find the program of a command: a name with a slash is taken relative to the working
/// folder, any other name is looked up on PATH.
pub fn resolve_program(program: &str, workdir: &Path) -> Result<PathBuf, Failure> {
    if program.is_empty() {
        return Err(Failure::error("command has an empty program name"));
    }
    if program.contains('/') {
        let path = workdir.join(program);
        if path.is_file() && !is_executable(&path) {
            let message = format!("not executable: {program} (in {})", workdir.display());
            return Err(Failure::error(message));
        }
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
    claimed: bool,
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
        .arg(if claimed { "claimed" } else { "claim" })
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
    // The shell reports a command killed by signal n as 128 + n, the same number an
    // exit with that code gives, so the signal is only named as a likely reading.
    let what = match code {
        129..=192 => format!(
            "exit status {code} (as when killed by signal {})",
            code - 128
        ),
        _ => format!("exit status {code}"),
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

/// The pid written in an attempt's claim file.
fn claim_pid(files: &AttemptFiles) -> Option<rustix::process::Pid> {
    let text = std::fs::read_to_string(files.claim()).ok()?;
    rustix::process::Pid::from_raw(text.trim().parse().ok()?)
}

/// True while `pid` is alive and is the attempt's wrapper.
fn is_alive(files: &AttemptFiles, pid: rustix::process::Pid) -> bool {
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

/// Kill the whole process group of the attempt's claimant.
pub fn kill(files: &AttemptFiles) {
    let Some(pid) = claim_pid(files) else {
        return;
    };
    if is_alive(files, pid) {
        // It may have exited since: nothing left to kill is fine.
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Follow an attempt someone else runs until it ends, and read how it ended. A claim
/// whose pid stays unwritten for two seconds belongs to a wrapper that died on its
/// first line.
pub async fn follow(files: &AttemptFiles) -> Outcome {
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    let mut unwritten = 0;
    loop {
        tick.tick().await;
        if let Some(outcome) = read_outcome(files) {
            return outcome;
        }
        match claimant(files) {
            Claimant::Alive => {}
            Claimant::Unwritten if unwritten < 10 => unwritten += 1,
            _ => return read_outcome(files).unwrap_or_else(lost),
        }
    }
}

/// When a finished attempt ended: the time its status (or result) file was written.
pub fn ended_at(files: &AttemptFiles) -> Option<u64> {
    let written = [files.status(), files.path("result")]
        .iter()
        .find_map(|path| std::fs::metadata(path).and_then(|m| m.modified()).ok())?;
    let since_epoch = written.duration_since(std::time::UNIX_EPOCH).ok()?;
    u64::try_from(since_epoch.as_millis()).ok()
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

#[cfg(test)]
mod tests {
    use super::*;
    use aloft_core::definition::RunSpec;
    use aloft_engine::TaskKey;

    fn job(folder: &Path) -> Job {
        Job {
            run_id: "r1".into(),
            workflow: "w".into(),
            key: TaskKey::task("t"),
            attempt: 1,
            run: RunSpec::Command(vec!["sh".into()]),
            input: Vec::new(),
            workdir: Some(folder.display().to_string()),
            timeout: aloft_core::Duration::from_secs(60),
        }
    }

    /// Spawn the real wrapper for attempt 1 of `t`; its command appends a line to `marks`.
    fn wrapper(folder: &Path, files: &AttemptFiles, claimed: bool) -> tokio::process::Command {
        let program = resolve_program("sh", folder).unwrap();
        let args = ["-c".to_owned(), "echo ran >> marks; echo '{}'".to_owned()];
        command(&job(folder), &program, &args, files, folder, claimed)
    }

    fn setup() -> (tempfile::TempDir, AttemptFiles) {
        let folder = tempfile::tempdir().unwrap();
        let files = AttemptFiles::new(folder.path(), "r1", &TaskKey::task("t"), 1);
        std::fs::create_dir_all(files.base().parent().unwrap()).unwrap();
        std::fs::write(files.input(), "{}").unwrap();
        (folder, files)
    }

    #[tokio::test]
    async fn two_wrappers_racing_for_one_attempt_run_it_once() {
        let (folder, files) = setup();
        let mut first = wrapper(folder.path(), &files, false).spawn().unwrap();
        let mut second = wrapper(folder.path(), &files, false).spawn().unwrap();
        first.wait().await.unwrap();
        second.wait().await.unwrap();

        let marks = std::fs::read_to_string(folder.path().join("marks")).unwrap();
        assert_eq!(marks, "ran\n");
        assert_eq!(
            read_outcome(&files),
            Some(Outcome::Succeeded {
                output: serde_json::json!({})
            })
        );
    }

    #[tokio::test]
    async fn a_wrapper_that_finds_the_claim_taken_runs_nothing() {
        let (folder, files) = setup();
        assert!(claim(&files).unwrap());
        assert!(!claim(&files).unwrap(), "a claim is taken once");
        let status = wrapper(folder.path(), &files, false)
            .status()
            .await
            .unwrap();

        assert!(status.success());
        assert!(!folder.path().join("marks").exists());
        assert_eq!(read_outcome(&files), None);
        assert_eq!(claimant(&files), Claimant::Unwritten);
    }

    #[tokio::test]
    async fn a_wrapper_told_the_claim_is_its_own_runs_and_records_its_pid() {
        let (folder, files) = setup();
        assert!(claim(&files).unwrap());
        wrapper(folder.path(), &files, true).status().await.unwrap();

        assert_eq!(
            read_outcome(&files),
            Some(Outcome::Succeeded {
                output: serde_json::json!({})
            })
        );
        let marks = std::fs::read_to_string(folder.path().join("marks")).unwrap();
        assert_eq!(marks, "ran\n");
        assert_eq!(claimant(&files), Claimant::Gone);
    }

    #[tokio::test]
    async fn what_a_command_leaves_running_ends_with_its_attempt() {
        let (folder, files) = setup();
        let program = resolve_program("sh", folder.path()).unwrap();
        // Unique to this test process, so that another run of the suite on the same
        // machine cannot be mistaken for a leftover of this one.
        let marker = format!("30.{:07}", std::process::id());
        let args = ["-c".to_owned(), format!("sleep {marker} & echo '{{}}'")];
        let job = job(folder.path());
        let mut wrapper = command(&job, &program, &args, &files, folder.path(), false);
        wrapper.status().await.unwrap();

        assert_eq!(
            read_outcome(&files),
            Some(Outcome::Succeeded {
                output: serde_json::json!({})
            })
        );
        let alive = || {
            std::fs::read_dir("/proc")
                .unwrap()
                .filter_map(|entry| std::fs::read(entry.ok()?.path().join("cmdline")).ok())
                .filter(|cmdline| {
                    cmdline
                        .windows(marker.len())
                        .any(|w| w == marker.as_bytes())
                })
                .count()
        };
        // The kill is sent before the wrapper exits; on a loaded machine the process may
        // take a moment to go. Far less than the sleep's 30 s either way.
        let start = std::time::Instant::now();
        while alive() > 0 && start.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        assert_eq!(alive(), 0, "the background sleep outlived its attempt");
    }
}
