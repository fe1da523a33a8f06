//! `etl-transform`: decimal coordinates, region from the zone name, country names joined.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::{Value, json};

use super::EXTRACT;
use crate::args::positional;
use crate::contract::{TaskInput, workdir_subdir};
use crate::error::{Error, Result};
use crate::files::{path_text, read_jsonl, write_jsonl};
use crate::tzdata::placed::{PlacedZone, place_zones};
use crate::tzdata::{Country, ZoneRow};

/// Run the transform task on the files named by the extract task's output.
pub fn transform(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "etl-transform")?;
    let countries_file = input.upstream_str(EXTRACT, "/files/countries")?;
    let zones_file = input.upstream_str(EXTRACT, "/files/zones")?;
    let countries: Vec<Country> = read_jsonl(Path::new(countries_file))?;
    let rows: Vec<ZoneRow> = read_jsonl(Path::new(zones_file))?;

    let zones =
        place_zones(&rows, &countries).map_err(|err| Error::new(format!("{zones_file}: {err}")))?;
    let out = workdir_subdir("etl")?.join("zones.transformed.jsonl");
    write_jsonl(&out, &zones)?;
    eprintln!("transformed {} zones into {}", zones.len(), out.display());

    Ok(json!({
        "zones": zones.len(),
        "regions": distinct(&zones, |zone| vec![zone.region.as_str()]),
        "countries_with_zones": distinct(&zones, |zone| {
            zone.countries.iter().map(|c| c.code.as_str()).collect()
        }),
        "files": {"countries": countries_file, "zones": path_text(&out)?},
    }))
}

/// How many distinct values `values` yields over all zones.
fn distinct<'a>(zones: &'a [PlacedZone], values: impl Fn(&'a PlacedZone) -> Vec<&'a str>) -> usize {
    zones.iter().flat_map(values).collect::<BTreeSet<_>>().len()
}
