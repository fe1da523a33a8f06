//! aloft-engine: the four handlers of aloft (trigger, plan, dispatch, complete), written
//! once against the port traits in [`ports`] and run unchanged by every backend.
//!
//! Each handler is idempotent: messages arrive at least once, every state change is a
//! conditional write on the state it leaves, and a write whose condition fails is a
//! logged no-op.

mod complete;
mod dispatch;
mod engine;
mod input;
pub mod lambda;
pub mod message;
pub mod overlap;
mod plan;
mod poison;
pub mod ports;
pub mod record;
mod time;
mod timer;
mod trigger;
mod watch;

pub use engine::{Config, Engine, EngineError, INPUT_LIMIT, OUTPUT_LIMIT};
pub use input::run_of_document;
pub use message::{Message, Outcome, Outgoing, QueueName, TaskKey};
pub use overlap::Admission;
pub use poison::UNDELIVERABLE;
pub use trigger::{StartRequest, Started};
