//! Helpers for end-to-end tests of the real `aloft` binary.
//!
//! Each test works in a [`Sandbox`]: a fresh temporary folder holding its workflow files
//! and its own database, with `target/debug` (where `aloft` and `aloft-example` are
//! built) first on `PATH`. The binaries are not built by the tests: run
//! `cargo build --workspace --bins` first.

pub mod aws;
pub mod emulator;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;

/// Longest any one aloft command may take before a test gives up on it. A guard against
/// a hang, never a measurement: no test passes or fails by how long a command took.
pub const GUARD: Duration = Duration::from_secs(120);

/// How often bounded waits look again.
const POLL: Duration = Duration::from_millis(5);

/// Subcommands that open the database and so take `--db`.
const DB_COMMANDS: [&str; 6] = ["run", "resume", "runs", "logs", "serve", "backfill"];

/// The folder of the workspace's built binaries: `target/debug`, the parent of the
/// folder holding this test executable (`target/debug/deps`).
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test executable has a path");
    exe.parent()
        .and_then(Path::parent)
        .expect("the test executable lives in target/<profile>/deps")
        .to_path_buf()
}

/// A binary built by the workspace, or a panic that says how to build it.
pub fn binary(name: &str) -> PathBuf {
    let path = bin_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: run `cargo build --workspace --bins` before `cargo test -p aloft-tests`",
        path.display()
    );
    path
}

/// The folder of the shipped example workflows.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../statemachines/examples")
        .canonicalize()
        .expect("statemachines/examples exists beside tests/")
}

/// Wait until `probe` returns something, looking every few milliseconds; panic naming
/// `what` if `guard` passes first.
pub fn wait_for<T>(what: &str, guard: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(
            start.elapsed() < guard,
            "gave up after {guard:?} waiting for {what}"
        );
        std::thread::sleep(POLL);
    }
}

/// A fresh folder with its own database, where aloft commands run.
#[derive(Debug)]
pub struct Sandbox {
    dir: TempDir,
    commands: AtomicUsize,
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl Sandbox {
    /// A new empty sandbox. Panics if the binaries are not built.
    pub fn new() -> Self {
        binary("aloft");
        binary("aloft-example");
        let dir = tempfile::Builder::new()
            .prefix("aloft-e2e-")
            .tempdir()
            .expect("a temporary folder");
        Self {
            dir,
            commands: AtomicUsize::new(0),
        }
    }

    /// The sandbox folder: the working directory of every command.
    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// The database every command of this sandbox uses.
    pub fn db(&self) -> PathBuf {
        self.path().join("state").join("aloft.db")
    }

    /// Where aloft keeps per-run files: `runs/` beside the database.
    pub fn runs_folder(&self) -> PathBuf {
        self.path().join("state").join("runs")
    }

    /// One file of a task attempt: `ext` is `in`, `out`, `log`, `pid` or `status`.
    pub fn attempt_file(&self, run_id: &str, task: &str, attempt: u32, ext: &str) -> PathBuf {
        self.runs_folder()
            .join(run_id)
            .join("tasks")
            .join(format!("{task}.{attempt}.{ext}"))
    }

    /// Write a file in the sandbox and return its path.
    pub fn write(&self, name: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let path = self.path().join(name);
        std::fs::write(&path, contents).expect("write a sandbox file");
        path
    }

    /// A sandbox file as text, empty if it does not exist.
    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.path().join(name)).unwrap_or_default()
    }

    /// The `aloft` command with `args`, in the sandbox, `--db` added for subcommands
    /// that open a database, `target/debug` first on `PATH`, no `ALOFT_DB` inherited.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = self.bare_command(args);
        if args.first().is_some_and(|a| DB_COMMANDS.contains(a)) {
            command.arg("--db").arg(self.db());
        }
        command
    }

    /// Like [`Sandbox::command`] but without `--db`.
    pub fn bare_command(&self, args: &[&str]) -> Command {
        let path = std::env::var_os("PATH").unwrap_or_default();
        let mut dirs = vec![bin_dir()];
        dirs.extend(std::env::split_paths(&path));
        let mut command = Command::new(binary("aloft"));
        command
            .args(args)
            .current_dir(self.path())
            .env(
                "PATH",
                std::env::join_paths(dirs).expect("PATH entries join"),
            )
            .env("NO_COLOR", "1")
            .env_remove("ALOFT_DB")
            .stdin(Stdio::null());
        command
    }

    /// Start `aloft args` in the background.
    pub fn start(&self, args: &[&str]) -> Running {
        self.spawn(self.command(args), args.join(" "))
    }

    /// Start a prepared command in the background, its stdout and stderr going to files.
    pub fn spawn(&self, mut command: Command, what: String) -> Running {
        let n = self.commands.fetch_add(1, Ordering::SeqCst);
        let folder = self.path().join(".commands");
        std::fs::create_dir_all(&folder).expect("create the command output folder");
        let stdout = folder.join(format!("{n}.stdout"));
        let stderr = folder.join(format!("{n}.stderr"));
        let file = |path: &Path| std::fs::File::create(path).expect("create an output file");
        let child = command
            .stdout(file(&stdout))
            .stderr(file(&stderr))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start aloft {what}: {e}"));
        Running {
            child,
            stdout,
            stderr,
            what,
        }
    }

    /// What every command started in this sandbox has printed on stderr so far.
    pub fn stderr_so_far(&self) -> Vec<String> {
        let n = self.commands.load(Ordering::SeqCst);
        (0..n)
            .map(|i| read_lossy(&self.path().join(".commands").join(format!("{i}.stderr"))))
            .collect()
    }

    /// Run `aloft args` to the end.
    pub fn aloft(&self, args: &[&str]) -> Finished {
        self.start(args).wait()
    }

    /// Run `aloft run FILE --output json` and return what it printed and the run.
    pub fn run_json(&self, file: &Path) -> (Finished, Value) {
        let file = file.to_str().expect("a UTF-8 path");
        let done = self.aloft(&["run", file, "--output", "json"]);
        let run = done.json();
        (done, run)
    }

    /// `aloft runs list --output json`.
    pub fn runs_list(&self) -> Vec<Value> {
        let done = self.aloft(&["runs", "list", "--output", "json"]);
        done.assert_code(0);
        match done.json() {
            Value::Array(runs) => runs,
            other => panic!("runs list printed {other}, not an array"),
        }
    }

    /// Ids of the runs in the database, newest first.
    pub fn run_ids(&self) -> Vec<String> {
        self.runs_list()
            .iter()
            .map(|r| r["id"].as_str().expect("a run id").to_owned())
            .collect()
    }

    /// Wait until the database holds exactly one run and return its id.
    pub fn wait_for_run(&self) -> String {
        wait_for("the run to appear in `runs list`", GUARD, || {
            if !self.db().exists() {
                return None;
            }
            let ids = self.run_ids();
            assert!(ids.len() <= 1, "expected one run, found {ids:?}");
            ids.into_iter().next()
        })
    }
}

/// An aloft command running in the background.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdout: PathBuf,
    stderr: PathBuf,
    what: String,
}

impl Running {
    /// The process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// True once the process has exited.
    pub fn has_exited(&mut self) -> bool {
        self.child.try_wait().expect("try_wait on aloft").is_some()
    }

    /// Kill it with SIGKILL, as a crash would, and reap it.
    pub fn kill(mut self) -> Finished {
        // It may have exited on its own just before: that is fine.
        let _ = self.child.kill();
        self.wait()
    }

    /// Wait for it to exit (at most [`GUARD`]) and collect what it printed.
    pub fn wait(mut self) -> Finished {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on aloft") {
                break status;
            }
            if start.elapsed() > GUARD {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "aloft {} did not exit within {GUARD:?}; stderr:\n{}",
                    self.what,
                    read_lossy(&self.stderr)
                );
            }
            std::thread::sleep(POLL);
        };
        Finished {
            code: status.code(),
            stdout: read_lossy(&self.stdout),
            stderr: read_lossy(&self.stderr),
            what: self.what,
        }
    }
}

fn read_lossy(path: &Path) -> String {
    String::from_utf8_lossy(&std::fs::read(path).unwrap_or_default()).into_owned()
}

/// What a finished aloft command did.
#[derive(Debug)]
pub struct Finished {
    /// Exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    /// Everything it printed on stdout.
    pub stdout: String,
    /// Everything it printed on stderr.
    pub stderr: String,
    what: String,
}

impl Finished {
    /// Panic with the command's output unless it exited with `code`.
    pub fn assert_code(&self, code: i32) {
        assert_eq!(
            self.code,
            Some(code),
            "aloft {} exited {:?}, expected {code}\nstdout:\n{}\nstderr:\n{}",
            self.what,
            self.code,
            self.stdout,
            self.stderr
        );
    }

    /// Panic unless it exited with a code other than 0 (and was not killed).
    pub fn assert_failed(&self) {
        assert!(
            self.code.is_some_and(|c| c != 0),
            "aloft {} exited {:?}, expected a non-zero exit\nstderr:\n{}",
            self.what,
            self.code,
            self.stderr
        );
    }

    /// Panic if the command panicked.
    pub fn assert_no_panic(&self) {
        for text in [&self.stdout, &self.stderr] {
            assert!(
                !text.contains("panicked"),
                "aloft {} panicked:\n{text}",
                self.what
            );
        }
    }

    /// Stdout as one JSON document.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "aloft {} printed no JSON on stdout ({e}):\n{}\nstderr:\n{}",
                self.what, self.stdout, self.stderr
            )
        })
    }
}

/// A run's tasks as `name -> (status, attempts)`, from `--output json`.
pub fn task_table(run: &Value) -> BTreeMap<String, (String, u64)> {
    let tasks = run["tasks"]
        .as_object()
        .unwrap_or_else(|| panic!("run JSON has no tasks object: {run}"));
    tasks
        .iter()
        .map(|(name, task)| {
            let status = task["status"].as_str().unwrap_or("<none>").to_owned();
            let attempts = task["attempts"].as_u64().unwrap_or(u64::MAX);
            (name.clone(), (status, attempts))
        })
        .collect()
}

/// An expected task table, written as `(name, status, attempts)` rows.
pub fn table(rows: &[(&str, &str, u64)]) -> BTreeMap<String, (String, u64)> {
    rows.iter()
        .map(|&(name, status, attempts)| (name.to_owned(), (status.to_owned(), attempts)))
        .collect()
}

/// One task of a run's JSON, or a panic naming it.
pub fn task<'a>(run: &'a Value, name: &str) -> &'a Value {
    let task = &run["tasks"][name];
    assert!(task.is_object(), "run has no task {name}: {run}");
    task
}

/// One task of a YAML workflow (indented for `tasks:`) that runs `script` with `sh -c`,
/// with extra settings lines such as `depends_on: [a]` or `pool: gate`.
pub fn sh_task(name: &str, settings: &[&str], script: &str) -> String {
    let mut yaml = format!("  {name}:\n");
    for setting in settings {
        yaml += &format!("    {setting}\n");
    }
    yaml += "    run:\n      command:\n        - sh\n        - -c\n        - |\n";
    for line in script.lines() {
        yaml += &format!("          {line}\n");
    }
    yaml
}

/// The largest number of intervals `[start, end)` that hold at one instant.
pub fn max_overlap(intervals: &[(u128, u128)]) -> usize {
    // Ends sort before starts at the same instant: touching intervals do not overlap.
    let mut events: Vec<(u128, i8)> = intervals
        .iter()
        .flat_map(|&(start, end)| [(start, 1), (end, -1)])
        .collect();
    events.sort_unstable();
    let mut open = 0_i64;
    let mut most = 0_i64;
    for (_, step) in events {
        open += i64::from(step);
        most = most.max(open);
    }
    usize::try_from(most).unwrap_or(0)
}

/// Process ids whose command line has `marker` as one whole argument (Linux `/proc`).
pub fn processes_with_arg(marker: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|cmdline| {
                cmdline
                    .split(|&b| b == 0)
                    .any(|arg| arg == marker.as_bytes())
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overlap_counts_only_intervals_open_together() {
        assert_eq!(max_overlap(&[]), 0);
        assert_eq!(max_overlap(&[(0, 10), (10, 20), (20, 30)]), 1);
        assert_eq!(max_overlap(&[(0, 10), (5, 15), (12, 20)]), 2);
        assert_eq!(max_overlap(&[(0, 10), (1, 9), (2, 8), (9, 12)]), 3);
    }
}
