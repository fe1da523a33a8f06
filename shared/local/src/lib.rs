//! aloft-local: the embedded backend. SQLite (WAL) holds the store and the three queues;
//! command tasks run as local processes; lambda tasks go through the Lambda Invoke API.
//! The same engine as on AWS drives it, one process per run.

pub mod backfill;
pub mod clock;
pub mod db;
pub mod files;
pub mod inbox;
pub mod invoker;
pub mod lambda;
pub mod process;
pub mod query;
pub mod runner;
pub mod serve;
mod store;

pub use clock::{ManualClock, SystemClock, TokioClock};
pub use db::Sqlite;
pub use runner::{DeferredInvoker, Runner, StepReport};
