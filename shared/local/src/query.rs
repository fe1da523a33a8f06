//! Read-only queries for the command line: listing runs, finding one, counting states.

use rusqlite::{OptionalExtension, params};

use aloft_engine::ports::PortResult;
use aloft_engine::record::RunRecord;

use crate::db::{Sqlite, port_error};
use crate::store::run_from_row;

/// The most recent runs, newest first, optionally of one workflow.
pub fn list_runs(db: &Sqlite, workflow: Option<&str>, limit: usize) -> PortResult<Vec<RunRecord>> {
    let conn = db.conn();
    let mut select = conn
        .prepare_cached(
            "SELECT id, workflow, version, status, input, run_key, created_at, started_at, \
             ended_at, deadline_at, sla_missed, unsettled, failed, scheduled_time, workdir \
             FROM runs WHERE ?1 IS NULL OR workflow = ?1 ORDER BY created_at DESC, id DESC LIMIT ?2",
        )
        .map_err(port_error)?;
    let rows = select
        .query_map(params![workflow, limit as i64], run_from_row)
        .map_err(port_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
}

/// What a run id or prefix names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// Exactly one run.
    One(String),
    /// No run.
    None,
    /// Several runs share the prefix.
    Ambiguous(Vec<String>),
}

/// Find a run by its id or a unique prefix of it.
pub fn find_run(db: &Sqlite, id_or_prefix: &str) -> PortResult<Found> {
    let conn = db.conn();
    let exact: Option<String> = conn
        .query_row("SELECT id FROM runs WHERE id = ?1", [id_or_prefix], |r| {
            r.get(0)
        })
        .optional()
        .map_err(port_error)?;
    if let Some(id) = exact {
        return Ok(Found::One(id));
    }
    // Run ids are digits, lowercase hex and dashes: anything else matches nothing (and
    // never acts as a LIKE wildcard).
    let plain = |c: char| c.is_ascii_digit() || c.is_ascii_lowercase() || c == '-';
    if id_or_prefix.is_empty() || !id_or_prefix.chars().all(plain) {
        return Ok(Found::None);
    }
    let pattern = format!("{id_or_prefix}%");
    let mut select = conn
        .prepare("SELECT id FROM runs WHERE id LIKE ?1 ORDER BY id LIMIT 5")
        .map_err(port_error)?;
    let rows = select
        .query_map([pattern], |r| r.get(0))
        .map_err(port_error)?;
    let mut ids = rows
        .collect::<Result<Vec<String>, _>>()
        .map_err(port_error)?;
    Ok(match ids.len() {
        0 => Found::None,
        1 => Found::One(ids.remove(0)),
        _ => Found::Ambiguous(ids),
    })
}

/// Task counts of a run by state, top-level tasks only.
pub fn state_counts(db: &Sqlite, run_id: &str) -> PortResult<Vec<(String, u32)>> {
    let conn = db.conn();
    let mut select = conn
        .prepare_cached(
            "SELECT state, count(*) FROM tasks WHERE run_id = ?1 AND item = -1 GROUP BY state",
        )
        .map_err(port_error)?;
    let rows = select
        .query_map([run_id], |r| Ok((r.get(0)?, r.get(1)?)))
        .map_err(port_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
}

/// Names of a run's tasks (and items) running now.
pub fn running_tasks(db: &Sqlite, run_id: &str, limit: usize) -> PortResult<Vec<String>> {
    let conn = db.conn();
    let mut select = conn
        .prepare_cached(
            "SELECT task, item FROM tasks WHERE run_id = ?1 AND state = 'running' \
             AND items_total IS NULL ORDER BY position, item LIMIT ?2",
        )
        .map_err(port_error)?;
    let rows = select
        .query_map(params![run_id, limit as i64], |r| {
            let task: String = r.get(0)?;
            let item: i64 = r.get(1)?;
            Ok(if item >= 0 {
                format!("{task}[{item}]")
            } else {
                task
            })
        })
        .map_err(port_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
}

/// One ended attempt of a task.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttemptRow {
    /// Task name.
    pub task: String,
    /// Item index of a `for_each` item.
    pub item: Option<u32>,
    /// Attempt number, from 1.
    pub attempt: u32,
    /// How it ended: succeeded, failed or timed_out.
    pub state: String,
    /// When it started.
    pub started_at: Option<u64>,
    /// When it ended.
    pub ended_at: u64,
    /// Failure kind and message, if it failed.
    pub failure: Option<(String, String)>,
}

/// The ended attempts of a run's top-level tasks that are kept apart from the task
/// record, in task and attempt order: every attempt of a task that needed more than one
/// or failed. A task whose first attempt succeeded has no row; its record tells it.
pub fn attempts(db: &Sqlite, run_id: &str) -> PortResult<Vec<AttemptRow>> {
    let conn = db.conn();
    let mut select = conn
        .prepare_cached(
            "SELECT task, item, attempt, state, started_at, ended_at, failure_kind, \
             failure_message FROM attempts WHERE run_id = ?1 AND item = -1 \
             ORDER BY task, attempt",
        )
        .map_err(port_error)?;
    let rows = select
        .query_map([run_id], |r| {
            let item: i64 = r.get(1)?;
            let kind: Option<String> = r.get(6)?;
            let message: Option<String> = r.get(7)?;
            Ok(AttemptRow {
                task: r.get(0)?,
                item: u32::try_from(item).ok(),
                attempt: r.get(2)?,
                state: r.get(3)?,
                started_at: r.get(4)?,
                ended_at: r.get(5)?,
                failure: kind.map(|k| (k, message.unwrap_or_default())),
            })
        })
        .map_err(port_error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(port_error)
}
