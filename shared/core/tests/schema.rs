//! The committed JSON Schema of workflow files matches the one generated from the types.
//!
//! After changing `definition.rs`, refresh the file with
//! `ALOFT_UPDATE_SCHEMA=1 cargo test -p aloft-core --test schema`.

use std::path::PathBuf;

use aloft_core::schema::{SCHEMA_PATH, json_schema, json_schema_text};

fn committed_path() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(SCHEMA_PATH)
}

#[test]
fn committed_schema_matches_the_types() {
    let path = committed_path();
    let generated = json_schema_text();
    if std::env::var("ALOFT_UPDATE_SCHEMA").as_deref() == Ok("1") {
        std::fs::write(&path, &generated).expect("write the schema");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "{} is out of date with definition.rs; refresh it with \
         `ALOFT_UPDATE_SCHEMA=1 cargo test -p aloft-core --test schema`",
        path.display()
    );
}

#[test]
fn schema_requires_name_and_tasks_and_refuses_unknown_fields() {
    let schema = json_schema();
    assert_eq!(schema["title"], "aloft workflow (v1)");
    assert_eq!(schema["required"], serde_json::json!(["name", "tasks"]));
    assert_eq!(schema["additionalProperties"], false);
    let task = &schema["$defs"]["Task"];
    assert_eq!(task["required"], serde_json::json!(["run"]));
    assert_eq!(task["additionalProperties"], false);
    assert_eq!(
        schema["$defs"]["Duration"]["pattern"],
        "^[0-9]+(ms|s|m|h|d)$"
    );
}
