//! Workflow versions and run listings in the table, for the command line and the trigger
//! function: what `aloft workflows put`, `aloft start` and `aloft runs` read and write.

use aws_sdk_dynamodb::types::AttributeValue;

use aloft_core::Definition;
use aloft_core::canonical::content_hash;
use aloft_engine::ports::{PortError, PortResult, Store};
use aloft_engine::record::{RunRecord, TaskRecord};

use crate::error::dynamodb_error;
use crate::store::{DynamoStore, get_n, get_s, key, n, run_from_item, s, workflow_pk};

/// What storing a definition did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Stored {
    /// The content hash of the definition.
    pub version: String,
    /// False when LATEST already pointed at this version.
    pub changed: bool,
}

/// One attempt of a task that did not simply succeed first time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRecord {
    /// The attempt.
    pub attempt: u32,
    /// How it ended.
    pub state: String,
    /// When it ended.
    pub ended_at: Option<u64>,
    /// Failure kind and message.
    pub failure: Option<(String, String)>,
}

/// A definition as stored, and its version: the content hash of that JSON.
pub fn version_of(definition: &Definition) -> PortResult<(serde_json::Value, String)> {
    let json = serde_json::to_value(definition).map_err(|e| PortError::terminal(e.to_string()))?;
    let version = content_hash(&json);
    Ok((json, version))
}

impl DynamoStore {
    /// Store a definition as an immutable version and point LATEST at it.
    pub async fn put_workflow(&self, definition: &Definition) -> PortResult<Stored> {
        let (json, version) = version_of(definition)?;
        self.put_definition(&definition.name, &version, &json.to_string())
            .await?;
        let previous = self
            .get(workflow_pk(&definition.name), "LATEST")
            .await?
            .and_then(|item| get_s(&item, "version").map(str::to_owned));
        if previous.as_deref() == Some(version.as_str()) {
            return Ok(Stored {
                version,
                changed: false,
            });
        }
        let mut item = key(workflow_pk(&definition.name), "LATEST");
        item.insert("version".into(), s(&version));
        item.insert("workflow".into(), s(&definition.name));
        item.insert("updated_at".into(), n(crate::store::now_ms()));
        self.client()
            .put_item()
            .table_name(self.table())
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| dynamodb_error("PutItem", &e))?;
        Ok(Stored {
            version,
            changed: true,
        })
    }

    /// The version LATEST of a workflow points at, if it has one.
    pub async fn latest_version(&self, workflow: &str) -> PortResult<Option<String>> {
        Ok(self
            .get(workflow_pk(workflow), "LATEST")
            .await?
            .and_then(|item| get_s(&item, "version").map(str::to_owned)))
    }

    /// The LATEST definition of a workflow, with its version.
    pub async fn latest(&self, workflow: &str) -> PortResult<Option<(String, Definition)>> {
        let Some(pointer) = self.get(workflow_pk(workflow), "LATEST").await? else {
            return Ok(None);
        };
        let version = get_s(&pointer, "version").unwrap_or_default().to_owned();
        let json = self.definition(workflow, &version).await?.ok_or_else(|| {
            PortError::terminal(format!(
                "LATEST of {workflow} names a missing version {version}"
            ))
        })?;
        let definition: Definition = serde_json::from_str(&json)
            .map_err(|e| PortError::terminal(format!("stored definition {version}: {e}")))?;
        Ok(Some((version, definition)))
    }

    /// Runs, newest first: of one workflow through the `by_workflow` index, or of every
    /// workflow by a scan (fine for a person looking, not for a hot path).
    pub async fn list_runs(
        &self,
        workflow: Option<&str>,
        limit: usize,
    ) -> PortResult<Vec<RunRecord>> {
        let items: Vec<_> = match workflow {
            Some(workflow) => self
                .client()
                .query()
                .table_name(self.table())
                .index_name("by_workflow")
                .key_condition_expression("gsi1pk = :pk")
                .expression_attribute_values(":pk", s(format!("RUNS#{workflow}")))
                .scan_index_forward(false)
                .limit(i32::try_from(limit).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| dynamodb_error("Query", &e))?
                .items
                .unwrap_or_default(),
            None => self
                .client()
                .scan()
                .table_name(self.table())
                .filter_expression("sk = :run")
                .expression_attribute_values(":run", AttributeValue::S("RUN".into()))
                .into_paginator()
                .items()
                .send()
                .try_collect()
                .await
                .map_err(|e| dynamodb_error("Scan", &e))?,
        };
        let mut runs = items
            .iter()
            .map(run_from_item)
            .collect::<PortResult<Vec<_>>>()?;
        runs.sort_by(|a, b| (b.created_at, &b.id).cmp(&(a.created_at, &a.id)));
        runs.truncate(limit);
        Ok(runs)
    }

    /// One run with its tasks and the history of their attempts.
    pub async fn show_run(
        &self,
        run_id: &str,
    ) -> PortResult<Option<(RunRecord, Vec<(TaskRecord, Vec<AttemptRecord>)>)>> {
        let Some(run) = self.run(run_id).await? else {
            return Ok(None);
        };
        let mut items = self
            .query(crate::store::run_pk(run_id), Some("TASK#".into()))
            .await?;
        items.sort_by_key(|i| {
            (
                get_n::<u64>(i, "position").unwrap_or(u64::MAX),
                get_n::<u64>(i, "item").map_or(0, |x| x + 1),
            )
        });
        let mut tasks = Vec::with_capacity(items.len());
        for item in &items {
            let record = crate::store::task_from_item(item)?;
            let attempts = item
                .get("attempts")
                .and_then(|a| a.as_l().ok())
                .map(|list| {
                    list.iter()
                        .filter_map(|entry| entry.as_m().ok())
                        .map(|m| AttemptRecord {
                            attempt: get_n(m, "attempt").unwrap_or(0),
                            state: get_s(m, "state").unwrap_or_default().to_owned(),
                            ended_at: get_n(m, "ended_at"),
                            failure: get_s(m, "failure_kind").map(|k| {
                                (
                                    k.to_owned(),
                                    get_s(m, "failure_message").unwrap_or_default().to_owned(),
                                )
                            }),
                        })
                        .collect()
                })
                .unwrap_or_default();
            tasks.push((record, attempts));
        }
        Ok(Some((run, tasks)))
    }
}
