//! The embedded backend's invoker: command tasks as local processes, lambda tasks
//! through the Lambda Invoke API.
//!
//! Starts are deferred: `start` records what to start and the runner calls
//! [`LocalInvoker::flush`] after the transaction that moved the task to running has
//! committed, so a rolled-back transaction never leaves a process behind.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::mpsc::UnboundedSender;
use tokio::task::AbortHandle;
use tracing::debug;

use aloft_core::Failure;
use aloft_core::definition::RunSpec;
use aloft_engine::message::{Message, Outcome, TaskKey};
use aloft_engine::ports::{Invoker, Job, PortError, PortResult, StartError};

use crate::files::{AttemptFiles, scratch_folder};
use crate::lambda::LambdaCaller;
use crate::process;
use crate::runner::DeferredInvoker;

type AttemptId = (String, TaskKey, u32);

/// Starts command and lambda attempts and reports their ends as `Complete` messages.
#[derive(Clone)]
pub struct LocalInvoker {
    inner: Arc<Inner>,
}

struct Inner {
    runs: PathBuf,
    completions: UnboundedSender<Message>,
    pending: Mutex<Vec<Pending>>,
    /// Tasks following running attempts, by attempt files' base path.
    running: Mutex<HashMap<PathBuf, AbortHandle>>,
    lambda: LambdaCaller,
}

struct Pending {
    job: Job,
    files: AttemptFiles,
    start: Start,
}

enum Start {
    Command { program: PathBuf, args: Vec<String> },
    Lambda { function: String },
}

impl std::fmt::Debug for LocalInvoker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalInvoker")
            .field("runs", &self.inner.runs)
            .finish_non_exhaustive()
    }
}

impl LocalInvoker {
    /// An invoker keeping attempt files under `runs` and reporting to `completions`.
    pub fn new(runs: &Path, completions: UnboundedSender<Message>) -> Self {
        let inner = Inner {
            runs: runs.to_owned(),
            completions,
            pending: Mutex::new(Vec::new()),
            running: Mutex::new(HashMap::new()),
            lambda: LambdaCaller::default(),
        };
        Self {
            inner: Arc::new(inner),
        }
    }

    /// Take over an attempt a resume found running: start it if nobody claimed it,
    /// else follow whoever did until it ends.
    pub fn recover(&self, job: Job, files: AttemptFiles) -> Result<(), Failure> {
        let start = self.prepare(&job)?;
        let claimed = process::claim(&files).map_err(|e| {
            Failure::error(format!("cannot claim {}: {e}", files.claim().display()))
        })?;
        if claimed {
            self.launch(Pending { job, files, start }, true);
        } else {
            self.follow(&job, files);
        }
        Ok(())
    }

    /// Follow an attempt another process runs until it ends.
    fn follow(&self, job: &Job, files: AttemptFiles) {
        let id: AttemptId = (job.run_id.clone(), job.key.clone(), job.attempt);
        let sender = self.inner.completions.clone();
        let base = files.base().to_owned();
        let handle = tokio::spawn(async move {
            let outcome = process::follow(&files).await;
            report(&sender, &id, outcome);
        });
        lock(&self.inner.running).insert(base, handle.abort_handle());
    }

    fn prepare(&self, job: &Job) -> Result<Start, Failure> {
        match &job.run {
            RunSpec::Command(argv) => {
                let (program, args) = argv
                    .split_first()
                    .ok_or_else(|| Failure::error("empty command"))?;
                let workdir = job
                    .workdir
                    .as_deref()
                    .map_or_else(|| PathBuf::from("."), PathBuf::from);
                let program = process::resolve_program(program, &workdir)?;
                Ok(Start::Command {
                    program,
                    args: args.to_vec(),
                })
            }
            RunSpec::Lambda(function) => Ok(Start::Lambda {
                function: function.clone(),
            }),
            RunSpec::Pass(_) => Err(Failure::error("pass tasks are not started by an invoker")),
        }
    }

    /// Start an attempt; `claimed` when the caller already holds its claim.
    fn launch(&self, pending: Pending, claimed: bool) {
        let Pending { job, files, start } = pending;
        let id: AttemptId = (job.run_id.clone(), job.key.clone(), job.attempt);
        let sender = self.inner.completions.clone();
        let base = files.base().to_owned();
        let handle = match start {
            Start::Command { program, args } => {
                let runs = &self.inner.runs;
                let mut command = process::command(&job, &program, &args, &files, runs, claimed);
                match command.spawn() {
                    Ok(mut child) => tokio::spawn(async move {
                        // The exit status that counts is the one the wrapper wrote; a
                        // wrapper that found the claim taken follows its holder.
                        let _ = child.wait().await;
                        let outcome = match process::read_outcome(&files) {
                            Some(outcome) => outcome,
                            None => process::follow(&files).await,
                        };
                        report(&sender, &id, outcome);
                    }),
                    Err(error) => {
                        let failure = Failure::error(format!("cannot start /bin/sh: {error}"));
                        return report(&sender, &id, Outcome::Failed { failure });
                    }
                }
            }
            Start::Lambda { function } => {
                if !claimed && !process::claim(&files).unwrap_or(false) {
                    // Someone else calls it (a concurrent resume): its report settles it.
                    return;
                }
                let caller = self.inner.lambda.clone();
                tokio::spawn(async move {
                    let outcome = caller.invoke(&function, job.input).await;
                    process::write_result(&files, &outcome);
                    report(&sender, &id, outcome);
                })
            }
        };
        lock(&self.inner.running).insert(base, handle.abort_handle());
    }
}

fn report(sender: &UnboundedSender<Message>, id: &AttemptId, outcome: Outcome) {
    let (run_id, key, attempt) = id.clone();
    debug!(run_id = %run_id, task = %key, attempt, "attempt finished");
    // The receiver is gone only when the runner stopped; the attempt files still hold
    // the outcome for the next resume.
    let _ = sender.send(Message::Complete {
        run_id,
        key,
        attempt,
        outcome,
        ended_at: None,
        started_at: None,
        run: None,
    });
}

impl DeferredInvoker for LocalInvoker {
    fn pending(&self) -> usize {
        lock(&self.inner.pending).len()
    }

    fn discard_after(&self, keep: usize) {
        lock(&self.inner.pending).truncate(keep);
    }

    fn flush(&self) {
        let pending = std::mem::take(&mut *lock(&self.inner.pending));
        for start in pending {
            self.launch(start, false);
        }
    }
}

impl Invoker for LocalInvoker {
    async fn start(&self, job: Job) -> Result<(), StartError> {
        let files = AttemptFiles::new(&self.inner.runs, &job.run_id, &job.key, job.attempt);
        let start = self.prepare(&job).map_err(StartError::Rejected)?;
        create_folders(&self.inner.runs, &job.run_id, &files)?;
        std::fs::write(files.input(), &job.input).map_err(|e| {
            PortError::retryable(format!("cannot write {}: {e}", files.input().display()))
        })?;
        lock(&self.inner.pending).push(Pending { job, files, start });
        Ok(())
    }

    async fn cancel(&self, run_id: &str, key: &TaskKey, attempt: u32) -> PortResult<()> {
        let files = AttemptFiles::new(&self.inner.runs, run_id, key, attempt);
        process::kill(&files);
        if let Some(handle) = lock(&self.inner.running).remove(files.base()) {
            handle.abort();
        }
        debug!(run_id, task = %key, attempt, "attempt cancelled");
        Ok(())
    }
}

fn create_folders(runs: &Path, run_id: &str, files: &AttemptFiles) -> Result<(), PortError> {
    let scratch = scratch_folder(runs, run_id);
    let tasks = files.base().parent().unwrap_or(runs);
    for folder in [scratch.as_path(), tasks] {
        std::fs::create_dir_all(folder).map_err(|e| {
            PortError::retryable(format!("cannot create {}: {e}", folder.display()))
        })?;
    }
    Ok(())
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}
