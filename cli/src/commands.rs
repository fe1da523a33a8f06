//! `command` tasks under `aloft dev`: each attempt is a process (in a process group of its
//! own) on this machine, started in the run's working folder (`aloft start --workdir`)
//! with the task document on stdin; its stdout (JSON) is the output and its exit status
//! the verdict, sent back with its end time as a `Complete` message on the complete
//! queue. Its stderr goes to `.aloft/dev/runs/<run>/<task>.<attempt>.log` under the run's
//! working folder, and it gets the same `ALOFT_*` variables as under `aloft run`, its
//! scratch folder (`ALOFT_WORKDIR`) being `.aloft/dev/runs/<run>/work` there too, so that
//! every `aloft dev` serving the run gives its tasks the same folder.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use futures::future::BoxFuture;
use tokio::io::AsyncWriteExt;
use tracing::{debug, warn};

use aloft_aws::{LocalCommands, SqsQueue};
use aloft_core::Failure;
use aloft_core::definition::RunSpec;
use aloft_engine::message::{Message, Outcome, Outgoing, TaskKey};
use aloft_engine::ports::{Job, PortError, Queue, StartError};
use aloft_local::process::resolve_program;

/// Runs command tasks as local processes.
#[derive(Debug)]
pub struct DevCommands {
    /// Where runs without a working folder keep their logs and scratch folders.
    fallback: PathBuf,
    running: Arc<Mutex<HashMap<String, u32>>>,
}

impl DevCommands {
    /// Processes of runs without a working folder work in `fallback`.
    pub fn new(fallback: PathBuf) -> Self {
        Self {
            fallback,
            running: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Attempts started and not yet reported.
    pub fn running(&self) -> usize {
        lock(&self.running).len()
    }
}

fn attempt_name(run_id: &str, key: &TaskKey, attempt: u32) -> String {
    format!("{run_id}/{key}.{attempt}")
}

fn lock(map: &Mutex<HashMap<String, u32>>) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
    map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl LocalCommands for DevCommands {
    fn start(&self, job: Job, results: SqsQueue) -> BoxFuture<'static, Result<(), StartError>> {
        let fallback = self.fallback.clone();
        let running = self.running.clone();
        Box::pin(async move {
            let RunSpec::Command(argv) = &job.run else {
                return Ok(());
            };
            let workdir = job.workdir.as_deref().map_or(fallback, PathBuf::from);
            let runs = workdir.join(".aloft").join("dev").join("runs");
            let (program, args) = argv
                .split_first()
                .ok_or_else(|| StartError::Rejected(Failure::error("command is empty")))?;
            let program = resolve_program(program, &workdir).map_err(StartError::Rejected)?;
            let log = runs
                .join(&job.run_id)
                .join(format!("{}.{}.log", job.key, job.attempt));
            let scratch = runs.join(&job.run_id).join("work");
            std::fs::create_dir_all(&scratch).map_err(|e| {
                StartError::Port(PortError::retryable(format!(
                    "cannot create {}: {e}",
                    scratch.display()
                )))
            })?;
            let stderr = open_log(&log).map_err(|e| {
                StartError::Port(PortError::retryable(format!(
                    "cannot open {}: {e}",
                    log.display()
                )))
            })?;
            let mut child = tokio::process::Command::new(&program)
                .args(args)
                .current_dir(&workdir)
                .env("ALOFT_RUN_ID", &job.run_id)
                .env("ALOFT_WORKFLOW", &job.workflow)
                .env("ALOFT_TASK", job.key.to_string())
                .env("ALOFT_ATTEMPT", job.attempt.to_string())
                .env("ALOFT_WORKDIR", &scratch)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(stderr)
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| {
                    StartError::Rejected(Failure::error(format!(
                        "cannot start {}: {e}",
                        program.display()
                    )))
                })?;
            let name = attempt_name(&job.run_id, &job.key, job.attempt);
            if let Some(pid) = child.id() {
                lock(&running).insert(name.clone(), pid);
            }
            let mut stdin = child.stdin.take();
            let input = job.input.clone();
            tokio::spawn(async move {
                if let Some(stdin) = stdin.as_mut() {
                    // A task that does not read its input closes the pipe early.
                    let _ = stdin.write_all(&input).await;
                }
                drop(stdin);
                let finished = child.wait_with_output().await;
                let ended_at = jiff::Timestamp::now().as_millisecond();
                let outcome = match finished {
                    Ok(output) if output.status.success() => outcome_of_stdout(&output.stdout),
                    Ok(output) => Outcome::Failed {
                        failure: Failure::error(format!(
                            "{} exited with {}; its log: {}",
                            program.display(),
                            output.status,
                            log.display()
                        )),
                    },
                    Err(e) => Outcome::Failed {
                        failure: Failure::error(format!("waiting for the process: {e}")),
                    },
                };
                let message = Message::Complete {
                    run_id: job.run_id.clone(),
                    key: job.key.clone(),
                    attempt: job.attempt,
                    outcome,
                    ended_at: u64::try_from(ended_at).ok(),
                    started_at: None,
                    run: None,
                };
                if let Err(e) = results.send(vec![Outgoing::now(message)]).await {
                    warn!(run_id = %job.run_id, task = %job.key, error = %e, "result not sent; the attempt will time out");
                }
                lock(&running).remove(&name);
            });
            Ok(())
        })
    }

    fn cancel(&self, run_id: &str, key: &TaskKey, attempt: u32) {
        if let Some(pid) = lock(&self.running).remove(&attempt_name(run_id, key, attempt)) {
            debug!(run_id, task = %key, attempt, pid, "stopping a command that ran out of time");
            let pid = i32::try_from(pid)
                .ok()
                .and_then(rustix::process::Pid::from_raw);
            if let Some(pid) = pid {
                // The whole group: what the command started in the background ends with
                // its attempt. It may have ended meanwhile; then there is nothing to stop.
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
        }
    }
}

fn outcome_of_stdout(stdout: &[u8]) -> Outcome {
    if stdout.iter().all(u8::is_ascii_whitespace) {
        return Outcome::Succeeded {
            output: serde_json::Value::Null,
        };
    }
    match serde_json::from_slice::<serde_json::Value>(stdout) {
        // Refused here rather than carried to the engine in a message too large to send.
        Ok(output) if output.to_string().len() > aloft_core::OUTPUT_LIMIT => Outcome::Failed {
            failure: Failure::new(
                Failure::PAYLOAD_TOO_LARGE,
                format!(
                    "output is {} bytes, over the limit of {} bytes",
                    output.to_string().len(),
                    aloft_core::OUTPUT_LIMIT
                ),
            ),
        },
        Ok(output) => Outcome::Succeeded { output },
        Err(e) => Outcome::Failed {
            failure: Failure::new("bad_output", format!("stdout is not JSON: {e}")),
        },
    }
}

fn open_log(path: &Path) -> std::io::Result<std::fs::File> {
    if let Some(folder) = path.parent() {
        std::fs::create_dir_all(folder)?;
    }
    std::fs::File::create(path)
}
