//! Files that tasks hand to each other through the run's workdir: JSON lines.

use std::fs;
use std::io::{BufWriter, Write};
use std::path::Path;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::error::{Context, Error, Result};

/// Write `items` to `path`, one JSON document per line, replacing the file.
pub fn write_jsonl<T: Serialize>(path: &Path, items: &[T]) -> Result<()> {
    let file = fs::File::create(path).context(|| format!("cannot create {}", path.display()))?;
    let mut out = BufWriter::new(file);
    for item in items {
        serde_json::to_writer(&mut out, item)
            .context(|| format!("cannot write JSON to {}", path.display()))?;
        out.write_all(b"\n")
            .context(|| format!("cannot write {}", path.display()))?;
    }
    out.flush()
        .context(|| format!("cannot write {}", path.display()))
}

/// Read a JSON lines file written by [`write_jsonl`]; errors name the line.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let text = fs::read_to_string(path).context(|| format!("cannot read {}", path.display()))?;
    let mut items = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let item = serde_json::from_str(line).map_err(|err| {
            Error::new(format!(
                "{}:{}: unexpected JSON: {err}",
                path.display(),
                index + 1
            ))
        })?;
        items.push(item);
    }
    Ok(items)
}

/// A path as UTF-8 text for a task output; refuses paths that are not UTF-8.
pub fn path_text(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_owned)
        .ok_or_else(|| Error::new(format!("path {} is not UTF-8", path.display())))
}
