//! The SQLite database of the embedded backend: schema, connection and transactions.
//!
//! WAL mode with `synchronous=NORMAL`: a committed transaction survives the process
//! being killed at any point (it is in the WAL before COMMIT returns); only a power
//! loss or OS crash may drop the last few commits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use rusqlite::Connection;

use aloft_engine::ports::{Clock, PortError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS definitions (
    version TEXT PRIMARY KEY,
    json TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id TEXT PRIMARY KEY,
    workflow TEXT NOT NULL,
    version TEXT NOT NULL,
    status TEXT NOT NULL,
    input TEXT NOT NULL,
    run_key TEXT,
    created_at INTEGER NOT NULL,
    started_at INTEGER,
    ended_at INTEGER,
    deadline_at INTEGER,
    sla_missed INTEGER NOT NULL DEFAULT 0,
    unsettled INTEGER NOT NULL,
    failed INTEGER NOT NULL DEFAULT 0,
    scheduled_time INTEGER NOT NULL,
    workdir TEXT
);
CREATE UNIQUE INDEX IF NOT EXISTS runs_by_key ON runs (workflow, run_key);
CREATE INDEX IF NOT EXISTS runs_by_created ON runs (created_at);
CREATE TABLE IF NOT EXISTS tasks (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    item INTEGER NOT NULL,
    state TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    not_before INTEGER NOT NULL DEFAULT 0,
    started_at INTEGER,
    ended_at INTEGER,
    output TEXT,
    failure_kind TEXT,
    failure_message TEXT,
    item_value TEXT,
    items_total INTEGER,
    items_unsettled INTEGER,
    items_failed INTEGER,
    position INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run_id, task, item)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS attempts (
    run_id TEXT NOT NULL,
    task TEXT NOT NULL,
    item INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    state TEXT NOT NULL,
    started_at INTEGER,
    ended_at INTEGER NOT NULL,
    failure_kind TEXT,
    failure_message TEXT,
    PRIMARY KEY (run_id, task, item, attempt)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS drivers (
    run_id TEXT PRIMARY KEY,
    pid INTEGER NOT NULL,
    seen_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    run_id TEXT NOT NULL,
    queue TEXT NOT NULL,
    body TEXT NOT NULL,
    visible_at INTEGER NOT NULL,
    receives INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS messages_due ON messages (run_id, visible_at);
CREATE TABLE IF NOT EXISTS leases (
    scope TEXT NOT NULL,
    holder TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    PRIMARY KEY (scope, holder)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS leases_by_holder ON leases (holder);
CREATE TABLE IF NOT EXISTS parked (
    id INTEGER PRIMARY KEY,
    scope TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS parked_by_scope ON parked (scope, id);
CREATE UNIQUE INDEX IF NOT EXISTS parked_once ON parked (scope, body);
CREATE INDEX IF NOT EXISTS runs_going ON runs (workflow, status);
CREATE TABLE IF NOT EXISTS schedule_ticks (
    workflow TEXT PRIMARY KEY,
    last_tick INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS inbox (
    id TEXT PRIMARY KEY,
    body TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    handled_at INTEGER
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS inbox_pending ON inbox (handled_at, received_at);
CREATE TABLE IF NOT EXISTS timers (
    run_id TEXT NOT NULL,
    timer TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (run_id, timer, at)
) WITHOUT ROWID;
";

/// How long a connection waits for another process's lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(30);

/// Switch the database to WAL mode. Processes that open a fresh database at once (or
/// one whose last writer was killed, while another recovers its WAL) race for the
/// switch, and SQLite tells the losers "busy" without waiting in its busy handler; by
/// then the winner has switched the file or finished the recovery, so they ask again.
fn use_wal(conn: &Connection) -> rusqlite::Result<()> {
    let give_up = Instant::now() + BUSY_TIMEOUT;
    loop {
        match conn.pragma_update(None, "journal_mode", "WAL") {
            Err(error)
                if error.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && Instant::now() < give_up =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            other => return other,
        }
    }
}

/// The embedded backend's database, shared by the store, the queues and the runner.
#[derive(Clone)]
pub struct Sqlite {
    inner: Arc<Inner>,
}

struct Inner {
    conn: Mutex<Connection>,
    clock: Arc<dyn Clock>,
    files: PathBuf,
}

impl std::fmt::Debug for Sqlite {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sqlite")
            .field("files", &self.inner.files)
            .finish_non_exhaustive()
    }
}

/// An error opening or using the database.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// SQLite refused.
    #[error("database {path}: {source}")]
    Sqlite {
        /// The database file.
        path: String,
        /// The SQLite error.
        source: rusqlite::Error,
    },
    /// The folder could not be created.
    #[error("database folder {path}: {source}")]
    Folder {
        /// The folder.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
}

impl Sqlite {
    /// Open (creating if needed) the database at `path`. Run files (task inputs,
    /// outputs, logs, scratch folders) live in `runs/` beside it.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        let folder = folder_of(path);
        std::fs::create_dir_all(folder).map_err(|source| DbError::Folder {
            path: folder.display().to_string(),
            source,
        })?;
        let sqlite = |source| DbError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let conn = Connection::open(path).map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        use_wal(&conn).map_err(sqlite)?;
        conn.pragma_update(None, "synchronous", "NORMAL")
            .map_err(sqlite)?;
        conn.execute_batch(SCHEMA).map_err(sqlite)?;
        Self::over(conn, path, clock)
    }

    /// Open an existing database only to read it (for a user who may not write to it).
    /// Nothing is created; any write fails.
    pub fn open_read_only(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        let sqlite = |source| DbError::Sqlite {
            path: path.display().to_string(),
            source,
        };
        let flags = rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY
            | rusqlite::OpenFlags::SQLITE_OPEN_URI
            | rusqlite::OpenFlags::SQLITE_OPEN_NO_MUTEX;
        // A WAL database without its -wal file has no writer: read it as immutable, as
        // a read-only connection could not create the shared-memory file it needs.
        let mut wal = path.as_os_str().to_owned();
        wal.push("-wal");
        let conn = if Path::new(&wal).exists() {
            Connection::open_with_flags(path, flags)
        } else {
            let escaped = path
                .display()
                .to_string()
                .replace('%', "%25")
                .replace('?', "%3f")
                .replace('#', "%23");
            Connection::open_with_flags(format!("file:{escaped}?immutable=1"), flags)
        }
        .map_err(sqlite)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(sqlite)?;
        Self::over(conn, path, clock)
    }

    /// Wrap an open connection; run files live in `runs/` beside the database file.
    fn over(conn: Connection, path: &Path, clock: Arc<dyn Clock>) -> Result<Self, DbError> {
        let folder = folder_of(path);
        // Absolute, because task processes run in their workflow's folder.
        let files = std::fs::canonicalize(folder)
            .map_err(|source| DbError::Folder {
                path: folder.display().to_string(),
                source,
            })?
            .join("runs");
        Ok(Self {
            inner: Arc::new(Inner {
                conn: Mutex::new(conn),
                clock,
                files,
            }),
        })
    }

    /// The folder that holds per-run files.
    pub fn files(&self) -> &Path {
        &self.inner.files
    }

    /// The clock the database stamps queue times with.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.inner.clock
    }

    /// Lock the connection for one call.
    pub(crate) fn conn(&self) -> MutexGuard<'_, Connection> {
        // A panic while holding the lock leaves SQLite itself consistent (an open
        // transaction is rolled back by the next BEGIN's failure path), so go on.
        self.inner
            .conn
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Begin a write transaction that other processes wait for.
    pub fn begin(&self) -> Result<(), PortError> {
        self.conn()
            .execute_batch("BEGIN IMMEDIATE")
            .map_err(port_error)
    }

    /// Commit the open transaction.
    pub fn commit(&self) -> Result<(), PortError> {
        self.conn().execute_batch("COMMIT").map_err(port_error)
    }

    /// Roll back the open transaction, if any.
    pub fn rollback(&self) {
        let conn = self.conn();
        if !conn.is_autocommit() {
            // Nothing to do if it fails: the connection then has no open transaction.
            let _ = conn.execute_batch("ROLLBACK");
        }
    }

    /// Run `f` inside a savepoint: its writes are undone if it fails.
    pub fn savepoint(&self, name: &str) -> Result<(), PortError> {
        self.conn()
            .execute_batch(&format!("SAVEPOINT {name}"))
            .map_err(port_error)
    }

    /// Keep the writes since the savepoint.
    pub fn release_savepoint(&self, name: &str) -> Result<(), PortError> {
        self.conn()
            .execute_batch(&format!("RELEASE {name}"))
            .map_err(port_error)
    }

    /// Undo the writes since the savepoint.
    pub fn rollback_savepoint(&self, name: &str) -> Result<(), PortError> {
        self.conn()
            .execute_batch(&format!("ROLLBACK TO {name}; RELEASE {name}"))
            .map_err(port_error)
    }
}

/// The folder holding a database file.
fn folder_of(path: &Path) -> &Path {
    path.parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

/// Sort a SQLite error: busy and locked are retryable, the rest terminal.
pub(crate) fn port_error(error: rusqlite::Error) -> PortError {
    use rusqlite::ErrorCode::{DatabaseBusy, DatabaseLocked};
    match error.sqlite_error_code() {
        Some(DatabaseBusy | DatabaseLocked) => PortError::retryable(format!("sqlite: {error}")),
        _ => PortError::terminal(format!("sqlite: {error}")),
    }
}
