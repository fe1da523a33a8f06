//! `tab-to-csv TAB_FILE CSV_FILE COLUMN...`: the maintainer tool that derived the shipped
//! CSV files from tzdb's `.tab` tables. Comment lines (`#`) are dropped, each row's tab
//! separated fields become CSV fields under the given header, and a missing trailing
//! field (tzdb leaves out empty comments) becomes an empty field.

use std::fs;

use serde_json::{Value, json};

use crate::csv;
use crate::error::{Context, Error, Result};

/// Convert one `.tab` file; outputs the number of rows written.
pub fn tab_to_csv(args: &[String]) -> Result<Value> {
    let [input, output, columns @ ..] = args else {
        return Err(Error::new(
            "usage: aloft-example tab-to-csv TAB_FILE CSV_FILE COLUMN...",
        ));
    };
    if columns.is_empty() {
        return Err(Error::new("tab-to-csv: name at least one column"));
    }
    let text = fs::read_to_string(input).context(|| format!("cannot read {input}"))?;

    let mut out = csv::format_line(columns) + "\n";
    let mut rows = 0;
    for (index, line) in text.lines().enumerate() {
        if line.starts_with('#') || line.trim().is_empty() {
            continue;
        }
        let mut fields: Vec<&str> = line.split('\t').collect();
        if fields.len() > columns.len() {
            return Err(Error::new(format!(
                "{input}:{}: {} fields but only {} columns named",
                index + 1,
                fields.len(),
                columns.len()
            )));
        }
        fields.resize(columns.len(), "");
        out += &(csv::format_line(&fields) + "\n");
        rows += 1;
    }
    fs::write(output, out).context(|| format!("cannot write {output}"))?;
    Ok(json!({"rows": rows, "csv": output}))
}
