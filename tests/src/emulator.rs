//! `cargo lambda watch` serving the example Lambda function (`zone-summary`, crate
//! `statemachines/examples/lambda`) on 127.0.0.1, for tests of `lambda` tasks on both
//! backends. cargo-lambda comes from PyPI into `.venv/` at the workspace root:
//! `scripts/lambda-emulator install` puts it there and `scripts/test` runs that first.
//! Without it these tests fail and say so; they never pass by skipping.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The function's binary name, which is also its name behind the Invoke API.
pub const FUNCTION: &str = "zone-summary";

/// Longest wait for the emulator's first answer: that invoke builds the function (debug),
/// which takes minutes on a cold target folder. A guard, not a measurement.
const START_GUARD: Duration = Duration::from_secs(300);

/// Longest wait for the emulator to end its function instances after SIGTERM.
const STOP_GUARD: Duration = Duration::from_secs(10);

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .canonicalize()
        .expect("the workspace root exists above tests/")
}

/// `cargo lambda watch` serving the example function, stopped when dropped.
#[derive(Debug)]
pub struct Emulator {
    child: Child,
    port: u16,
    log: PathBuf,
    function: String,
    _dir: tempfile::TempDir,
}

impl Emulator {
    /// Start the emulator on a free loopback port and wait until the function answers.
    pub fn start() -> Self {
        let manifest = workspace_root().join("statemachines/examples/lambda/Cargo.toml");
        let mut emulator = Self::serve(&manifest, FUNCTION, &[], r#"{"input": {"zones": []}}"#);
        let (_, body) = emulator.invoke(r#"{"input": {"zones": []}}"#);
        let summary: Value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("{FUNCTION} answered {body:?}, not JSON: {e}"));
        assert_eq!(summary["zones"], 0, "unexpected probe answer {summary}");
        emulator.function = FUNCTION.to_owned();
        emulator
    }

    /// Serve the binary `function` of the package at `manifest`, with `env` added to its
    /// environment, and wait until an invoke with `probe` answers 200.
    pub fn serve(manifest: &Path, function: &str, env: &[(String, String)], probe: &str) -> Self {
        let root = workspace_root();
        let tool = root.join(".venv/bin/cargo-lambda");
        assert!(
            tool.is_file(),
            "{} is missing: run `scripts/lambda-emulator install` (or `scripts/test`, which \
             does) before `cargo test -p aloft-tests`",
            tool.display()
        );

        let dir = tempfile::Builder::new()
            .prefix("aloft-lambda-emulator-")
            .tempdir()
            .expect("a temporary folder");
        let log = dir.path().join("watch.log");
        let port = free_port();
        let env_file = dir.path().join("function.env");
        let lines: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        std::fs::write(&env_file, lines.join("\n")).expect("write the function environment");
        let child = watch_command(&root, &tool, port, &log, manifest, function, &env_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", tool.display()));
        let mut emulator = Self {
            child,
            port,
            log,
            function: function.to_owned(),
            _dir: dir,
        };
        emulator.wait_until_ready(probe);
        emulator
    }

    /// Invoke the function and return the HTTP status and body.
    pub fn invoke(&self, body: &str) -> (u16, String) {
        invoke(self.port, &self.function, body, START_GUARD).unwrap_or_else(|| {
            panic!(
                "{} did not answer; log:\n{}",
                self.function,
                self.log_text()
            )
        })
    }

    /// What the emulator and its function printed so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The URL to give the AWS SDK as `AWS_ENDPOINT_URL`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Invoke the function with an empty zone list until it answers with its summary.
    /// Until the first build is done an invoke waits; before the server listens, the
    /// connection is refused and the probe looks again.
    fn wait_until_ready(&mut self, probe: &str) {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("try_wait on the emulator") {
                panic!(
                    "cargo lambda watch exited ({status}) before answering; its log:\n{}",
                    self.log_text()
                );
            }
            let left = START_GUARD.saturating_sub(start.elapsed());
            assert!(
                !left.is_zero(),
                "{} did not answer within {START_GUARD:?}; emulator log:\n{}",
                self.function,
                self.log_text()
            );
            if let Some((200, _)) = invoke(self.port, &self.function, probe, left) {
                return;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Emulator {
    fn drop(&mut self) {
        // SIGTERM first: cargo lambda watch then ends its function instances, which run
        // in sessions of their own. SIGKILL to its group only if it does not exit.
        let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        else {
            return;
        };
        let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        let start = Instant::now();
        while start.elapsed() < STOP_GUARD {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        let _ = self.child.wait();
    }
}

/// `cargo lambda watch` for the example function on `127.0.0.1:port`, without reloading
/// on file changes, in its own process group, its output going to `log`.
fn watch_command(
    root: &Path,
    tool: &Path,
    port: u16,
    log: &Path,
    manifest: &Path,
    function: &str,
    env_file: &Path,
) -> Command {
    let port = port.to_string();
    let output = std::fs::File::create(log).expect("create the emulator log");
    let errors = output.try_clone().expect("clone the emulator log handle");

    // The function is built with `cargo run`: the cargo that runs these tests.
    let cargo_dir = Path::new(env!("CARGO"))
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_default();
    let path = std::env::var_os("PATH").unwrap_or_default();
    let mut dirs = vec![cargo_dir];
    dirs.extend(std::env::split_paths(&path));

    let mut command = Command::new(tool);
    command
        .args(["lambda", "watch", "--invoke-address", "127.0.0.1"])
        .args([
            "--invoke-port",
            &port,
            "--ignore-changes",
            "--bin",
            function,
        ])
        .arg("--env-file")
        .arg(env_file)
        .arg("--manifest-path")
        .arg(manifest)
        .current_dir(root)
        .env(
            "PATH",
            std::env::join_paths(dirs).expect("PATH entries join"),
        )
        .stdin(Stdio::null())
        .stdout(output)
        .stderr(errors)
        .process_group(0);
    command
}

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind(("127.0.0.1", 0)).expect("bind a loopback port");
    listener.local_addr().expect("a bound address").port()
}

/// POST `body` to the function's Invoke API route and return the status and response
/// body; `None` if the emulator refuses the connection or does not answer within `wait`.
fn invoke(port: u16, function: &str, body: &str, wait: Duration) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(wait)).ok()?;
    let request = format!(
        "POST /2015-03-31/functions/{function}/invocations HTTP/1.1\r\n\
         Host: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;

    let (head, payload) = response.split_once("\r\n\r\n")?;
    let status = head.split(' ').nth(1)?.parse().ok()?;
    Some((status, payload.to_owned()))
}
