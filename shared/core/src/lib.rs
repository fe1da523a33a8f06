//! aloft-core: the pure model of aloft. Workflow definitions and their validation, the
//! planner's decisions, retry policy, schedule expressions, event patterns and the state
//! model. No I/O, no clock, no AWS.

pub mod canonical;
pub mod definition;
pub mod duration;
pub mod events;
pub mod graph;
pub mod retry;
pub mod rules;
pub mod schedule;
pub mod schema;
pub mod source;
pub mod state;
pub mod validate;
pub mod workflow;

pub use definition::Definition;
pub use duration::Duration;
pub use state::{Failure, RunStatus, TaskState};
pub use workflow::Workflow;

/// Largest stored task output, in bytes of its compact JSON text. An attempt whose output
/// is larger fails with kind `payload_too_large`; a `pass` result that large is refused
/// at validation.
pub const OUTPUT_LIMIT: usize = 256 * 1024;
