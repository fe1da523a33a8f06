//! `etl-extract ZONE1970_CSV ISO3166_CSV`: read and validate both tables, count them and
//! hand the parsed rows to the next task as JSON lines.

use std::path::Path;

use serde_json::{Value, json};

use crate::args::positional;
use crate::contract::{TaskInput, workdir_subdir};
use crate::error::Result;
use crate::files::{path_text, write_jsonl};
use crate::tzdata;

/// Run the extract task.
pub fn extract(args: &[String], _input: &TaskInput) -> Result<Value> {
    let [zones_csv, countries_csv] = positional(args, "etl-extract ZONE1970_CSV ISO3166_CSV")?;
    let countries = tzdata::read_countries(Path::new(countries_csv))?;
    let zones = tzdata::read_zones(Path::new(zones_csv))?;
    tzdata::check_zone_countries(&zones, &countries)?;
    eprintln!(
        "validated {} countries from {countries_csv}",
        countries.len()
    );
    eprintln!("validated {} zones from {zones_csv}", zones.len());

    let dir = workdir_subdir("etl")?;
    let countries_file = dir.join("countries.jsonl");
    let zones_file = dir.join("zones.jsonl");
    write_jsonl(&countries_file, &countries)?;
    write_jsonl(&zones_file, &zones)?;
    eprintln!("wrote parsed rows to {}", dir.display());

    let with_comment = zones.iter().filter(|zone| zone.comment.is_some()).count();
    Ok(json!({
        "countries": countries.len(),
        "zones": zones.len(),
        "zones_with_comment": with_comment,
        "files": {"countries": path_text(&countries_file)?, "zones": path_text(&zones_file)?},
    }))
}
