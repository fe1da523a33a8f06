//! The event inbox: events sent to this machine (`aloft events send`) wait here until
//! `aloft serve` starts the runs they trigger, as an EventBridge bus holds them for its
//! rules on AWS.
//!
//! An event is kept once per `id`, so sending it again stores nothing new. `serve` marks
//! an event handled in the same transaction as the runs it starts (each keyed
//! `event:<id>`): a crash before the commit leaves the event waiting and no run made.

use rusqlite::params;
use serde_json::Value;

use aloft_engine::ports::{PortError, PortResult};

use crate::db::{Sqlite, port_error};

/// An event waiting in the inbox.
#[derive(Debug, Clone, PartialEq)]
pub struct Pending {
    /// The event's `id`.
    pub id: String,
    /// The event.
    pub event: Value,
}

/// The event's `id`: a non-empty text, as the run key `event:<id>` needs.
pub fn event_id(event: &Value) -> Option<&str> {
    event
        .get("id")
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
}

impl Sqlite {
    /// Put an event into the inbox under `id`; false when an event with that id is
    /// already there (waiting or handled), which is kept as it was.
    pub fn put_event(&self, id: &str, event: &Value) -> PortResult<bool> {
        let now = self.clock().now();
        let conn = self.conn();
        let added = conn
            .execute(
                "INSERT INTO inbox (id, body, received_at) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (id) DO NOTHING",
                params![id, event.to_string(), now],
            )
            .map_err(port_error)?;
        Ok(added == 1)
    }

    /// Up to `limit` events not handled yet, oldest first.
    pub fn pending_events(&self, limit: usize) -> PortResult<Vec<Pending>> {
        let conn = self.conn();
        let mut select = conn
            .prepare_cached(
                "SELECT id, body FROM inbox WHERE handled_at IS NULL \
                 ORDER BY received_at, id LIMIT ?1",
            )
            .map_err(port_error)?;
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = select
            .query_map([limit], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })
            .map_err(port_error)?;
        let mut pending = Vec::new();
        for row in rows {
            let (id, body) = row.map_err(port_error)?;
            let event = serde_json::from_str(&body).map_err(|error| {
                PortError::terminal(format!("inbox event {id:?} is not JSON: {error}"))
            })?;
            pending.push(Pending { id, event });
        }
        Ok(pending)
    }

    /// Mark an event handled: it starts no more runs.
    pub fn mark_event_handled(&self, id: &str) -> PortResult<()> {
        let now = self.clock().now();
        let conn = self.conn();
        conn.execute(
            "UPDATE inbox SET handled_at = ?2 WHERE id = ?1 AND handled_at IS NULL",
            params![id, now],
        )
        .map_err(port_error)?;
        Ok(())
    }

    /// Whether the inbox holds an event with this id, and if so whether it was handled.
    pub fn event_handled(&self, id: &str) -> PortResult<Option<bool>> {
        use rusqlite::OptionalExtension;
        let conn = self.conn();
        conn.query_row(
            "SELECT handled_at IS NOT NULL FROM inbox WHERE id = ?1",
            [id],
            |r| r.get(0),
        )
        .optional()
        .map_err(port_error)
    }
}
