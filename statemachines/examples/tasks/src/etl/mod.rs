//! Tasks of the `timezone-etl` example: extract -> transform -> load -> report. Files go
//! to `$ALOFT_WORKDIR/etl/`; the database is `$ALOFT_WORKDIR/zones.sqlite`.

mod extract;
mod load;
mod report;
mod transform;

pub use extract::extract;
pub use load::load;
pub use report::report;
pub use transform::transform;

/// Upstream task names the chain expects, as in `etl/workflow.yaml`.
const EXTRACT: &str = "extract";
const TRANSFORM: &str = "transform";
const LOAD: &str = "load";
