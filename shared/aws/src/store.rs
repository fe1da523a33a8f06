//! The engine's store on one DynamoDB table.
//!
//! | item | pk | sk |
//! |---|---|---|
//! | definition version | `WF#<workflow>` | `V#<version>` (immutable) |
//! | latest version pointer | `WF#<workflow>` | `LATEST` |
//! | run | `RUN#<id>` | `RUN` (GSI `by_workflow`: `RUNS#<workflow>`, run id; sparse GSI `active`, until it settles: `ACTIVE#<workflow>`, run id) |
//! | task | `RUN#<id>` | `TASK#<task>` |
//! | `for_each` item | `RUN#<id>` | `TASK#<task>#<index, 10 digits>` |
//! | wake-up timer | `RUN#<id>` | `TIMER#<timer>#<at>` |
//! | settled upstreams of a task (a string set of indexes) | `RUN#<id>` | `UP#<task>` |
//! | run key | `KEY#<workflow>#<key>` | `KEY` |
//! | concurrency scope | `LIMIT#<scope>` | `LIMIT` (holders with lease expiry) |
//! | parked message | `PARK#<scope>` | `<parked at>#<body hash>` |
//!
//! Every task transition is one conditional UpdateItem on (state, attempt). A change
//! that settles a sink task, a failing task or a `for_each` item also moves its run's
//! (or parent's) counters: the two writes go in one TransactWriteItems, so that no crash
//! can leave a settled task uncounted. Any other task settles in one UpdateItem (see
//! `TaskChange::sink`).
//! A condition that does not hold is a normal answer (`applied: false`), not an error.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};

use aws_sdk_dynamodb::Client;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeValue, KeysAndAttributes, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
    Update,
};
use futures::{StreamExt, TryStreamExt, stream};
use serde_json::Value;

use aloft_core::canonical::canonical_json;
use aloft_core::{Failure, RunStatus, TaskState};
use aloft_engine::message::{Message, TaskKey};
use aloft_engine::ports::{Applied, Created, PortError, PortResult, Slot, Store, TaskChange};
use aloft_engine::record::{ItemCounts, RunRecord, TaskRecord, WatchLeg};

use crate::error::dynamodb_error;

/// One DynamoDB item.
pub type Item = HashMap<String, AttributeValue>;

/// Writes of many independent items (tasks of a new run, items of a fan-out) run this
/// many at a time.
const WRITE_CONCURRENCY: usize = 16;

/// Largest run input, in bytes of canonical JSON: it lives in the run's item, which
/// DynamoDB caps at 400 KB with everything else the run records.
pub const RUN_INPUT_LIMIT: usize = 350_000;

/// Longest idempotency key, in bytes: it is part of a partition key (2,048 bytes at most,
/// with the workflow name).
pub const KEY_LIMIT: usize = 1_024;

/// Tries of a transaction that DynamoDB cancels for contention, not for its condition.
const TRANSACTION_TRIES: u32 = 6;

/// Optimistic updates of one concurrency scope give up after this many lost races.
const SCOPE_TRIES: u32 = 16;

/// The store on a DynamoDB table.
#[derive(Clone, Debug)]
pub struct DynamoStore {
    client: Client,
    table: String,
    /// Definition versions known to be stored (`<workflow> <version>`). Versions are
    /// immutable, so a version seen once need not be written again: a conditional put
    /// that finds the item there still costs its size in write units.
    stored: Arc<Mutex<HashSet<String>>>,
    /// How long a run's items live, in seconds from their writing: each is written
    /// with `expires_at`, which the table's TTL deletes after. `None` keeps them.
    retention_s: Option<u64>,
}

/// The partition of a run.
pub fn run_pk(run_id: &str) -> String {
    format!("RUN#{run_id}")
}

/// The sort key of a task or item.
pub fn task_sk(key: &TaskKey) -> String {
    match key.item {
        None => format!("TASK#{}", key.task),
        Some(index) => format!("TASK#{}#{index:010}", key.task),
    }
}

/// The partition of a workflow's versions.
pub fn workflow_pk(workflow: &str) -> String {
    format!("WF#{workflow}")
}

pub(crate) fn s(value: impl Into<String>) -> AttributeValue {
    AttributeValue::S(value.into())
}

pub(crate) fn n(value: impl ToString) -> AttributeValue {
    AttributeValue::N(value.to_string())
}

pub(crate) fn key(pk: String, sk: impl Into<String>) -> Item {
    HashMap::from([("pk".to_owned(), s(pk)), ("sk".to_owned(), s(sk))])
}

/// A text attribute of an item.
pub fn get_s<'a>(item: &'a Item, name: &str) -> Option<&'a str> {
    item.get(name)
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

pub(crate) fn get_n<T: std::str::FromStr>(item: &Item, name: &str) -> Option<T> {
    item.get(name)
        .and_then(|v| v.as_n().ok())
        .and_then(|v| v.parse().ok())
}

fn get_bool(item: &Item, name: &str) -> bool {
    item.get(name)
        .and_then(|v| v.as_bool().ok())
        .copied()
        .unwrap_or(false)
}

fn corrupt(what: &str, detail: impl std::fmt::Display) -> PortError {
    PortError::terminal(format!("unreadable {what} in the table: {detail}"))
}

/// True when a write failed only because its condition did not hold.
fn condition_failed<E>(
    error: &aws_sdk_dynamodb::error::SdkError<E, aws_smithy_runtime_api::http::Response>,
) -> bool
where
    E: aws_smithy_types::error::metadata::ProvideErrorMetadata,
{
    error
        .as_service_error()
        .and_then(|e| e.code())
        .is_some_and(|code| code == "ConditionalCheckFailedException")
}

/// An update expression built from named parts, every attribute name aliased (many,
/// such as `state` and `status`, are DynamoDB reserved words).
#[derive(Default)]
struct Expr {
    set: Vec<String>,
    add: Vec<String>,
    remove: Vec<String>,
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    fn name(&mut self, attribute: &str) -> String {
        let alias = format!("#{}", attribute.replace(['-', '.'], "_"));
        self.names.insert(alias.clone(), attribute.to_owned());
        alias
    }

    fn value(&mut self, value: AttributeValue) -> String {
        let alias = format!(":v{}", self.values.len());
        self.values.insert(alias.clone(), value);
        alias
    }

    fn set(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.set.push(format!("{name} = {value}"));
        self
    }

    fn set_opt(&mut self, attribute: &str, value: Option<AttributeValue>) -> &mut Self {
        if let Some(value) = value {
            self.set(attribute, value);
        }
        self
    }

    fn add(&mut self, attribute: &str, value: AttributeValue) -> &mut Self {
        let (name, value) = (self.name(attribute), self.value(value));
        self.add.push(format!("{name} {value}"));
        self
    }

    fn remove(&mut self, attribute: &str) -> &mut Self {
        let name = self.name(attribute);
        self.remove.push(name);
        self
    }

    /// `attribute = value`, for conditions.
    fn equals(&mut self, attribute: &str, value: AttributeValue) -> String {
        let (name, value) = (self.name(attribute), self.value(value));
        format!("{name} = {value}")
    }

    fn update(&self) -> String {
        let mut parts = Vec::new();
        if !self.set.is_empty() {
            parts.push(format!("SET {}", self.set.join(", ")));
        }
        if !self.add.is_empty() {
            parts.push(format!("ADD {}", self.add.join(", ")));
        }
        if !self.remove.is_empty() {
            parts.push(format!("REMOVE {}", self.remove.join(", ")));
        }
        parts.join(" ")
    }
}

impl DynamoStore {
    /// The store on `table`.
    pub fn new(client: Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_owned(),
            stored: Arc::default(),
            retention_s: None,
        }
    }

    /// The same store, writing a run's items (the run, its tasks and items, timers,
    /// upstream records, its run key) to expire `days` days after they are written;
    /// 0 keeps them. Definitions, their LATEST pointer and concurrency scopes never
    /// expire.
    #[must_use]
    pub fn with_retention_days(mut self, days: u32) -> Self {
        self.retention_s = (days > 0).then(|| u64::from(days) * 86_400);
        self
    }

    /// When an item of a run written now expires, in seconds since the epoch, if ever.
    fn run_item_expiry(&self) -> Option<AttributeValue> {
        self.retention_s.map(|after| n(now_ms() / 1000 + after))
    }

    fn stored_versions(&self) -> std::sync::MutexGuard<'_, HashSet<String>> {
        // Only ever grows by whole entries: a poisoned lock still guards a sound set.
        self.stored.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn is_stored(&self, workflow: &str, version: &str) -> bool {
        self.stored_versions()
            .contains(&format!("{workflow} {version}"))
    }

    fn mark_stored(&self, workflow: &str, version: &str) {
        self.stored_versions()
            .insert(format!("{workflow} {version}"));
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The client.
    pub fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) async fn get(&self, pk: String, sk: &str) -> PortResult<Option<Item>> {
        let found = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(pk, sk)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| dynamodb_error("GetItem", &e))?;
        Ok(found.item)
    }

    /// Put an item unless one with its key exists; false when one did.
    pub(crate) async fn put_new(&self, mut item: Item) -> PortResult<bool> {
        let of_a_run =
            get_s(&item, "pk").is_some_and(|pk| pk.starts_with("RUN#") || pk.starts_with("KEY#"));
        if of_a_run
            && !item.contains_key("expires_at")
            && let Some(expiry) = self.run_item_expiry()
        {
            item.insert("expires_at".into(), expiry);
        }
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("attribute_not_exists(pk)")
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(dynamodb_error("PutItem", &e)),
        }
    }

    /// Put many items, each unless it exists, a few at a time.
    async fn put_all_new(&self, items: Vec<Item>) -> PortResult<()> {
        stream::iter(items.into_iter().map(|item| self.put_new(item)))
            .buffer_unordered(WRITE_CONCURRENCY)
            .try_collect::<Vec<bool>>()
            .await?;
        Ok(())
    }

    /// Apply `expr` to one item under `condition`; false when the condition failed.
    async fn update(&self, key: Item, expr: Expr, condition: Option<String>) -> PortResult<bool> {
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .update_expression(expr.update())
            .set_condition_expression(condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values((!expr.values.is_empty()).then_some(expr.values))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if condition_failed(&e) => Ok(false),
            Err(e) => Err(dynamodb_error("UpdateItem", &e)),
        }
    }

    /// Query one partition, every page, optionally under a sort key prefix.
    pub(crate) async fn query(&self, pk: String, prefix: Option<String>) -> PortResult<Vec<Item>> {
        let mut condition = "pk = :pk".to_owned();
        let mut values = HashMap::from([(":pk".to_owned(), s(pk))]);
        if let Some(prefix) = prefix {
            condition.push_str(" AND begins_with(sk, :prefix)");
            values.insert(":prefix".to_owned(), s(prefix));
        }
        self.client
            .query()
            .table_name(&self.table)
            .key_condition_expression(condition)
            .set_expression_attribute_values(Some(values))
            .consistent_read(true)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| dynamodb_error("Query", &e))
    }

    /// Write a run's waiting tasks, then the run itself. Task puts are conditional, so
    /// finishing a half-done creation never overwrites a task that has moved on; the
    /// run comes last, so no handler sees it before its tasks exist.
    async fn write_run(&self, run: &RunRecord, tasks: &[TaskRecord]) -> PortResult<()> {
        let pk = run_pk(&run.id);
        let items: Vec<Item> = tasks
            .iter()
            .enumerate()
            .map(|(position, task)| {
                let mut item = key(pk.clone(), task_sk(&task.key));
                item.insert("task".into(), s(&task.key.task));
                item.insert("state".into(), s(task.state.as_str()));
                item.insert("attempt".into(), n(task.attempt));
                item.insert("not_before".into(), n(task.not_before));
                item.insert("position".into(), n(position));
                item
            })
            .collect();
        self.put_all_new(items).await?;
        self.put_new(run_item(run)).await?;
        Ok(())
    }

    /// The counters of a run after a change.
    async fn run_counters(&self, run_id: &str) -> PortResult<(u32, u32)> {
        let item = self
            .get(run_pk(run_id), "RUN")
            .await?
            .ok_or_else(|| corrupt("run", format!("run {run_id} is missing")))?;
        Ok((
            get_n(&item, "unsettled").unwrap_or(0),
            get_n(&item, "failed").unwrap_or(0),
        ))
    }

    async fn item_counts(&self, run_id: &str, task: &str) -> PortResult<Option<ItemCounts>> {
        let parent = self
            .get(run_pk(run_id), &task_sk(&TaskKey::task(task)))
            .await?;
        Ok(parent.and_then(|p| item_counts(&p)))
    }

    /// Run `expr` on a task under its (state, attempt) condition, and in the same
    /// transaction `counters` on its run or parent.
    async fn transact(
        &self,
        task_key: Item,
        expr: Expr,
        condition: String,
        counters_key: Item,
        counters: Expr,
    ) -> PortResult<bool> {
        let task = Update::builder()
            .table_name(&self.table)
            .set_key(Some(task_key))
            .update_expression(expr.update())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .build()
            .map_err(|e| PortError::terminal(e.to_string()))?;
        let counter = Update::builder()
            .table_name(&self.table)
            .set_key(Some(counters_key))
            .update_expression(counters.update())
            .set_expression_attribute_names(Some(counters.names))
            .set_expression_attribute_values(Some(counters.values))
            .build()
            .map_err(|e| PortError::terminal(e.to_string()))?;
        // Settles of one run's tasks all touch the run's counters: under a wide fan-out
        // transactions on that item conflict, and DynamoDB cancels them. A conflict is
        // tried again here, after a short random pause, before it becomes a retryable
        // error (the message comes back later), never a failure of the run.
        for attempt in 1..=TRANSACTION_TRIES {
            let result = self
                .client
                .transact_write_items()
                .transact_items(TransactWriteItem::builder().update(task.clone()).build())
                .transact_items(TransactWriteItem::builder().update(counter.clone()).build())
                .send()
                .await;
            let Err(e) = result else {
                return Ok(true);
            };
            let reasons: Vec<String> = match e.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(cancel)) => cancel
                    .cancellation_reasons()
                    .iter()
                    .filter_map(|r| r.code().map(str::to_owned))
                    .collect(),
                _ => Vec::new(),
            };
            if reasons.iter().any(|code| code == "ConditionalCheckFailed") {
                return Ok(false);
            }
            let contended = reasons.iter().any(|code| {
                matches!(
                    code.as_str(),
                    "TransactionConflict" | "ThrottlingError" | "ProvisionedThroughputExceeded"
                )
            });
            if !contended {
                return Err(dynamodb_error("TransactWriteItems", &e));
            }
            if attempt == TRANSACTION_TRIES {
                return Err(PortError::retryable(format!(
                    "DynamoDB TransactWriteItems: cancelled {TRANSACTION_TRIES} times in a row \
                     ({})",
                    reasons.join(", ")
                )));
            }
            let pause = rand::random::<u64>() % (20 << attempt);
            tokio::time::sleep(std::time::Duration::from_millis(pause)).await;
        }
        Err(PortError::retryable(
            "DynamoDB TransactWriteItems: no attempt made",
        ))
    }

    /// Take `holder`'s lease on one scope; false when the scope is full.
    async fn lease(
        &self,
        slot: &Slot,
        holder: &str,
        now: u64,
        expires_at: u64,
    ) -> PortResult<bool> {
        let pk = format!("LIMIT#{}", slot.scope);
        // Most leases are taken by one conditional update; the scope as the update found
        // it comes back when the update is refused (full, new, or already listing the
        // holder), and the read-modify-write below decides from it, pruning expired
        // leases on the way.
        let mut found = match self.add_holder(&pk, slot, holder, expires_at).await? {
            Ok(()) => return Ok(true),
            Err(found) => Some(found),
        };
        for _ in 0..SCOPE_TRIES {
            let current = match found.take() {
                Some(found) => found,
                None => self.get(pk.clone(), "LIMIT").await?,
            };
            let version: u64 = current.as_ref().and_then(|i| get_n(i, "ver")).unwrap_or(0);
            let mut holders: HashMap<String, AttributeValue> = current
                .as_ref()
                .and_then(|i| i.get("holders"))
                .and_then(|h| h.as_m().ok())
                .cloned()
                .unwrap_or_default();
            holders.retain(|_, expiry| unexpired(expiry, now));
            if holders.contains_key(holder) {
                return Ok(true);
            }
            if holders.len() >= slot.capacity as usize {
                return Ok(false);
            }
            holders.insert(holder.to_owned(), n(expires_at));
            let mut item = key(pk.clone(), "LIMIT");
            item.insert("holders".into(), AttributeValue::M(holders));
            item.insert("ver".into(), n(version + 1));
            let (condition, values) = if current.is_some() {
                (
                    "ver = :ver",
                    Some(HashMap::from([(":ver".to_owned(), n(version))])),
                )
            } else {
                ("attribute_not_exists(pk)", None)
            };
            let result = self
                .client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .set_expression_attribute_values(values)
                .send()
                .await;
            match result {
                Ok(_) => return Ok(true),
                Err(e) if condition_failed(&e) => continue,
                Err(e) => return Err(dynamodb_error("PutItem", &e)),
            }
        }
        Err(PortError::retryable(format!(
            "scope {} is too contended: {SCOPE_TRIES} updates in a row lost their race",
            slot.scope
        )))
    }

    /// Add `holder` to a scope that exists, has room by count of leases (expired ones
    /// included) and does not list it yet. Otherwise the scope is returned as it was,
    /// `None` when it does not exist.
    async fn add_holder(
        &self,
        pk: &str,
        slot: &Slot,
        holder: &str,
        expires_at: u64,
    ) -> PortResult<Result<(), Option<Item>>> {
        let mut expr = Expr::default();
        expr.names.insert("#h".into(), holder.to_owned());
        let holders = expr.name("holders");
        let expiry = expr.value(n(expires_at));
        let one = expr.value(n(1));
        let capacity = expr.value(n(slot.capacity));
        expr.set.push(format!("{holders}.#h = {expiry}"));
        expr.add.push(format!("ver {one}"));
        let condition = format!(
            "attribute_exists({holders}) AND size({holders}) < {capacity} \
             AND attribute_not_exists({holders}.#h)"
        );
        let result = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(pk.to_owned(), "LIMIT")))
            .update_expression(expr.update())
            .condition_expression(condition)
            .set_expression_attribute_names(Some(expr.names))
            .set_expression_attribute_values(Some(expr.values))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .send()
            .await;
        match result {
            Ok(_) => Ok(Ok(())),
            Err(e) => match e.as_service_error() {
                Some(UpdateItemError::ConditionalCheckFailedException(refused)) => {
                    Ok(Err(refused.item.clone()))
                }
                _ => Err(dynamodb_error("UpdateItem", &e)),
            },
        }
    }

    /// Drop `holder` from one scope; true when it held a lease there.
    async fn unlease(&self, scope: &str, holder: &str) -> PortResult<bool> {
        let mut expr = Expr::default();
        expr.names.insert("#h".into(), holder.to_owned());
        let one = expr.value(n(1));
        expr.remove.push("holders.#h".into());
        expr.add.push(format!("ver {one}"));
        self.update(
            key(format!("LIMIT#{scope}"), "LIMIT"),
            expr,
            Some("attribute_exists(holders.#h)".into()),
        )
        .await
    }
}

/// True when a lease's expiry (ms since the epoch) is after `now`.
fn unexpired(expiry: &AttributeValue, now: u64) -> bool {
    expiry
        .as_n()
        .ok()
        .and_then(|e| e.parse::<u64>().ok())
        .is_some_and(|e| e > now)
}

/// The table item of a run.
pub(crate) fn run_item(run: &RunRecord) -> Item {
    let mut item = key(run_pk(&run.id), "RUN");
    let mut put = |name: &str, value: AttributeValue| {
        item.insert(name.to_owned(), value);
    };
    put("gsi1pk", s(format!("RUNS#{}", run.workflow)));
    put("gsi1sk", s(&run.id));
    if !run.status.is_settled() {
        put("active_pk", s(format!("ACTIVE#{}", run.workflow)));
        put("active_sk", s(&run.id));
    }
    put("id", s(&run.id));
    put("workflow", s(&run.workflow));
    put("version", s(&run.version));
    put("status", s(run.status.as_str()));
    put("input", s(canonical_json(&run.input)));
    put("created_at", n(run.created_at));
    put("sla_missed", AttributeValue::Bool(run.sla_missed));
    put("unsettled", n(run.unsettled));
    put("failed", n(run.failed));
    put("scheduled_time", n(run.scheduled_time));
    if let Some(key) = &run.key {
        put("run_key", s(key));
    }
    for (name, value) in [
        ("started_at", run.started_at),
        ("ended_at", run.ended_at),
        ("deadline_at", run.deadline_at),
    ] {
        if let Some(value) = value {
            put(name, n(value));
        }
    }
    if let Some(workdir) = &run.workdir {
        put("workdir", s(workdir));
    }
    item
}

/// A run back from its item.
pub fn run_from_item(item: &Item) -> PortResult<RunRecord> {
    let text = |name: &str| {
        get_s(item, name)
            .map(str::to_owned)
            .ok_or_else(|| corrupt("run", format!("no {name}")))
    };
    let status = text("status")?;
    let input = text("input")?;
    Ok(RunRecord {
        id: text("id")?,
        workflow: text("workflow")?,
        version: text("version")?,
        status: RunStatus::parse(&status).ok_or_else(|| corrupt("run status", &status))?,
        input: serde_json::from_str(&input).map_err(|e| corrupt("run input", e))?,
        key: get_s(item, "run_key").map(str::to_owned),
        created_at: get_n(item, "created_at").unwrap_or(0),
        started_at: get_n(item, "started_at"),
        ended_at: get_n(item, "ended_at"),
        deadline_at: get_n(item, "deadline_at"),
        sla_missed: get_bool(item, "sla_missed"),
        unsettled: get_n(item, "unsettled").unwrap_or(0),
        failed: get_n(item, "failed").unwrap_or(0),
        scheduled_time: get_n(item, "scheduled_time").unwrap_or(0),
        workdir: get_s(item, "workdir").map(str::to_owned),
        watch: get_n(item, "watch_at")
            .zip(get_n(item, "watch_leg"))
            .map(|(at, leg)| WatchLeg { at, leg }),
    })
}

fn item_counts(item: &Item) -> Option<ItemCounts> {
    Some(ItemCounts {
        total: get_n(item, "items_total")?,
        unsettled: get_n(item, "items_unsettled").unwrap_or(0),
        failed: get_n(item, "items_failed").unwrap_or(0),
    })
}

/// A task back from its item.
pub fn task_from_item(item: &Item) -> PortResult<TaskRecord> {
    let task = get_s(item, "task").ok_or_else(|| corrupt("task", "no task name"))?;
    let state = get_s(item, "state").unwrap_or_default();
    Ok(TaskRecord {
        key: TaskKey {
            task: task.to_owned(),
            item: get_n(item, "item"),
        },
        state: TaskState::parse(state).ok_or_else(|| corrupt("task state", state))?,
        attempt: get_n(item, "attempt").unwrap_or(0),
        not_before: get_n(item, "not_before").unwrap_or(0),
        started_at: get_n(item, "started_at"),
        ended_at: get_n(item, "ended_at"),
        output: get_s(item, "output").map(str::to_owned),
        failure: get_s(item, "failure_kind").map(|kind| Failure {
            kind: kind.to_owned(),
            message: get_s(item, "failure_message")
                .unwrap_or_default()
                .to_owned(),
        }),
        item: get_s(item, "item_value").and_then(|v| serde_json::from_str(v).ok()),
        items: item_counts(item),
    })
}

/// The position of a task item in its workflow, for ordering.
fn position(item: &Item) -> (u64, u64) {
    (
        get_n(item, "position").unwrap_or(u64::MAX),
        get_n::<u64>(item, "item").map_or(0, |i| i + 1),
    )
}

/// Now, in ms since the epoch.
pub(crate) fn now_ms() -> u64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    u64::try_from(since.as_millis()).unwrap_or(u64::MAX)
}

impl Store for DynamoStore {
    async fn put_definition(&self, workflow: &str, version: &str, json: &str) -> PortResult<()> {
        if self.is_stored(workflow, version) {
            return Ok(());
        }
        let mut item = key(workflow_pk(workflow), format!("V#{version}"));
        item.insert("json".into(), s(json));
        item.insert("stored_at".into(), n(now_ms()));
        self.put_new(item).await?;
        self.mark_stored(workflow, version);
        Ok(())
    }

    async fn definition(&self, workflow: &str, version: &str) -> PortResult<Option<String>> {
        let item = self
            .get(workflow_pk(workflow), &format!("V#{version}"))
            .await?;
        let json = item.and_then(|i| get_s(&i, "json").map(str::to_owned));
        if json.is_some() {
            self.mark_stored(workflow, version);
        }
        Ok(json)
    }

    async fn create_run(&self, run: &RunRecord, tasks: &[TaskRecord]) -> PortResult<Created> {
        let input = canonical_json(&run.input);
        if input.len() > RUN_INPUT_LIMIT {
            // Refused before anything is written: the run item (400 KB at most) holds it.
            return Err(PortError::terminal(format!(
                "run input is {} bytes; the AWS backend keeps at most {RUN_INPUT_LIMIT} bytes \
                 of input in the run's item",
                input.len()
            )));
        }
        let too_long = run.key.as_ref().filter(|k| k.len() > KEY_LIMIT);
        if let Some(key) = too_long {
            return Err(PortError::terminal(format!(
                "idempotency key is {} bytes; at most {KEY_LIMIT} are allowed",
                key.len()
            )));
        }
        if let Some(run_key) = &run.key {
            let pk = format!("KEY#{}#{run_key}", run.workflow);
            let mut item = key(pk.clone(), "KEY");
            item.insert("run_id".into(), s(&run.id));
            item.insert("input".into(), s(&input));
            if !self.put_new(item).await? {
                let held = self
                    .get(pk, "KEY")
                    .await?
                    .ok_or_else(|| PortError::retryable("run key vanished while read"))?;
                let run_id = get_s(&held, "run_id").unwrap_or_default().to_owned();
                let held_input = get_s(&held, "input").unwrap_or_default().to_owned();
                if let Some(existing) = self.run(&run_id).await? {
                    return Ok(Created::Existing {
                        run_id,
                        input: held_input,
                        status: existing.status,
                    });
                }
                if held_input == input {
                    // The key's creator stopped before writing its run: finish the
                    // creation under its id. The engine plans a queued run it finds.
                    let finished = RunRecord {
                        id: run_id.clone(),
                        ..run.clone()
                    };
                    self.write_run(&finished, tasks).await?;
                }
                return Ok(Created::Existing {
                    run_id,
                    input: held_input,
                    status: RunStatus::Queued,
                });
            }
        }
        self.write_run(run, tasks).await?;
        Ok(Created::New)
    }

    async fn run(&self, run_id: &str) -> PortResult<Option<RunRecord>> {
        match self.get(run_pk(run_id), "RUN").await? {
            Some(item) => run_from_item(&item).map(Some),
            None => Ok(None),
        }
    }

    async fn tasks(&self, run_id: &str, keys: &[TaskKey]) -> PortResult<Vec<TaskRecord>> {
        if let [only] = keys {
            return match self.get(run_pk(run_id), &task_sk(only)).await? {
                Some(item) => task_from_item(&item).map(|t| vec![t]),
                None => Ok(Vec::new()),
            };
        }
        let pk = run_pk(run_id);
        let mut items: HashMap<String, Item> = HashMap::new();
        for chunk in keys.chunks(100) {
            let mut pending = KeysAndAttributes::builder()
                .set_keys(Some(
                    chunk.iter().map(|k| key(pk.clone(), task_sk(k))).collect(),
                ))
                .consistent_read(true)
                .build()
                .map_err(|e| PortError::terminal(e.to_string()))?;
            loop {
                let found = self
                    .client
                    .batch_get_item()
                    .request_items(&self.table, pending)
                    .send()
                    .await
                    .map_err(|e| dynamodb_error("BatchGetItem", &e))?;
                for item in found
                    .responses
                    .and_then(|mut r| r.remove(&self.table))
                    .unwrap_or_default()
                {
                    let sk = get_s(&item, "sk").unwrap_or_default().to_owned();
                    items.insert(sk, item);
                }
                match found
                    .unprocessed_keys
                    .and_then(|mut u| u.remove(&self.table))
                {
                    Some(rest) if !rest.keys.is_empty() => pending = rest,
                    _ => break,
                }
            }
        }
        keys.iter()
            .filter_map(|k| items.get(&task_sk(k)))
            .map(task_from_item)
            .collect()
    }

    async fn all_tasks(&self, run_id: &str) -> PortResult<Vec<TaskRecord>> {
        let mut items = self.query(run_pk(run_id), Some("TASK#".into())).await?;
        items.sort_by_key(position);
        items.iter().map(task_from_item).collect()
    }

    async fn item_outputs(&self, run_id: &str, task: &str) -> PortResult<Vec<Option<String>>> {
        let items = self
            .query(run_pk(run_id), Some(format!("TASK#{task}#")))
            .await?;
        Ok(items
            .iter()
            .map(|i| get_s(i, "output").map(str::to_owned))
            .collect())
    }

    async fn output_bytes(&self, run_id: &str, tasks: &[&str]) -> PortResult<u64> {
        let mut total: u64 = 0;
        for task in tasks {
            let Some(item) = self
                .get(run_pk(run_id), &task_sk(&TaskKey::task(*task)))
                .await?
            else {
                continue;
            };
            let own = get_s(&item, "output").map_or(0, str::len);
            total = total.saturating_add(own as u64);
            if item_counts(&item).is_some() {
                for output in self.item_outputs(run_id, task).await?.into_iter().flatten() {
                    total = total.saturating_add(output.len() as u64);
                }
            }
        }
        Ok(total)
    }

    async fn start_run(
        &self,
        run_id: &str,
        now: u64,
        deadline_at: Option<u64>,
        watch: Option<WatchLeg>,
    ) -> PortResult<bool> {
        let mut expr = Expr::default();
        expr.set("status", s(RunStatus::Running.as_str()))
            .set("started_at", n(now))
            .set_opt("deadline_at", deadline_at.map(n))
            .set_opt("watch_at", watch.map(|w| n(w.at)))
            .set_opt("watch_leg", watch.map(|w| n(w.leg)));
        let condition = expr.equals("status", s(RunStatus::Queued.as_str()));
        self.update(key(run_pk(run_id), "RUN"), expr, Some(condition))
            .await
    }

    async fn move_watch(&self, run_id: &str, from: Option<u64>, to: WatchLeg) -> PortResult<bool> {
        let mut expr = Expr::default();
        expr.set("watch_at", n(to.at)).set("watch_leg", n(to.leg));
        let held = match from {
            Some(leg) => expr.equals("watch_leg", n(leg)),
            None => "attribute_not_exists(watch_leg)".to_owned(),
        };
        let condition = format!("{held} AND attribute_exists(pk)");
        self.update(key(run_pk(run_id), "RUN"), expr, Some(condition))
            .await
    }

    async fn settle_run(
        &self,
        run_id: &str,
        from: RunStatus,
        to: RunStatus,
        now: u64,
    ) -> PortResult<bool> {
        let mut expr = Expr::default();
        expr.set("status", s(to.as_str()))
            .set("ended_at", n(now))
            .remove("active_pk")
            .remove("active_sk");
        let condition = format!(
            "{} AND {}",
            expr.equals("status", s(from.as_str())),
            "attribute_exists(pk)"
        );
        self.update(key(run_pk(run_id), "RUN"), expr, Some(condition))
            .await
    }

    async fn mark_sla_missed(&self, run_id: &str) -> PortResult<bool> {
        let mut expr = Expr::default();
        expr.set("sla_missed", AttributeValue::Bool(true));
        let condition = expr.equals("sla_missed", AttributeValue::Bool(false));
        self.update(key(run_pk(run_id), "RUN"), expr, Some(condition))
            .await
    }

    async fn update_task(&self, run_id: &str, change: &TaskChange) -> PortResult<Applied> {
        let mut expr = Expr::default();
        expr.set("state", s(change.to.as_str()))
            .set("attempt", n(change.new_attempt))
            .set_opt("not_before", change.not_before.map(n))
            .set_opt("started_at", change.started_at.map(n))
            .set_opt("ended_at", change.ended_at.map(n))
            .set_opt("output", change.output.clone().map(s));
        if change.to == TaskState::Succeeded {
            expr.remove("failure_kind").remove("failure_message");
        } else if let Some(failure) = &change.failure {
            expr.set("failure_kind", s(&failure.kind))
                .set("failure_message", s(&failure.message));
        }
        let first_success = change.to == TaskState::Succeeded && change.attempt == 1;
        if change.from == TaskState::Running && !first_success {
            // The attempt's history: how and when each attempt that did not simply
            // succeed first time ended.
            let state = match (change.to, &change.failure) {
                (TaskState::Ready, Some(f)) if f.kind == Failure::TIMEOUT => TaskState::TimedOut,
                (TaskState::Ready, _) => TaskState::Failed,
                (settled, _) => settled,
            };
            let mut entry = HashMap::from([
                ("attempt".to_owned(), n(change.attempt)),
                ("state".to_owned(), s(state.as_str())),
                (
                    "ended_at".to_owned(),
                    n(change.ended_at.unwrap_or_else(now_ms)),
                ),
            ]);
            if let Some(failure) = &change.failure {
                entry.insert("failure_kind".into(), s(&failure.kind));
                entry.insert("failure_message".into(), s(&failure.message));
            }
            let history = expr.name("attempts");
            let empty = expr.value(AttributeValue::L(Vec::new()));
            let value = expr.value(AttributeValue::L(vec![AttributeValue::M(entry)]));
            expr.set.push(format!(
                "{history} = list_append(if_not_exists({history}, {empty}), {value})"
            ));
        }
        let condition = format!(
            "{} AND {}",
            expr.equals("state", s(change.from.as_str())),
            expr.equals("attempt", n(change.attempt))
        );
        let task_key = key(run_pk(run_id), task_sk(&change.key));
        let failed = u32::from(change.to.is_failure());
        let top_level = change.key.item.is_none();
        let counted = change.sink || failed == 1;
        if !change.to.is_settled() || top_level && !counted {
            // Settling a task that is not a sink, successfully, changes no run counter
            // (see `TaskChange::sink`): one conditional update, no transaction.
            let applied = self.update(task_key, expr, Some(condition)).await?;
            return Ok(Applied {
                applied,
                run_counters: None,
                parent: None,
            });
        }
        let mut counters = Expr::default();
        let counters_key = match change.key.item {
            Some(_) => {
                counters
                    .add("items_unsettled", n(-1))
                    .add("items_failed", n(failed));
                key(run_pk(run_id), task_sk(&TaskKey::task(&change.key.task)))
            }
            None => {
                counters
                    .add("unsettled", n(-i64::from(change.sink)))
                    .add("failed", n(failed));
                key(run_pk(run_id), "RUN")
            }
        };
        let applied = self
            .transact(task_key, expr, condition, counters_key, counters)
            .await?;
        let parent = match change.key.item {
            Some(_) => self.item_counts(run_id, &change.key.task).await?,
            None => None,
        };
        let run_counters = match change.key.item {
            Some(_) => None,
            None => Some(self.run_counters(run_id).await?),
        };
        Ok(Applied {
            applied,
            run_counters,
            parent,
        })
    }

    async fn add_items(
        &self,
        run_id: &str,
        task: &str,
        items: &[Value],
        now: u64,
    ) -> PortResult<bool> {
        let pk = run_pk(run_id);
        let parent = self
            .get(pk.clone(), &task_sk(&TaskKey::task(task)))
            .await?
            .ok_or_else(|| corrupt("task", format!("{task} of run {run_id} is missing")))?;
        if get_s(&parent, "state") != Some(TaskState::Waiting.as_str()) {
            return Ok(false);
        }
        let position: u64 = get_n(&parent, "position").unwrap_or(0);
        // Items first, each only if absent, then the parent: a planner that stops in
        // between leaves a waiting parent, and the next one writes what is missing.
        let writes: Vec<Item> = items
            .iter()
            .enumerate()
            .map(|(index, value)| {
                let index = u32::try_from(index).unwrap_or(u32::MAX);
                let mut item = key(pk.clone(), task_sk(&TaskKey::item(task, index)));
                item.insert("task".into(), s(task));
                item.insert("item".into(), n(index));
                item.insert("state".into(), s(TaskState::Ready.as_str()));
                item.insert("attempt".into(), n(1));
                item.insert("not_before".into(), n(now));
                item.insert("item_value".into(), s(value.to_string()));
                item.insert("position".into(), n(position));
                item
            })
            .collect();
        self.put_all_new(writes).await?;
        let total = items.len();
        let mut expr = Expr::default();
        expr.set("state", s(TaskState::Running.as_str()))
            .set("attempt", n(1))
            .set("started_at", n(now))
            .set("items_total", n(total))
            .set("items_unsettled", n(total))
            .set("items_failed", n(0));
        let condition = format!(
            "{} AND {}",
            expr.equals("state", s(TaskState::Waiting.as_str())),
            expr.equals("attempt", n(0))
        );
        self.update(
            key(pk, task_sk(&TaskKey::task(task))),
            expr,
            Some(condition),
        )
        .await
    }

    async fn acquire(
        &self,
        slots: &[Slot],
        holder: &str,
        now: u64,
        expires_at: u64,
    ) -> PortResult<Option<String>> {
        let mut taken = Vec::new();
        for slot in slots {
            if self.lease(slot, holder, now, expires_at).await? {
                taken.push(slot.scope.as_str());
                continue;
            }
            for scope in taken {
                self.unlease(scope, holder).await?;
            }
            return Ok(Some(slot.scope.clone()));
        }
        Ok(None)
    }

    async fn release(&self, holder: &str, scopes: &[String]) -> PortResult<Vec<String>> {
        let mut freed = Vec::new();
        for scope in scopes {
            if self.unlease(scope, holder).await? {
                freed.push(scope.clone());
            }
        }
        Ok(freed)
    }

    async fn park(&self, scope: &str, message: &Message) -> PortResult<()> {
        let body =
            serde_json::to_string(message).map_err(|e| PortError::terminal(e.to_string()))?;
        let mut hasher = std::collections::hash_map::DefaultHasher::new();
        body.hash(&mut hasher);
        let mut item = key(
            format!("PARK#{scope}"),
            format!("{:013}#{:016x}", now_ms(), hasher.finish()),
        );
        item.insert("body".into(), s(body));
        self.put_new(item).await?;
        Ok(())
    }

    async fn unpark(&self, scope: &str, limit: usize) -> PortResult<Vec<Message>> {
        let pk = format!("PARK#{scope}");
        let found = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", s(pk))
            .consistent_read(true)
            .limit(i32::try_from(limit).unwrap_or(i32::MAX))
            .send()
            .await
            .map_err(|e| dynamodb_error("Query", &e))?;
        let mut taken = Vec::new();
        for item in found.items.unwrap_or_default() {
            let (Some(pk), Some(sk)) = (get_s(&item, "pk"), get_s(&item, "sk")) else {
                continue;
            };
            // Only the caller whose delete removes the item takes the message.
            let deleted = self
                .client
                .delete_item()
                .table_name(&self.table)
                .set_key(Some(key(pk.to_owned(), sk)))
                .condition_expression("attribute_exists(pk)")
                .send()
                .await;
            match deleted {
                Ok(_) => {}
                Err(e) if condition_failed(&e) => continue,
                Err(e) => return Err(dynamodb_error("DeleteItem", &e)),
            }
            let body = get_s(&item, "body").unwrap_or_default();
            taken.push(
                serde_json::from_str(body)
                    .map_err(|e| PortError::terminal(format!("parked message: {e}")))?,
            );
        }
        Ok(taken)
    }

    async fn note_settled_upstreams(
        &self,
        run_id: &str,
        task: &str,
        settled: &[usize],
    ) -> PortResult<Option<usize>> {
        if settled.is_empty() {
            return Ok(None);
        }
        // A string set: adding a member twice keeps one, so a repeated plan message
        // counts its upstream once.
        let members = settled.iter().map(ToString::to_string).collect();
        let mut values = HashMap::from([(":settled".to_owned(), AttributeValue::Ss(members))]);
        let mut update = "ADD #settled :settled".to_owned();
        if let Some(expiry) = self.run_item_expiry() {
            values.insert(":expiry".into(), expiry);
            update.push_str(" SET expires_at = if_not_exists(expires_at, :expiry)");
        }
        let updated = self
            .client
            .update_item()
            .table_name(&self.table)
            .set_key(Some(key(run_pk(run_id), format!("UP#{task}"))))
            .update_expression(update)
            .expression_attribute_names("#settled", "settled")
            .set_expression_attribute_values(Some(values))
            .return_values(aws_sdk_dynamodb::types::ReturnValue::UpdatedNew)
            .send()
            .await
            .map_err(|e| dynamodb_error("UpdateItem", &e))?;
        let count = updated
            .attributes()
            .and_then(|a| a.get("settled"))
            .and_then(|v| v.as_ss().ok())
            .map(Vec::len);
        Ok(count)
    }

    async fn active_runs(&self, workflow: &str) -> PortResult<Option<Vec<RunRecord>>> {
        // The sparse index holds only runs that have not settled. It is read eventually
        // consistent (a global index cannot be read otherwise): two starts a few
        // milliseconds apart may both find no run going.
        let mut runs = Vec::new();
        let mut start = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .index_name("active")
                .key_condition_expression("active_pk = :pk")
                .expression_attribute_values(":pk", s(format!("ACTIVE#{workflow}")))
                .set_exclusive_start_key(start)
                .send()
                .await
                .map_err(|e| dynamodb_error("Query", &e))?;
            for item in page.items() {
                runs.push(run_from_item(item)?);
            }
            start = page.last_evaluated_key().cloned();
            if start.is_none() {
                break;
            }
        }
        runs.retain(|r| !r.status.is_settled());
        runs.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        Ok(Some(runs))
    }

    async fn holders(&self, scope: &str) -> PortResult<Vec<String>> {
        let now = now_ms();
        let item = self.get(format!("LIMIT#{scope}"), "LIMIT").await?;
        let mut holders: Vec<String> = item
            .as_ref()
            .and_then(|i| i.get("holders"))
            .and_then(|h| h.as_m().ok())
            .map(|holders| {
                holders
                    .iter()
                    .filter(|(_, expiry)| unexpired(expiry, now))
                    .map(|(holder, _)| holder.clone())
                    .collect()
            })
            .unwrap_or_default();
        holders.sort();
        Ok(holders)
    }

    async fn arm(&self, run_id: &str, timer: &str, at: u64) -> PortResult<bool> {
        let mut item = key(run_pk(run_id), format!("TIMER#{timer}#{at}"));
        item.insert("expires_at".into(), n(at / 1000 + 86_400));
        self.put_new(item).await
    }
}
