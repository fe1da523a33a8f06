//! The task input document: `{"run", "task", "input", "upstream", "item", "index"}`.
//!
//! `run.id`, `task`, `index` and `run.attempt` also name the attempt a result belongs
//! to: a Lambda destination record carries the document back as its request payload.

use serde_json::{Map, Value, json};

use aloft_core::Failure;
use aloft_core::TaskState;
use aloft_core::Workflow;
use aloft_core::workflow::TaskPlan;

use crate::engine::{Engine, EngineError, INPUT_LIMIT};
use crate::message::TaskKey;
use crate::ports::{Clock, Events, Invoker, Queue, Store};
use crate::record::{RunRecord, TaskRecord};

impl<S: Store, Q: Queue, I: Invoker, C: Clock, E: Events> Engine<S, Q, I, C, E> {
    /// Build the input of one attempt. Only direct upstreams are read; a `for_each`
    /// upstream contributes the list of its items' outputs. An input over
    /// [`INPUT_LIMIT`] is a `payload_too_large` failure of this attempt.
    pub(crate) async fn task_input(
        &self,
        run: &RunRecord,
        workflow: &Workflow,
        task: &TaskPlan,
        record: &TaskRecord,
    ) -> Result<Result<Vec<u8>, Failure>, EngineError> {
        let keys: Vec<TaskKey> = task
            .upstream
            .iter()
            .map(|&u| TaskKey::task(&workflow.tasks[u].name))
            .collect();
        let records = self.task_records(&run.id, &keys).await?;
        // Stored outputs only grow when gathered into the document, so their total is a
        // lower bound of its size: refuse before gathering anything too large (the items'
        // outputs of a `for_each` upstream are summed by the store, not loaded).
        let own: u64 = records
            .iter()
            .filter(|r| r.items.is_none())
            .map(|r| r.output.as_ref().map_or(0, |o| o.len() as u64))
            .sum();
        let parents: Vec<&str> = records
            .iter()
            .filter(|r| r.items.is_some())
            .map(|r| r.key.task.as_str())
            .collect();
        let stored = match parents.is_empty() {
            true => own,
            false => own.saturating_add(self.store.output_bytes(&run.id, &parents).await?),
        };
        if stored > INPUT_LIMIT as u64 {
            let message = format!(
                "task input would hold {stored} bytes of upstream outputs, over the limit of \
                 {INPUT_LIMIT} bytes"
            );
            return Ok(Err(Failure::new(Failure::PAYLOAD_TOO_LARGE, message)));
        }
        let mut upstream = Map::new();
        for found in records {
            let output = self.upstream_output(run, &found).await?;
            upstream.insert(found.key.task.clone(), output);
        }
        let mut document = json!({
            "run": {
                "id": run.id,
                "workflow": run.workflow,
                "attempt": record.attempt,
                "scheduled_time": crate::time::UtcTime::from_millis(run.scheduled_time).to_string(),
            },
            "task": record.key.task,
            "input": run.input,
            "upstream": upstream,
        });
        if let Some(started) = record.started_at {
            // When this attempt started: a Lambda destination record gives it back, so
            // that the result is judged against the timeout without a read.
            document["run"]["attempt_started_at"] = crate::time::UtcTime::from_millis(started)
                .to_string()
                .into();
        }
        if self.config.document_carries_run {
            document["aloft"] = carried_run(run);
        }
        if let Some(item) = &record.item {
            document["item"] = item.clone();
        }
        if let Some(index) = record.key.item {
            document["index"] = index.into();
        }
        let bytes = document.to_string().into_bytes();
        if bytes.len() > INPUT_LIMIT {
            let message = format!(
                "task input is {} bytes, over the limit of {INPUT_LIMIT} bytes",
                bytes.len()
            );
            return Ok(Err(Failure::new(Failure::PAYLOAD_TOO_LARGE, message)));
        }
        Ok(Ok(bytes))
    }

    /// An upstream's output as its dependents see it: a `for_each` task's is the list
    /// of its items' outputs.
    pub(crate) async fn upstream_output(
        &self,
        run: &RunRecord,
        record: &TaskRecord,
    ) -> Result<Value, EngineError> {
        if record.items.is_some() && record.state == TaskState::Succeeded {
            let outputs = self.store.item_outputs(&run.id, &record.key.task).await?;
            return Ok(Value::Array(
                outputs.iter().map(|o| parse_stored(o.as_deref())).collect(),
            ));
        }
        Ok(parse_stored(record.output.as_deref()))
    }
}

/// A stored output back as JSON; a missing one is null.
pub(crate) fn parse_stored(text: Option<&str>) -> Value {
    text.and_then(|t| serde_json::from_str(t).ok())
        .unwrap_or(Value::Null)
}

/// The run's record as a task document carries it (see
/// [`crate::engine::Config::document_carries_run`]): without its input, which the
/// document holds already.
fn carried_run(run: &RunRecord) -> Value {
    let mut value = serde_json::to_value(run).unwrap_or(Value::Null);
    if let Some(fields) = value.as_object_mut() {
        fields.remove("input");
    }
    value
}

/// The run a task document carries, if it carries one for its own run.
pub fn run_of_document(document: &Value) -> Option<RunRecord> {
    let mut value = document.get("aloft")?.clone();
    let run_id = document.get("run")?.get("id")?;
    if value.get("id") != Some(run_id) {
        return None;
    }
    value
        .as_object_mut()?
        .insert("input".into(), document.get("input")?.clone());
    serde_json::from_value(value).ok()
}
