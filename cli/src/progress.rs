//! What a running command shows on stderr: a live bar on a terminal, plain log lines
//! otherwise. Logging is set up here because the two share the terminal.

use crate::out::errln;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

use aloft_local::Sqlite;
use aloft_local::query::{running_tasks, state_counts};

/// The live display of one run.
pub struct Progress {
    bar: Option<ProgressBar>,
    run_id: String,
    last: Instant,
}

impl Progress {
    /// A bar when stderr is a terminal, nothing otherwise (log lines say it all).
    pub fn new(total: u64) -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
            let template = "{spinner} [{bar:30}] {pos}/{len} tasks settled  {msg}";
            if let Ok(style) = ProgressStyle::with_template(template) {
                bar.set_style(style.progress_chars("=> "));
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        init_logging(bar.clone());
        Self {
            bar,
            run_id: String::new(),
            last: Instant::now() - Duration::from_secs(1),
        }
    }

    /// Follow this run.
    pub fn follow(&mut self, run_id: &str) {
        self.run_id = run_id.to_owned();
    }

    /// Refresh from the database, at most ten times a second.
    pub fn update(&mut self, db: &Sqlite) {
        let Some(bar) = &self.bar else { return };
        if self.last.elapsed() < Duration::from_millis(100) {
            return;
        }
        self.last = Instant::now();
        let counts = state_counts(db, &self.run_id).unwrap_or_default();
        let count = |state: &str| {
            counts
                .iter()
                .find(|(s, _)| s == state)
                .map_or(0, |(_, n)| *n)
        };
        let settled: u32 = [
            "succeeded",
            "failed",
            "timed_out",
            "skipped",
            "upstream_failed",
        ]
        .iter()
        .map(|s| count(s))
        .sum();
        bar.set_position(u64::from(settled));
        let running = running_tasks(db, &self.run_id, 4).unwrap_or_default();
        let failed = count("failed") + count("timed_out");
        let mut message = format!(
            "running: {}",
            if running.is_empty() {
                "-".into()
            } else {
                running.join(", ")
            }
        );
        if failed > 0 {
            message.push_str(&format!("  failed: {failed}"));
        }
        bar.set_message(message);
    }

    /// Remove the bar before the final report.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

/// Log lines go to stderr: on a terminal only warnings and errors (printed above the
/// bar), otherwise run and task lifecycle too. `ALOFT_LOG` overrides the filter.
fn init_logging(bar: Option<ProgressBar>) {
    let default = if bar.is_some() { "warn" } else { "info" };
    let filter = match std::env::var("ALOFT_LOG") {
        Ok(text) => EnvFilter::try_new(&text).unwrap_or_else(|error| {
            errln!("warning: ignoring ALOFT_LOG={text:?} ({error}); logging at {default}");
            EnvFilter::new(default)
        }),
        Err(_) => EnvFilter::new(default),
    };
    let ansi = bar.is_some() && std::env::var_os("NO_COLOR").is_none();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(BarWriter { bar })
        .try_init();
}

/// Set up logging for commands without a progress display.
pub fn init_plain_logging() {
    init_logging(None);
}

/// Writes log lines above the bar when there is one, else to stderr.
#[derive(Clone)]
struct BarWriter {
    bar: Option<ProgressBar>,
}

impl<'a> MakeWriter<'a> for BarWriter {
    type Writer = LineWriter;

    fn make_writer(&'a self) -> Self::Writer {
        LineWriter {
            bar: self.bar.clone(),
            buffer: Vec::new(),
        }
    }
}

struct LineWriter {
    bar: Option<ProgressBar>,
    buffer: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for LineWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.buffer);
        let line = text.trim_end();
        match &self.bar {
            Some(bar) => bar.println(line),
            None => errln!("{line}"),
        }
    }
}
