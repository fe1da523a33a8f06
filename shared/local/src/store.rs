//! The engine's store and queue ports on SQLite. Every task change is one conditional
//! UPDATE; a change that settles a task updates its run's (or parent's) counters in the
//! same transaction.

use std::collections::HashSet;

use rusqlite::{OptionalExtension, Row, params};
use serde_json::Value;

use aloft_core::canonical::canonical_json;
use aloft_core::{Failure, RunStatus, TaskState};
use aloft_engine::message::{Message, Outgoing, TaskKey};
use aloft_engine::ports::{
    Applied, Created, PortError, PortResult, Queue, Slot, Store, TaskChange,
};
use aloft_engine::record::{ItemCounts, RunRecord, TaskRecord};

use crate::db::{Sqlite, port_error};

const RUN_COLUMNS: &str = "id, workflow, version, status, input, run_key, created_at, started_at, \
     ended_at, deadline_at, sla_missed, unsettled, failed, scheduled_time, workdir";

const TASK_COLUMNS: &str = "task, item, state, attempt, not_before, started_at, ended_at, output, \
     failure_kind, failure_message, item_value, items_total, items_unsettled, items_failed";

/// Above this many keys, `tasks` reads the whole run in one query.
const BULK_READ: usize = 1024;

impl Store for Sqlite {
    async fn put_definition(&self, _workflow: &str, version: &str, json: &str) -> PortResult<()> {
        let conn = self.conn();
        let mut insert = conn
            .prepare_cached("INSERT OR IGNORE INTO definitions (version, json) VALUES (?1, ?2)")
            .map_err(port_error)?;
        insert.execute(params![version, json]).map_err(port_error)?;
        Ok(())
    }

    async fn definition(&self, _workflow: &str, version: &str) -> PortResult<Option<String>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT json FROM definitions WHERE version = ?1",
            [version],
            |r| r.get(0),
        )
        .optional()
        .map_err(port_error)
    }

    async fn create_run(&self, run: &RunRecord, tasks: &[TaskRecord]) -> PortResult<Created> {
        let conn = self.conn();
        let inserted = conn
            .execute(
                &format!(
                    "INSERT INTO runs ({RUN_COLUMNS}) VALUES \
                     (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                     ON CONFLICT (workflow, run_key) DO NOTHING"
                ),
                params![
                    run.id,
                    run.workflow,
                    run.version,
                    run.status.as_str(),
                    canonical_json(&run.input),
                    run.key,
                    run.created_at,
                    run.started_at,
                    run.ended_at,
                    run.deadline_at,
                    run.sla_missed,
                    run.unsettled,
                    run.failed,
                    run.scheduled_time,
                    run.workdir,
                ],
            )
            .map_err(port_error)?;
        if inserted == 0 {
            return existing_run(&conn, &run.workflow, run.key.as_deref());
        }
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO tasks (run_id, task, item, state, attempt, position) \
                 VALUES (?1, ?2, -1, ?3, 0, ?4)",
            )
            .map_err(port_error)?;
        for (position, task) in tasks.iter().enumerate() {
            insert
                .execute(params![
                    run.id,
                    task.key.task,
                    task.state.as_str(),
                    position
                ])
                .map_err(port_error)?;
        }
        Ok(Created::New)
    }

    async fn run(&self, run_id: &str) -> PortResult<Option<RunRecord>> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(&format!("SELECT {RUN_COLUMNS} FROM runs WHERE id = ?1"))
            .map_err(port_error)?;
        select
            .query_row([run_id], run_from_row)
            .optional()
            .map_err(port_error)
    }

    async fn tasks(&self, run_id: &str, keys: &[TaskKey]) -> PortResult<Vec<TaskRecord>> {
        let conn = self.conn();
        if keys.len() > BULK_READ && keys.iter().all(|k| k.item.is_none()) {
            let wanted: HashSet<&str> = keys.iter().map(|k| k.task.as_str()).collect();
            let mut select = conn
                .prepare_cached(&format!(
                    "SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ?1 AND item = -1"
                ))
                .map_err(port_error)?;
            let rows = select
                .query_map([run_id], task_from_row)
                .map_err(port_error)?;
            let all = rows.collect::<Result<Vec<_>, _>>().map_err(port_error)?;
            return Ok(all
                .into_iter()
                .filter(|t| wanted.contains(t.key.task.as_str()))
                .collect());
        }
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ?1 AND task = ?2 AND item = ?3"
            ))
            .map_err(port_error)?;
        let mut found = Vec::with_capacity(keys.len());
        for key in keys {
            let item = key.item.map_or(-1, i64::from);
            if let Some(record) = select
                .query_row(params![run_id, key.task, item], task_from_row)
                .optional()
                .map_err(port_error)?
            {
                found.push(record);
            }
        }
        Ok(found)
    }

    async fn all_tasks(&self, run_id: &str) -> PortResult<Vec<TaskRecord>> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {TASK_COLUMNS} FROM tasks WHERE run_id = ?1 ORDER BY position, item"
            ))
            .map_err(port_error)?;
        let rows = select
            .query_map([run_id], task_from_row)
            .map_err(port_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
    }

    async fn item_outputs(&self, run_id: &str, task: &str) -> PortResult<Vec<Option<String>>> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT output FROM tasks WHERE run_id = ?1 AND task = ?2 AND item >= 0 \
                 ORDER BY item",
            )
            .map_err(port_error)?;
        let rows = select
            .query_map(params![run_id, task], |r| r.get(0))
            .map_err(port_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
    }

    async fn output_bytes(&self, run_id: &str, tasks: &[&str]) -> PortResult<u64> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT coalesce(sum(length(CAST(output AS BLOB))), 0) FROM tasks \
                 WHERE run_id = ?1 AND task = ?2",
            )
            .map_err(port_error)?;
        let mut total: u64 = 0;
        for task in tasks {
            let bytes: u64 = select
                .query_row(params![run_id, task], |r| r.get(0))
                .map_err(port_error)?;
            total = total.saturating_add(bytes);
        }
        Ok(total)
    }

    async fn start_run(
        &self,
        run_id: &str,
        now: u64,
        deadline_at: Option<u64>,
        _watch: Option<aloft_engine::record::WatchLeg>,
    ) -> PortResult<bool> {
        // No watchdog here: the embedded engine times every attempt with its own check.
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE runs SET status = 'running', started_at = ?2, deadline_at = ?3 \
                 WHERE id = ?1 AND status = 'queued'",
                params![run_id, now, deadline_at],
            )
            .map_err(port_error)?;
        Ok(changed == 1)
    }

    async fn settle_run(
        &self,
        run_id: &str,
        from: RunStatus,
        to: RunStatus,
        now: u64,
    ) -> PortResult<bool> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE runs SET status = ?3, ended_at = ?4 WHERE id = ?1 AND status = ?2",
                params![run_id, from.as_str(), to.as_str(), now],
            )
            .map_err(port_error)?;
        if changed == 1 {
            // Legs still queued for a settled run find it settled; their records can go.
            conn.execute("DELETE FROM timers WHERE run_id = ?1", [run_id])
                .map_err(port_error)?;
        }
        Ok(changed == 1)
    }

    async fn mark_sla_missed(&self, run_id: &str) -> PortResult<bool> {
        let conn = self.conn();
        let changed = conn
            .execute(
                "UPDATE runs SET sla_missed = 1 WHERE id = ?1 AND sla_missed = 0",
                [run_id],
            )
            .map_err(port_error)?;
        Ok(changed == 1)
    }

    async fn update_task(&self, run_id: &str, change: &TaskChange) -> PortResult<Applied> {
        let conn = self.conn();
        let item = change.key.item.map_or(-1, i64::from);
        let (kind, message) = change
            .failure
            .as_ref()
            .map(|f| (&f.kind, &f.message))
            .unzip();
        let mut update = conn
            .prepare_cached(
                "UPDATE tasks SET state = ?6, attempt = ?7, \
                   not_before = COALESCE(?8, not_before), \
                   started_at = COALESCE(?9, started_at), \
                   ended_at = COALESCE(?10, ended_at), \
                   output = COALESCE(?11, output), \
                   failure_kind = CASE WHEN ?6 = 'succeeded' THEN NULL \
                                       ELSE COALESCE(?12, failure_kind) END, \
                   failure_message = CASE WHEN ?6 = 'succeeded' THEN NULL \
                                          ELSE COALESCE(?13, failure_message) END \
                 WHERE run_id = ?1 AND task = ?2 AND item = ?3 AND state = ?4 AND attempt = ?5",
            )
            .map_err(port_error)?;
        let changed = update
            .execute(params![
                run_id,
                change.key.task,
                item,
                change.from.as_str(),
                change.attempt,
                change.to.as_str(),
                change.new_attempt,
                change.not_before,
                change.started_at,
                change.ended_at,
                change.output,
                kind,
                message,
            ])
            .map_err(port_error)?;
        let applied = changed == 1;
        // A first attempt that succeeded is its task record; only the others need a row
        // of their own, which keeps the common path at one write.
        let first_success = change.to == TaskState::Succeeded && change.attempt == 1;
        if applied && change.from == TaskState::Running && !first_success {
            record_attempt(&conn, run_id, item, change, self.clock().now())?;
        }
        if !change.to.is_settled() {
            return Ok(Applied {
                applied,
                run_counters: None,
                parent: None,
            });
        }
        settle_counters(&conn, run_id, change, applied)
    }

    async fn add_items(
        &self,
        run_id: &str,
        task: &str,
        items: &[Value],
        now: u64,
    ) -> PortResult<bool> {
        let conn = self.conn();
        let total = items.len() as i64;
        let changed = conn
            .execute(
                "UPDATE tasks SET state = 'running', attempt = 1, started_at = ?3, \
                   items_total = ?4, items_unsettled = ?4, items_failed = 0 \
                 WHERE run_id = ?1 AND task = ?2 AND item = -1 \
                   AND state = 'waiting' AND attempt = 0",
                params![run_id, task, now, total],
            )
            .map_err(port_error)?;
        if changed == 0 {
            return Ok(false);
        }
        let position: i64 = conn
            .query_row(
                "SELECT position FROM tasks WHERE run_id = ?1 AND task = ?2 AND item = -1",
                params![run_id, task],
                |r| r.get(0),
            )
            .map_err(port_error)?;
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO tasks (run_id, task, item, state, attempt, not_before, item_value, \
                 position) VALUES (?1, ?2, ?3, 'ready', 1, ?4, ?5, ?6)",
            )
            .map_err(port_error)?;
        for (index, item) in items.iter().enumerate() {
            insert
                .execute(params![
                    run_id,
                    task,
                    index as i64,
                    now,
                    item.to_string(),
                    position
                ])
                .map_err(port_error)?;
        }
        Ok(true)
    }

    async fn acquire(
        &self,
        slots: &[Slot],
        holder: &str,
        now: u64,
        expires_at: u64,
    ) -> PortResult<Option<String>> {
        let conn = self.conn();
        for slot in slots {
            conn.prepare_cached("DELETE FROM leases WHERE scope = ?1 AND expires_at <= ?2")
                .and_then(|mut s| s.execute(params![slot.scope, now]))
                .map_err(port_error)?;
            let (held, mine): (u32, bool) = conn
                .prepare_cached(
                    "SELECT count(*), coalesce(max(holder = ?2), 0) FROM leases WHERE scope = ?1",
                )
                .and_then(|mut s| {
                    s.query_row(params![slot.scope, holder], |r| Ok((r.get(0)?, r.get(1)?)))
                })
                .map_err(port_error)?;
            if !mine && held >= slot.capacity {
                return Ok(Some(slot.scope.clone()));
            }
        }
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO leases (scope, holder, expires_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (scope, holder) DO UPDATE SET expires_at = excluded.expires_at",
            )
            .map_err(port_error)?;
        for slot in slots {
            insert
                .execute(params![slot.scope, holder, expires_at])
                .map_err(port_error)?;
        }
        Ok(None)
    }

    async fn release(&self, holder: &str, scopes: &[String]) -> PortResult<Vec<String>> {
        let conn = self.conn();
        let mut delete = conn
            .prepare_cached("DELETE FROM leases WHERE scope = ?1 AND holder = ?2")
            .map_err(port_error)?;
        let mut freed = Vec::new();
        for scope in scopes {
            if delete.execute(params![scope, holder]).map_err(port_error)? > 0 {
                freed.push(scope.clone());
            }
        }
        Ok(freed)
    }

    async fn park(&self, scope: &str, message: &Message) -> PortResult<()> {
        let conn = self.conn();
        let body =
            serde_json::to_string(message).map_err(|e| PortError::terminal(e.to_string()))?;
        conn.prepare_cached("INSERT OR IGNORE INTO parked (scope, body) VALUES (?1, ?2)")
            .and_then(|mut s| s.execute(params![scope, body]))
            .map_err(port_error)?;
        Ok(())
    }

    async fn arm(&self, run_id: &str, timer: &str, at: u64) -> PortResult<bool> {
        let conn = self.conn();
        let inserted = conn
            .prepare_cached("INSERT OR IGNORE INTO timers (run_id, timer, at) VALUES (?1, ?2, ?3)")
            .and_then(|mut s| s.execute(params![run_id, timer, at]))
            .map_err(port_error)?;
        Ok(inserted == 1)
    }

    async fn unpark(&self, scope: &str, limit: usize) -> PortResult<Vec<Message>> {
        let conn = self.conn();
        let mut delete = conn
            .prepare_cached(
                "DELETE FROM parked WHERE id IN \
                 (SELECT id FROM parked WHERE scope = ?1 ORDER BY id LIMIT ?2) RETURNING body",
            )
            .map_err(port_error)?;
        let rows = delete
            .query_map(params![scope, limit as i64], |r| r.get::<_, String>(0))
            .map_err(port_error)?;
        let bodies = rows.collect::<Result<Vec<_>, _>>().map_err(port_error)?;
        bodies
            .iter()
            .map(|b| {
                serde_json::from_str(b)
                    .map_err(|e| PortError::terminal(format!("parked message: {e}")))
            })
            .collect()
    }

    async fn active_runs(&self, workflow: &str) -> PortResult<Option<Vec<RunRecord>>> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(&format!(
                "SELECT {RUN_COLUMNS} FROM runs WHERE workflow = ?1 \
                 AND status IN ('queued', 'running') ORDER BY created_at, id"
            ))
            .map_err(port_error)?;
        let rows = select
            .query_map([workflow], run_from_row)
            .map_err(port_error)?;
        let runs = rows.collect::<Result<Vec<_>, _>>().map_err(port_error)?;
        Ok(Some(runs))
    }

    async fn holders(&self, scope: &str) -> PortResult<Vec<String>> {
        let now = self.clock().now();
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT holder FROM leases WHERE scope = ?1 AND expires_at > ?2 ORDER BY holder",
            )
            .map_err(port_error)?;
        let rows = select
            .query_map(params![scope, now], |r| r.get(0))
            .map_err(port_error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
    }

    async fn last_tick(&self, workflow: &str) -> PortResult<Option<u64>> {
        let conn = self.conn();
        conn.query_row(
            "SELECT last_tick FROM schedule_ticks WHERE workflow = ?1",
            [workflow],
            |r| r.get(0),
        )
        .optional()
        .map_err(port_error)
    }

    async fn record_tick(&self, workflow: &str, tick: u64) -> PortResult<()> {
        let conn = self.conn();
        conn.execute(
            "INSERT INTO schedule_ticks (workflow, last_tick) VALUES (?1, ?2) \
             ON CONFLICT (workflow) DO UPDATE SET last_tick = max(last_tick, excluded.last_tick)",
            params![workflow, tick],
        )
        .map_err(port_error)?;
        Ok(())
    }
}

impl Queue for Sqlite {
    async fn send(&self, messages: Vec<Outgoing>) -> PortResult<()> {
        self.insert_messages(messages, self.clock().now())
    }
}

impl Sqlite {
    /// Queue messages ahead of every message already due: what a resume learned about
    /// attempts that ended while no runner was alive happened before any check that
    /// fell due meanwhile (a deadline must not overtake a task that finished in time).
    pub fn send_ahead(&self, messages: Vec<Message>) -> PortResult<()> {
        self.insert_messages(messages.into_iter().map(Outgoing::now).collect(), 0)
    }

    fn insert_messages(&self, messages: Vec<Outgoing>, now: u64) -> PortResult<()> {
        let conn = self.conn();
        let mut insert = conn
            .prepare_cached(
                "INSERT INTO messages (run_id, queue, body, visible_at) VALUES (?1, ?2, ?3, ?4)",
            )
            .map_err(port_error)?;
        for outgoing in messages {
            let message = &outgoing.message;
            let body =
                serde_json::to_string(message).map_err(|e| PortError::terminal(e.to_string()))?;
            let visible_at = now.saturating_add(outgoing.delay_ms);
            insert
                .execute(params![
                    message.run_id(),
                    message.queue().as_str(),
                    body,
                    visible_at
                ])
                .map_err(port_error)?;
        }
        Ok(())
    }
}

/// Keep the history of an attempt that just ended: how, when, and why it failed.
fn record_attempt(
    conn: &rusqlite::Connection,
    run_id: &str,
    item: i64,
    change: &TaskChange,
    now: u64,
) -> PortResult<()> {
    let state = match (change.to, &change.failure) {
        (TaskState::Ready, Some(f)) if f.kind == Failure::TIMEOUT => TaskState::TimedOut,
        (TaskState::Ready, _) => TaskState::Failed,
        (settled, _) => settled,
    };
    let (kind, message) = change
        .failure
        .as_ref()
        .map(|f| (&f.kind, &f.message))
        .unzip();
    conn.prepare_cached(
        "INSERT OR REPLACE INTO attempts (run_id, task, item, attempt, state, started_at, \
           ended_at, failure_kind, failure_message) \
         SELECT run_id, task, item, ?4, ?5, started_at, ?6, ?7, ?8 FROM tasks \
         WHERE run_id = ?1 AND task = ?2 AND item = ?3",
    )
    .and_then(|mut insert| {
        insert.execute(params![
            run_id,
            change.key.task,
            item,
            change.attempt,
            state.as_str(),
            change.ended_at.unwrap_or(now),
            kind,
            message,
        ])
    })
    .map_err(port_error)?;
    Ok(())
}

/// The counters after a settling change: the parent's for an item, the run's otherwise
/// (its unsettled sinks and failed tasks).
fn settle_counters(
    conn: &rusqlite::Connection,
    run_id: &str,
    change: &TaskChange,
    applied: bool,
) -> PortResult<Applied> {
    let failed = i64::from(change.to.is_failure());
    let mut parent = None;
    if let Some(_item) = change.key.item {
        let sql = if applied {
            "UPDATE tasks SET items_unsettled = items_unsettled - 1, \
               items_failed = items_failed + ?3 \
             WHERE run_id = ?1 AND task = ?2 AND item = -1 \
             RETURNING items_total, items_unsettled, items_failed"
        } else {
            "SELECT items_total, items_unsettled, items_failed + 0 * ?3 FROM tasks \
             WHERE run_id = ?1 AND task = ?2 AND item = -1"
        };
        parent = conn
            .prepare_cached(sql)
            .and_then(|mut s| {
                s.query_row(params![run_id, change.key.task, failed], |r| {
                    Ok(ItemCounts {
                        total: r.get(0)?,
                        unsettled: r.get(1)?,
                        failed: r.get(2)?,
                    })
                })
            })
            .optional()
            .map_err(port_error)?;
    }
    let sql = if applied && change.key.item.is_none() {
        "UPDATE runs SET unsettled = unsettled - ?3, failed = failed + ?2 WHERE id = ?1 \
         RETURNING unsettled, failed"
    } else {
        "SELECT unsettled, failed + 0 * ?2 + 0 * ?3 FROM runs WHERE id = ?1"
    };
    let sink = i64::from(change.sink);
    let counters = conn
        .prepare_cached(sql)
        .and_then(|mut s| {
            s.query_row(params![run_id, failed, sink], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
        })
        .map_err(port_error)?;
    Ok(Applied {
        applied,
        run_counters: Some(counters),
        parent,
    })
}

fn existing_run(
    conn: &rusqlite::Connection,
    workflow: &str,
    key: Option<&str>,
) -> PortResult<Created> {
    conn.query_row(
        "SELECT id, input, status FROM runs WHERE workflow = ?1 AND run_key = ?2",
        params![workflow, key],
        |r| {
            let status: String = r.get(2)?;
            Ok(Created::Existing {
                run_id: r.get(0)?,
                input: r.get(1)?,
                status: RunStatus::parse(&status).unwrap_or(RunStatus::Running),
            })
        },
    )
    .map_err(port_error)
}

/// A run from a row of [`RUN_COLUMNS`].
pub(crate) fn run_from_row(row: &Row<'_>) -> rusqlite::Result<RunRecord> {
    let status: String = row.get(3)?;
    let input: String = row.get(4)?;
    Ok(RunRecord {
        id: row.get(0)?,
        workflow: row.get(1)?,
        version: row.get(2)?,
        status: RunStatus::parse(&status).ok_or_else(|| bad_column(3, &status))?,
        input: serde_json::from_str(&input).map_err(|_| bad_column(4, &input))?,
        key: row.get(5)?,
        created_at: row.get(6)?,
        started_at: row.get(7)?,
        ended_at: row.get(8)?,
        deadline_at: row.get(9)?,
        sla_missed: row.get(10)?,
        unsettled: row.get(11)?,
        failed: row.get(12)?,
        scheduled_time: row.get(13)?,
        workdir: row.get(14)?,
        watch: None,
    })
}

/// A task from a row of [`TASK_COLUMNS`].
pub(crate) fn task_from_row(row: &Row<'_>) -> rusqlite::Result<TaskRecord> {
    let item: i64 = row.get(1)?;
    let state: String = row.get(2)?;
    let kind: Option<String> = row.get(8)?;
    let item_value: Option<String> = row.get(10)?;
    let total: Option<u32> = row.get(11)?;
    Ok(TaskRecord {
        key: TaskKey {
            task: row.get(0)?,
            item: u32::try_from(item).ok(),
        },
        state: TaskState::parse(&state).ok_or_else(|| bad_column(2, &state))?,
        attempt: row.get(3)?,
        not_before: row.get(4)?,
        started_at: row.get(5)?,
        ended_at: row.get(6)?,
        output: row.get(7)?,
        failure: match kind {
            Some(kind) => Some(Failure {
                kind,
                message: row.get::<_, Option<String>>(9)?.unwrap_or_default(),
            }),
            None => None,
        },
        item: item_value.and_then(|v| serde_json::from_str(&v).ok()),
        items: match total {
            Some(total) => Some(ItemCounts {
                total,
                unsettled: row.get(12)?,
                failed: row.get(13)?,
            }),
            None => None,
        },
    })
}

fn bad_column(index: usize, value: &str) -> rusqlite::Error {
    rusqlite::Error::FromSqlConversionFailure(
        index,
        rusqlite::types::Type::Text,
        format!("unexpected value {value:?}").into(),
    )
}
