//! The JSON Schema of workflow files (v1), generated from the [`Definition`] types so that
//! editors and CI can check files without aloft. The committed copy lives in
//! `statemachines/schema/workflow-v1.schema.json`; a test keeps it in step.

use serde_json::Value;

use crate::definition::Definition;

/// Where the committed schema lives, relative to the workspace root.
pub const SCHEMA_PATH: &str = "statemachines/schema/workflow-v1.schema.json";

/// The JSON Schema of a v1 workflow file.
pub fn json_schema() -> Value {
    let mut schema = schemars::schema_for!(Definition);
    schema.insert("title".to_owned(), "aloft workflow (v1)".into());
    schema.to_value()
}

/// The schema as committed: pretty JSON with a final newline.
pub fn json_schema_text() -> String {
    format!("{:#}\n", json_schema())
}
