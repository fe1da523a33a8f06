//! Tasks of the `zone-stats` example: one extract fans out to independent statistics over
//! the same zones, and `stats-summary` fans them back in. Every statistics output carries
//! `stat` (its kind) and `zones` (how many zones it saw) so that the summary can merge
//! whatever upstreams it is given and check that they agree.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value, json};

use crate::args::positional;
use crate::contract::{TaskInput, workdir_subdir};
use crate::error::{Error, Result};
use crate::files::{path_text, read_jsonl, write_jsonl};
use crate::tzdata::{self, placed::PlacedZone};

/// Upstream task name of every statistics task, as in `fan-in/workflow.yaml`.
const EXTRACT: &str = "extract";
/// How many countries `stats-countries` lists.
const TOP_COUNTRIES: usize = 10;
/// The flag that makes `stats-hemispheres` fail its first attempt.
const FAIL_FIRST_ATTEMPT: &str = "--fail-first-attempt";

/// `stats-extract ZONE1970_CSV ISO3166_CSV`: validate and interpret the zones once for
/// all statistics tasks.
pub fn extract(args: &[String], _input: &TaskInput) -> Result<Value> {
    let [zones_csv, countries_csv] = positional(args, "stats-extract ZONE1970_CSV ISO3166_CSV")?;
    let countries = tzdata::read_countries(Path::new(countries_csv))?;
    let rows = tzdata::read_zones(Path::new(zones_csv))?;
    let zones = tzdata::placed::place_zones(&rows, &countries)
        .map_err(|err| Error::new(format!("{zones_csv}: {err}")))?;

    let file = workdir_subdir("stats")?.join("zones.jsonl");
    write_jsonl(&file, &zones)?;
    eprintln!("interpreted {} zones into {}", zones.len(), file.display());
    Ok(json!({"zones": zones.len(), "file": path_text(&file)?}))
}

/// The zones the extract task wrote.
fn upstream_zones(input: &TaskInput) -> Result<Vec<PlacedZone>> {
    read_jsonl(Path::new(input.upstream_str(EXTRACT, "/file")?))
}

/// `stats-regions`: zones per region, most first.
pub fn regions(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "stats-regions")?;
    let zones = upstream_zones(input)?;
    let counts = count_by(zones.iter().map(|zone| zone.region.as_str()));
    eprintln!("counted zones in {} regions", counts.len());
    Ok(json!({"stat": "regions", "zones": zones.len(), "by_region": ranked(&counts, usize::MAX)}))
}

/// `stats-countries`: how many zones cover each country; the top ten are listed.
pub fn countries(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "stats-countries")?;
    let zones = upstream_zones(input)?;
    let codes = zones
        .iter()
        .flat_map(|zone| zone.countries.iter().map(|c| c.code.as_str()));
    let counts = count_by(codes);
    let multi = counts.values().filter(|&&n| n > 1).count();
    eprintln!("counted zones for {} countries", counts.len());
    Ok(json!({
        "stat": "countries",
        "zones": zones.len(),
        "countries": counts.len(),
        "countries_with_several_zones": multi,
        "top": ranked(&counts, TOP_COUNTRIES),
    }))
}

/// `stats-bbox`: the box that holds every zone's principal location, with the zone at
/// each edge.
pub fn bbox(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "stats-bbox")?;
    let zones = upstream_zones(input)?;
    let latitude = |zone: &PlacedZone| zone.latitude;
    let longitude = |zone: &PlacedZone| zone.longitude;
    eprintln!("found the bounding box of {} zones", zones.len());
    Ok(json!({
        "stat": "bbox",
        "zones": zones.len(),
        "north": edge(&zones, latitude, Ordering::Greater),
        "south": edge(&zones, latitude, Ordering::Less),
        "east": edge(&zones, longitude, Ordering::Greater),
        "west": edge(&zones, longitude, Ordering::Less),
    }))
}

/// The zone whose `degrees` is the largest (`Greater`) or smallest (`Less`); ties go to
/// the zone listed first.
fn edge(zones: &[PlacedZone], degrees: impl Fn(&PlacedZone) -> f64, side: Ordering) -> Value {
    let mut best: Option<&PlacedZone> = None;
    for zone in zones {
        if best.is_none_or(|b| degrees(zone).total_cmp(&degrees(b)) == side) {
            best = Some(zone);
        }
    }
    best.map_or(
        Value::Null,
        |zone| json!({"zone": zone.name, "degrees": degrees(zone)}),
    )
}

/// `stats-hemispheres [--fail-first-attempt]`: zones north and south of the equator, east
/// and west of Greenwich. With the flag it fails attempt 1 on purpose, to show a retry.
pub fn hemispheres(args: &[String], input: &TaskInput) -> Result<Value> {
    let fail_first = match args {
        [] => false,
        [flag] if flag == FAIL_FIRST_ATTEMPT => true,
        _ => {
            return Err(Error::new(format!(
                "unexpected arguments {args:?}: usage: aloft-example stats-hemispheres \
                 [{FAIL_FIRST_ATTEMPT}]"
            )));
        }
    };
    if fails_on_purpose(fail_first, input.run.attempt) {
        eprintln!(
            "simulated transient failure on attempt {}",
            input.run.attempt
        );
        return Err(Error::new(format!(
            "failing on purpose ({FAIL_FIRST_ATTEMPT})"
        )));
    }

    let zones = upstream_zones(input)?;
    let count = |degrees: fn(&PlacedZone) -> f64, side: Ordering| {
        zones
            .iter()
            .filter(|zone| degrees(zone).partial_cmp(&0.0) == Some(side))
            .count()
    };
    let latitude: fn(&PlacedZone) -> f64 = |zone| zone.latitude;
    let longitude: fn(&PlacedZone) -> f64 = |zone| zone.longitude;
    Ok(json!({
        "stat": "hemispheres",
        "zones": zones.len(),
        "north": count(latitude, Ordering::Greater),
        "south": count(latitude, Ordering::Less),
        "on_equator": count(latitude, Ordering::Equal),
        "east": count(longitude, Ordering::Greater),
        "west": count(longitude, Ordering::Less),
        "on_prime_meridian": count(longitude, Ordering::Equal),
    }))
}

/// The flaky rule: with the flag, attempt 1 fails and every later attempt runs.
fn fails_on_purpose(flag: bool, attempt: u32) -> bool {
    flag && attempt <= 1
}

/// `stats-summary`: merge every upstream statistics output into one document, after
/// checking that they all saw the same number of zones.
pub fn summary(args: &[String], input: &TaskInput) -> Result<Value> {
    let [] = positional(args, "stats-summary")?;
    let merged = merge_stats(&input.upstream).map_err(Error::new)?;
    eprintln!("merged {} upstream outputs", input.upstream.len());
    Ok(merged)
}

/// Merge statistics outputs keyed by task name into `{zones, merged_from, <stat>: ...}`.
fn merge_stats(upstream: &Map<String, Value>) -> std::result::Result<Value, String> {
    let mut zones: Option<(&str, u64)> = None;
    let mut merged = Map::new();
    let mut sources = Vec::new();
    for (task, output) in upstream {
        let stat = output.get("stat").and_then(Value::as_str);
        let seen = output.get("zones").and_then(Value::as_u64);
        let (Some(stat), Some(seen)) = (stat, seen) else {
            return Err(format!(
                "upstream `{task}` output has no `stat` and `zones` fields"
            ));
        };
        if let Some((first, expected)) = zones.filter(|&(_, n)| n != seen) {
            return Err(format!(
                "upstream `{task}` saw {seen} zones but `{first}` saw {expected}"
            ));
        }
        zones = Some((task, seen));
        let body: Map<String, Value> = output
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(key, _)| !matches!(key.as_str(), "stat" | "zones"))
            .map(|(key, value)| (key.clone(), value.clone()))
            .collect();
        if merged
            .insert(stat.to_owned(), Value::Object(body))
            .is_some()
        {
            return Err(format!("two upstreams report the same stat {stat:?}"));
        }
        sources.push(task.clone());
    }

    let total = zones
        .map(|(_, n)| n)
        .ok_or("no upstream outputs to merge")?;
    check_totals(&merged, total)?;
    let mut out = Map::new();
    out.insert("zones".into(), total.into());
    out.insert("merged_from".into(), sources.into());
    out.extend(merged);
    Ok(Value::Object(out))
}

/// Cross-check the statistics that partition the zones: per-region counts and the
/// north/south/equator split must each add up to the total.
fn check_totals(merged: &Map<String, Value>, total: u64) -> std::result::Result<(), String> {
    let by_region = merged.get("regions").and_then(|r| r.get("by_region"));
    if let Some(by_region) = by_region.and_then(Value::as_object) {
        let regions: u64 = by_region.values().filter_map(Value::as_u64).sum();
        if regions != total {
            return Err(format!(
                "per-region counts add up to {regions}, not {total}"
            ));
        }
    }
    if let Some(halves) = merged.get("hemispheres") {
        let parts = ["north", "south", "on_equator"];
        let split: u64 = parts.iter().filter_map(|k| halves.get(k)?.as_u64()).sum();
        if split != total {
            return Err(format!(
                "north, south and equator add up to {split}, not {total}"
            ));
        }
    }
    Ok(())
}

fn count_by<'a>(keys: impl Iterator<Item = &'a str>) -> BTreeMap<&'a str, usize> {
    let mut counts = BTreeMap::new();
    for key in keys {
        *counts.entry(key).or_insert(0) += 1;
    }
    counts
}

/// The `limit` largest counts as a JSON object, largest first, ties by name.
fn ranked(counts: &BTreeMap<&str, usize>, limit: usize) -> Map<String, Value> {
    let mut pairs: Vec<(&str, usize)> = counts.iter().map(|(k, v)| (*k, *v)).collect();
    pairs.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
    pairs
        .into_iter()
        .take(limit)
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upstream(outputs: Value) -> Map<String, Value> {
        outputs.as_object().cloned().expect("an object")
    }

    #[test]
    fn flaky_task_fails_only_its_first_attempt() {
        assert!(fails_on_purpose(true, 1));
        assert!(!fails_on_purpose(true, 2));
        assert!(!fails_on_purpose(true, 3));
        assert!(!fails_on_purpose(false, 1));
    }

    #[test]
    fn summary_merges_outputs_by_stat() {
        let merged = merge_stats(&upstream(json!({
            "regions": {"stat": "regions", "zones": 3, "by_region": {"Asia": 2, "Europe": 1}},
            "hemispheres": {"stat": "hemispheres", "zones": 3, "north": 2, "south": 1,
                            "on_equator": 0},
        })))
        .expect("consistent");
        assert_eq!(merged["zones"], 3);
        assert_eq!(merged["merged_from"], json!(["regions", "hemispheres"]));
        assert_eq!(
            merged["regions"],
            json!({"by_region": {"Asia": 2, "Europe": 1}})
        );
        assert_eq!(merged["hemispheres"]["south"], 1);
    }

    #[test]
    fn summary_refuses_upstreams_that_disagree() {
        let err = merge_stats(&upstream(json!({
            "regions": {"stat": "regions", "zones": 3, "by_region": {"Asia": 3}},
            "bbox": {"stat": "bbox", "zones": 2},
        })))
        .expect_err("2 is not 3");
        assert!(err.contains("`bbox` saw 2"), "{err}");
    }

    #[test]
    fn summary_refuses_counts_that_do_not_add_up() {
        let err = merge_stats(&upstream(json!({
            "regions": {"stat": "regions", "zones": 3, "by_region": {"Asia": 1}},
        })))
        .expect_err("1 is not 3");
        assert!(err.contains("add up to 1"), "{err}");
        assert!(merge_stats(&Map::new()).is_err());
    }

    #[test]
    fn ranked_orders_by_count_then_name_and_limits() {
        let counts = BTreeMap::from([("CA", 2), ("US", 5), ("AU", 2), ("FR", 1)]);
        let top: Vec<(String, Value)> = ranked(&counts, 3).into_iter().collect();
        let names: Vec<&str> = top.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["US", "AU", "CA"]);
    }
}
