//! How a run is shown: JSON for machines, a table for people.

use crate::out::{out, outln};
use std::fmt::Write as _;

use jiff::Timestamp;
use serde_json::{Map, Value, json};

use aloft_core::{TaskState, Workflow};
use aloft_engine::ports::Store;
use aloft_engine::record::{RunRecord, TaskRecord};
use aloft_local::Runner;
use aloft_local::query::{AttemptRow, attempts};

use crate::Output;

/// Load a run with its tasks and attempt history and print it; returns the run.
pub async fn print_run(runner: &Runner, run_id: &str, output: Output) -> anyhow::Result<RunRecord> {
    let db = runner.db();
    let run = db
        .run(run_id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("run {run_id} disappeared"))?;
    let tasks = db.all_tasks(run_id).await?;
    let history = attempts(db, run_id)?;
    let workflow = runner.engine().workflow(&run).await?;
    let view = RunView {
        run: &run,
        tasks: &tasks,
        history: &history,
        workflow: &workflow,
    };
    match output {
        Output::Json => outln!("{}", view.to_json()),
        Output::Text => out!("{}", view.to_table()),
    }
    Ok(run)
}

/// A run and its tasks, ready to print.
pub struct RunView<'a> {
    pub run: &'a RunRecord,
    pub tasks: &'a [TaskRecord],
    pub history: &'a [AttemptRow],
    pub workflow: &'a Workflow,
}

/// RFC 3339 text of a time in ms since the epoch.
pub fn time(ms: u64) -> String {
    Timestamp::from_millisecond(ms as i64).map_or_else(|_| ms.to_string(), |t| format!("{t:.3}"))
}

fn time_value(ms: Option<u64>) -> Value {
    ms.map_or(Value::Null, |ms| Value::String(time(ms)))
}

/// `1.25s`, `3m04s`, `2h05m` for a span in ms.
pub fn duration(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.2}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

fn span(start: Option<u64>, end: Option<u64>) -> Option<u64> {
    Some(end?.saturating_sub(start?))
}

impl RunView<'_> {
    /// The run as one JSON document.
    pub fn to_json(&self) -> Value {
        let run = self.run;
        let mut tasks = Map::new();
        for task in self.tasks.iter().filter(|t| t.key.item.is_none()) {
            tasks.insert(
                task.key.task.clone(),
                task_json(task, self.history_of(&task.key.task)),
            );
        }
        json!({
            "id": run.id,
            "workflow": run.workflow,
            "version": run.version,
            "status": run.status.as_str(),
            "input": run.input,
            "idempotency_key": run.key,
            "tags": self.workflow.definition.tags,
            "created_at": time(run.created_at),
            "scheduled_time": time(run.scheduled_time),
            "started_at": time_value(run.started_at),
            "ended_at": time_value(run.ended_at),
            "duration_ms": span(run.started_at, run.ended_at),
            "deadline_at": time_value(run.deadline_at),
            "sla_missed": run.sla_missed,
            "tasks": tasks,
        })
    }

    /// The ended attempts of one task, oldest first.
    fn history_of(&self, task: &str) -> Vec<&AttemptRow> {
        self.history.iter().filter(|a| a.task == task).collect()
    }

    /// The run as a table of tasks.
    pub fn to_table(&self) -> String {
        let run = self.run;
        let mut out = String::new();
        let took = span(run.started_at, run.ended_at)
            .map(duration)
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "run {}  {}  {}  {took}",
            run.id, run.workflow, run.status
        );
        if run.sla_missed {
            let deadline = self
                .workflow
                .definition
                .deadline
                .map(|d| d.to_string())
                .unwrap_or_default();
            let _ = writeln!(out, "SLA missed: the run passed its deadline of {deadline}");
        }
        let width = self
            .tasks
            .iter()
            .map(|t| t.key.task.len())
            .max()
            .unwrap_or(4)
            .max(4);
        let _ = writeln!(
            out,
            "{:width$}  {:22}  {:>8}  {:>9}",
            "TASK", "STATUS", "ATTEMPTS", "DURATION"
        );
        for task in self.tasks.iter().filter(|t| t.key.item.is_none()) {
            let took = span(task.started_at, task.ended_at)
                .map(duration)
                .unwrap_or_default();
            let status = match task.items {
                Some(items) => format!("{} ({} items)", task.state, items.total),
                None => task.state.to_string(),
            };
            let _ = writeln!(
                out,
                "{:width$}  {status:22}  {:>8}  {took:>9}",
                task.key.task, task.attempt
            );
            for earlier in self
                .history_of(&task.key.task)
                .iter()
                .filter(|a| a.attempt < task.attempt)
            {
                if let Some((kind, message)) = &earlier.failure {
                    let _ = writeln!(
                        out,
                        "{:width$}  └ attempt {}: {kind}: {message}",
                        "", earlier.attempt
                    );
                }
            }
            if let Some(failure) = task.failure.as_ref().filter(|_| task.state.is_failure()) {
                let _ = writeln!(out, "{:width$}  └ {failure}", "");
            }
        }
        out
    }
}

fn task_json(task: &TaskRecord, history: Vec<&AttemptRow>) -> Value {
    let output = task
        .output
        .as_deref()
        .and_then(|o| serde_json::from_str::<Value>(o).ok());
    let mut value = json!({
        "status": task.state.as_str(),
        "attempts": task.attempt,
        "started_at": time_value(task.started_at),
        "ended_at": time_value(task.ended_at),
        "duration_ms": span(task.started_at, task.ended_at),
        "output": output,
        "error": task.failure.as_ref().map(|f| json!({"kind": f.kind, "message": f.message})),
    });
    let only_attempt = AttemptRow {
        task: task.key.task.clone(),
        item: None,
        attempt: 1,
        state: task.state.as_str().to_owned(),
        started_at: task.started_at,
        ended_at: task.ended_at.unwrap_or_default(),
        failure: None,
    };
    let first_success = task.state == TaskState::Succeeded && task.attempt == 1;
    let history = if history.is_empty() && first_success && task.items.is_none() {
        vec![&only_attempt]
    } else {
        history
    };
    value["history"] = history
        .into_iter()
        .map(|a| {
            json!({
                "attempt": a.attempt,
                "status": a.state,
                "started_at": time_value(a.started_at),
                "ended_at": time(a.ended_at),
                "duration_ms": a.started_at.map(|s| a.ended_at.saturating_sub(s)),
                "error": a.failure.as_ref().map(|(kind, message)| json!({"kind": kind, "message": message})),
            })
        })
        .collect();
    if let Some(items) = task.items {
        value["items"] = json!({"total": items.total, "failed": items.failed});
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(12), "12ms");
        assert_eq!(duration(1_250), "1.25s");
        assert_eq!(duration(184_000), "3m04s");
        assert_eq!(duration(7_500_000), "2h05m");
    }
}
