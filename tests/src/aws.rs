//! The local AWS stack for tests of the AWS backend: moto's server (from PyPI, pinned,
//! in `.venv/`, installed by `scripts/aws-stack install`) on a free 127.0.0.1 port, one
//! per test, stopped when dropped; resources created by `scripts/aws-stack create`, the
//! same script a person uses.

use std::collections::BTreeMap;
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::emulator::{free_port, workspace_root};

/// Longest wait for moto's server to listen. A guard, not a measurement.
const START_GUARD: Duration = Duration::from_secs(60);

/// moto's server on a loopback port, stopped when dropped.
#[derive(Debug)]
pub struct LocalAws {
    child: Child,
    port: u16,
    log: tempfile::NamedTempFile,
}

/// The exports `scripts/aws-stack create` printed: table, queue URLs, bus, endpoint.
#[derive(Clone, Debug)]
pub struct Resources {
    /// Variable name to value.
    pub vars: BTreeMap<String, String>,
}

impl LocalAws {
    /// Start moto's server and wait until it listens.
    pub fn start() -> Self {
        let root = workspace_root();
        let server = root.join(".venv/bin/moto_server");
        assert!(
            server.is_file(),
            "{} is missing: run `scripts/aws-stack install` (or `scripts/test`, which does) \
             before `cargo test -p aloft-tests`",
            server.display()
        );
        let log = tempfile::NamedTempFile::new().expect("a log file");
        let port = free_port();
        let mut command = Command::new(&server);
        command
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .stdin(Stdio::null())
            .stdout(log.reopen().expect("reopen the log"))
            .stderr(log.reopen().expect("reopen the log"))
            .process_group(0);
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        let child = command
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", server.display()));
        let stack = Self { child, port, log };
        let start = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                start.elapsed() < START_GUARD,
                "moto did not listen within {START_GUARD:?}; its log:\n{}",
                std::fs::read_to_string(stack.log.path()).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        stack
    }

    /// The AWS SDK configuration for the stack: its endpoint, `us-east-1`, test keys.
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        sdk_config(&self.endpoint()).await
    }

    /// The endpoint URL of every service.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Create a table, queues and bus named after `prefix`, whose queues redrive after
    /// `max_receives` receives and hide a received message for `visibility` seconds.
    pub fn create(&self, prefix: &str, max_receives: u32, visibility: u32) -> Resources {
        let output = Command::new(workspace_root().join("scripts/aws-stack"))
            .args(["create", "--prefix", prefix])
            .env("AWS_ENDPOINT_URL", self.endpoint())
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("ALOFT_MAX_RECEIVES", max_receives.to_string())
            .env("ALOFT_VISIBILITY_TIMEOUT", visibility.to_string())
            .stdin(Stdio::null())
            .output()
            .expect("run scripts/aws-stack create");
        assert!(
            output.status.success(),
            "scripts/aws-stack create failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let mut vars = BTreeMap::new();
        for line in String::from_utf8_lossy(&output.stdout).lines() {
            let Some((name, value)) = line.trim_start_matches("export ").split_once('=') else {
                continue;
            };
            vars.insert(name.to_owned(), unquote(value));
        }
        vars.insert("ALOFT_MAX_RECEIVES".into(), max_receives.to_string());
        Resources { vars }
    }
}

/// A shell-quoted value back to its text.
fn unquote(value: &str) -> String {
    let value = value.trim();
    value
        .strip_prefix('\'')
        .and_then(|v| v.strip_suffix('\''))
        .map_or_else(|| value.to_owned(), |v| v.replace("'\\''", "'"))
}

impl Resources {
    /// One variable, or a panic naming it.
    pub fn get(&self, name: &str) -> &str {
        self.vars
            .get(name)
            .unwrap_or_else(|| panic!("scripts/aws-stack create printed no {name}"))
    }

    /// Give a command these resources, dummy credentials and none of the machine's AWS
    /// configuration.
    pub fn apply(&self, command: &mut Command) {
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("AWS_") {
                command.env_remove(name);
            }
        }
        command
            .envs(&self.vars)
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("AWS_EC2_METADATA_DISABLED", "true");
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        if let Some(pid) = i32::try_from(self.child.id())
            .ok()
            .and_then(rustix::process::Pid::from_raw)
        {
            let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
        }
        let _ = self.child.wait();
    }
}

/// The AWS SDK configuration for a local stack at `endpoint`: `us-east-1`, test keys.
pub async fn sdk_config(endpoint: &str) -> aws_config::SdkConfig {
    aws_config::defaults(aws_config::BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_sqs::config::Credentials::new(
            "testing", "testing", None, None, "tests",
        ))
        .load()
        .await
}
